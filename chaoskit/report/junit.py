"""``junit.xml``: one test case per experiment and trial, for CI test views.

``classname`` is the suite, ``name`` is ``<experiment>[trial N]``. A trial that failed,
or passed with an SLO not met, is a ``<failure>``; a trial that errored is an ``<error>``.
The messages are the trial's reasons and the SLOs that did not pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from chaoskit.results import Summary, TrialSummary


def _iso(epoch: Any) -> str | None:
    if isinstance(epoch, bool) or not isinstance(epoch, int | float):
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _problems(trial: TrialSummary) -> list[str]:
    out = list(trial.reasons) if trial.status != "passed" else []
    for slo in trial.slos:
        if slo.status != "pass":
            out.append(f"SLO {slo.name} {slo.status}: {slo.reason}")
    return out


def render_junit(summary: Summary) -> str:
    suite_name = summary.suite_name
    cases = []
    counts = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for e in summary.experiments:
        for t in e.trials:
            seconds = float(t.duration_s or 0.0)
            total_time += seconds
            case = ET.Element(
                "testcase",
                classname=suite_name,
                name=f"{e.name}[trial {t.trial}]",
                time=f"{seconds:.3f}",
            )
            problems = _problems(t)
            counts["tests"] += 1
            if t.status == "errored":
                counts["errors"] += 1
                child = ET.SubElement(case, "error", type="errored")
            elif problems:
                counts["failures"] += 1
                child = ET.SubElement(case, "failure", type=t.status)
            else:
                child = None
            if child is not None:
                child.set("message", (problems or ["no reason given"])[0][:500])
                child.text = "\n".join(problems or ["no reason given"])
            out = [
                f"seed: {t.seed}",
                f"recovery_s: {t.fault.recovery_s}",
                *(f"victim: {v}" for v in t.fault.victims),
                *(f"recovery {k}: {v} s" for k, v in t.recovery.items()),
                *(f"invariant {i.line}" for i in t.invariants),
            ]
            ET.SubElement(case, "system-out").text = "\n".join(out)
            cases.append(case)
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(counts["tests"]),
        failures=str(counts["failures"]),
        errors=str(counts["errors"]),
        skipped="0",
        time=f"{total_time:.3f}",
    )
    if (stamp := _iso(summary.started_at)) is not None:
        suite.set("timestamp", stamp)
    suite.extend(cases)
    root = ET.Element(
        "testsuites",
        name="chaoskit",
        tests=str(counts["tests"]),
        failures=str(counts["failures"]),
        errors=str(counts["errors"]),
        time=f"{total_time:.3f}",
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
