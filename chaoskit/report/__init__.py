"""Resilience reports of suite runs: SLOs, the score, summary.json, report.html,
report.md, junit.xml, the raw time series, and the CI gate.

What the suite runner uses:

- :func:`load_slos` when it loads a suite (a bad SLO is InvalidConfig naming the field);
- :func:`evaluate_trial` after each trial, for the ``slos`` of its trial.json;
- :func:`render` at the end (and ``chaoskit report DIR`` again at any time).

The run directory they read is described in :mod:`chaoskit.report.rundir`; summary.json's
schema in ``reports/README.md``.
"""

from __future__ import annotations

from chaoskit.report.gate import gate, parse_tolerance
from chaoskit.report.render import render
from chaoskit.report.slo import SLO, evaluate_trial, load_slos, validate_slos

__all__ = [
    "SLO",
    "evaluate_trial",
    "gate",
    "load_slos",
    "parse_tolerance",
    "render",
    "validate_slos",
]
