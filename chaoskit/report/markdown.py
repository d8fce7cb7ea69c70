"""``report.md``: the run in a few tables, for a CI job summary."""

from __future__ import annotations

from typing import Any

from chaoskit.results import Spread, Summary

MAX_REASONS = 30


def _cell(value: object) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _spread(agg: Spread, digits: int = 2) -> str:
    if not agg.n:
        return "-"
    return f"{_num(agg.median, digits)} ({_num(agg.min, digits)} to {_num(agg.max, digits)})"


def _invariants(summary: Summary) -> list[str]:
    """A system's invariant checks over the run (the shop's trials have none): how many held,
    and each one that did not."""
    checks = [(e.name, t.trial, i) for e in summary.experiments for t in e.trials
              for i in t.invariants]  # fmt: skip
    if not checks:
        return []
    errored = [c for c in checks if c[2].error is not None]
    violated = [c for c in checks if c[2].error is None and not c[2].ok]
    held = len(checks) - len(errored) - len(violated)
    lines = [
        "",
        f"Invariant checks: {held} held, {len(violated)} found violations, {len(errored)} errored.",
    ]
    shown = (violated + errored)[:MAX_REASONS]
    if shown:
        lines.append("")
        lines += [f"- {_cell(name)} trial {trial}: {_cell(i.line)}" for name, trial, i in shown]
    return lines


def render_markdown(summary: Summary) -> str:
    score = summary.score
    totals = summary.totals
    verdict = summary.verdict.upper()
    lines = [
        f"## chaoskit: {_cell(summary.suite_name)}: {verdict}, score {_num(score.value, 1)}/100",
        "",
        f"Run `{_cell(summary.run_id)}`: {totals.trials} trials of "
        f"{totals.experiments} experiments: {totals.passed} passed, {totals.failed} "
        f"failed, {totals.errored} errored; SLO checks {totals.slos.passed} pass, "
        f"{totals.slos.failed} fail, {totals.slos.errors} error; "
        f"lost orders {totals.lost_orders}.",
        "",
        "| experiment | verdict | trials passed | recovery s, median (min to max) "
        "| error rate % during fault | p99 ms during fault | SLOs pass/fail/error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in summary.experiments:
        agg = e.aggregate
        slos = e.slos
        lines.append(
            f"| {_cell(e.name)} | {e.verdict} | {e.trials_passed}/{e.trials_total} "
            f"| {_spread(agg.recovery_s)} | {_spread(agg.error_rate_pct)} "
            f"| {_spread(agg.p99_ms, 0)} | {slos.passed}/{slos.failed}/{slos.errors} |"
        )
    lines += _invariants(summary)
    if summary.system_not_back:
        after = ", ".join(_cell(t) for t in summary.system_not_back)
        lines += ["", f"**The system did not come back** (not serving end to end) after {after}."]
    if summary.reasons:
        lines += ["", "### Why it fails", ""]
        shown = summary.reasons[:MAX_REASONS]
        lines += [f"- {_cell(r)}" for r in shown]
        if len(summary.reasons) > len(shown):
            lines.append(f"- … and {len(summary.reasons) - len(shown)} more (see summary.json)")
    lines += [
        "",
        f"<details><summary>Score formula</summary>\n\n`{score.formula}`\n\n</details>",
        "",
        "Full report: `report.html` (self-contained); data: `summary.json`, `timeseries.csv`.",
        "",
    ]
    return "\n".join(lines)
