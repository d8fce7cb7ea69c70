"""The CI gate: pass or fail a run by its verdict and against a baseline run.

``chaoskit gate --report DIR [--baseline DIR] [--tolerance SPEC]`` exits 0 when the run
passes, 1 when its verdict is fail or it regressed beyond the tolerance against the
baseline, 2 when a directory, its summary.json or the tolerance is wrong.

Compared with the baseline, per experiment in both runs: the median recovery time and the
median error rate during the fault; for the whole run: the score. An experiment of the
baseline missing from the run, or without a figure the baseline has, is a regression too.
Scores are compared only when both runs computed them with the same formula (a baseline
summarised by an older chaoskit is re-rendered with ``chaoskit report DIR``); otherwise
the gate says so in a note.

The tolerance is a comma-separated list of ``metric=amount``; metrics not named keep
their defaults (:data:`DEFAULT_TOLERANCE`). An amount is an absolute number in the
metric's unit (``error_rate=1``: one percentage point), a share of the baseline's value
(``recovery=20%``) or both, added (``recovery=20%+1``: 20 % of the baseline plus 1 s).

========== =============================================== ==========================
metric     regression when                                 unit of the absolute part
========== =============================================== ==========================
recovery   median recovery rises by more than the amount   seconds
error_rate median error rate during the fault rises by ...  percentage points
score      the score falls by more than the amount         points (of 100)
========== =============================================== ==========================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chaoskit.documents import parse_json, read_text
from chaoskit.errors import InvalidConfig, InvalidInput
from chaoskit.report.rundir import check_dir
from chaoskit.report.summary import SCHEMA, SUMMARY_FILE
from chaoskit.results import ExperimentSummary, ScoreSummary, Spread, Summary

METRICS: dict[str, tuple[str, str]] = {
    "recovery": ("median recovery", "s"),
    "error_rate": ("median error rate during the fault", "%"),
    "score": ("score", ""),
}
DEFAULT_TOLERANCE = "recovery=20%+1,error_rate=1,score=5"
_AMOUNT = re.compile(
    r"(?:(?P<pct>\d+(?:\.\d+)?)%)?(?:(?(pct)\+|)(?P<abs>\d+(?:\.\d+)?))?", re.ASCII
)


@dataclass(frozen=True)
class Allowance:
    """How much worse a figure may get: ``percent`` of the baseline plus ``absolute``."""

    percent: float = 0.0
    absolute: float = 0.0

    def of(self, baseline: float) -> float:
        return abs(baseline) * self.percent / 100 + self.absolute

    def __str__(self) -> str:
        parts = []
        if self.percent:
            parts.append(f"{self.percent:g}%")
        if self.absolute or not parts:
            parts.append(f"{self.absolute:g}")
        return "+".join(parts)


def parse_amount(metric: str, text: str) -> Allowance:
    match = _AMOUNT.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise InvalidInput(
            f"--tolerance {metric}={text}: want N (absolute), N% (of the baseline) or N%+M"
        )
    return Allowance(float(match["pct"] or 0), float(match["abs"] or 0))


def parse_tolerance(spec: str | None) -> dict[str, Allowance]:
    """The tolerance by metric: the defaults, overridden by ``spec``."""
    tolerance: dict[str, Allowance] = {}
    for source in (DEFAULT_TOLERANCE, spec or ""):
        for item in (i.strip() for i in source.split(",")):
            if not item:
                continue
            metric, sep, amount = item.partition("=")
            metric = metric.strip()
            if not sep:
                raise InvalidInput(f"--tolerance {item!r}: want METRIC=AMOUNT, e.g. recovery=20%")
            if metric not in METRICS:
                raise InvalidInput(
                    f"--tolerance {item!r}: unknown metric {metric!r} (known: {', '.join(METRICS)})"
                )
            tolerance[metric] = parse_amount(metric, amount)
    return tolerance


def read_summary(path: Path, what: str = "report") -> Summary:
    """The summary.json of a run directory; InvalidInput naming the path (and the field)
    when it is not one or is damaged."""
    check_dir(path, f"{what} directory")
    file = path / SUMMARY_FILE
    if not file.is_file():
        raise InvalidInput(f"{what} {file}: no such file (render it with: chaoskit report {path})")
    try:
        summary = parse_json(file, read_text(file))
    except InvalidConfig as e:
        raise InvalidInput(f"{what} {e}") from None
    if not isinstance(summary, dict) or summary.get("schema") != SCHEMA:
        found = summary.get("schema") if isinstance(summary, dict) else type(summary).__name__
        raise InvalidInput(f"{what} {file}: schema {found!r}, want {SCHEMA!r}")
    return Summary.from_dict(summary, f"{what} {file}")


@dataclass(frozen=True)
class Finding:
    kind: Literal["verdict", "regression", "ok", "note"]
    subject: str
    message: str

    @property
    def fails(self) -> bool:
        return self.kind in ("verdict", "regression")

    def line(self) -> str:
        label = {"verdict": "FAIL", "regression": "REGRESSION", "ok": "ok", "note": "note"}
        return f"{label[self.kind]} {self.subject}: {self.message}"


@dataclass(frozen=True)
class GateResult:
    verdict: str
    score: float | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(f.fails for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.fails]


def _median(spread: Spread) -> float | None:
    return None if spread.median is None else float(spread.median)


def _fmt(value: float, unit: str) -> str:
    return f"{value:.2f}{' ' + unit if unit else ''}"


def _rise(
    subject: str,
    metric: str,
    current: float | None,
    baseline: float | None,
    allowance: Allowance,
) -> Finding | None:
    what, unit = METRICS[metric]
    if baseline is None:
        return None
    if current is None:
        return Finding(
            "regression",
            subject,
            f"no {what} in this run (baseline {_fmt(baseline, unit)})",
        )
    allowed = allowance.of(baseline)
    delta = current - baseline
    text = (
        f"{what} {_fmt(current, unit)} vs baseline {_fmt(baseline, unit)} "
        f"({delta:+.2f}, allowed +{allowed:.2f}: {metric}={allowance})"
    )
    return Finding("regression" if delta > allowed + 1e-9 else "ok", subject, text)


def _figures(experiment: ExperimentSummary) -> dict[str, Spread]:
    """The figures the gate compares, by tolerance metric."""
    return {
        "recovery": experiment.aggregate.recovery_s,
        "error_rate": experiment.aggregate.error_rate_pct,
    }


def compare(
    current: Summary, baseline: Summary, tolerance: Mapping[str, Allowance]
) -> list[Finding]:
    """The findings of ``current`` against ``baseline``."""
    findings: list[Finding] = []
    now = {e.name: e for e in current.experiments}
    before = {e.name: e for e in baseline.experiments}
    for name, old in before.items():
        new = now.get(name)
        if new is None:
            findings.append(Finding("regression", name, "in the baseline, missing from this run"))
            continue
        new_figures, old_figures = _figures(new), _figures(old)
        for metric, spread in old_figures.items():
            finding = _rise(
                name, metric, _median(new_figures[metric]), _median(spread), tolerance[metric]
            )
            if finding is not None:
                findings.append(finding)
    findings += [
        Finding("note", name, "new experiment, not in the baseline")
        for name in now
        if name not in before
    ]
    findings += _compare_scores(current.score, baseline.score, tolerance)
    return findings


def _compare_scores(
    current: ScoreSummary, baseline: ScoreSummary, tolerance: Mapping[str, Allowance]
) -> list[Finding]:
    old_score, new_score = baseline.value, current.value
    if old_score is None:
        return []
    if new_score is None:
        return [Finding("regression", "score", "no score in this run")]
    if baseline.formula != current.formula:
        # Scores of different formulas are different measures: a drop means nothing.
        return [
            Finding(
                "note",
                "score",
                f"{float(new_score):.1f}, not compared: the baseline's score "
                f"({float(old_score):.1f}) has another formula (re-render the baseline "
                "with: chaoskit report DIR)",
            )
        ]
    # A falling score is the regression: compare the drop like a rise.
    allowance = tolerance["score"]
    drop = float(old_score) - float(new_score)
    allowed = allowance.of(float(old_score))
    return [
        Finding(
            "regression" if drop > allowed + 1e-9 else "ok",
            "score",
            f"{float(new_score):.1f} vs baseline {float(old_score):.1f} "
            f"({float(new_score) - float(old_score):+.1f}, allowed -{allowed:.1f}: "
            f"score={allowance})",
        )
    ]


def gate(report: Path, baseline: Path | None = None, tolerance: str | None = None) -> GateResult:
    """Judges ``report`` (and against ``baseline``); raises InvalidInput for bad input."""
    allowances = parse_tolerance(tolerance)
    current = read_summary(report, "report")
    old = read_summary(baseline, "baseline") if baseline is not None else None
    findings = [Finding("verdict", "verdict", reason) for reason in current.reasons]
    if current.verdict != "pass" and not findings:
        findings.append(Finding("verdict", "verdict", f"the run's verdict is {current.verdict!r}"))
    if old is not None:
        findings += compare(current, old, allowances)
    score = current.score.value
    return GateResult(
        verdict=current.verdict,
        score=float(score) if score is not None else None,
        findings=findings,
    )
