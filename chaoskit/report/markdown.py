"""``report.md``: the run in a few tables, for a CI job summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_REASONS = 30


def _cell(value: object) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _spread(agg: Mapping[str, Any], digits: int = 2) -> str:
    if not agg.get("n"):
        return "-"
    return (
        f"{_num(agg['median'], digits)} ({_num(agg['min'], digits)} to {_num(agg['max'], digits)})"
    )


def render_markdown(summary: Mapping[str, Any]) -> str:
    suite = summary.get("suite") or {}
    score = summary["score"]
    totals = summary["totals"]
    verdict = str(summary["verdict"]).upper()
    lines = [
        f"## chaoskit: {_cell(suite.get('name') or summary['run_id'])}: {verdict}, "
        f"score {_num(score['value'], 1)}/100",
        "",
        f"Run `{_cell(summary['run_id'])}`: {totals['trials']} trials of "
        f"{totals['experiments']} experiments: {totals['passed']} passed, {totals['failed']} "
        f"failed, {totals['errored']} errored; SLO checks {totals['slos']['pass']} pass, "
        f"{totals['slos']['fail']} fail, {totals['slos']['error']} error; "
        f"lost orders {totals['lost_orders']}.",
        "",
        "| experiment | verdict | trials passed | recovery s, median (min to max) "
        "| error rate % during fault | p99 ms during fault | SLOs pass/fail/error |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in summary["experiments"]:
        agg = e["aggregate"]
        slos = e["slos"]
        lines.append(
            f"| {_cell(e['name'])} | {e['verdict']} | {e['trials_passed']}/{e['trials_total']} "
            f"| {_spread(agg['recovery_s'])} | {_spread(agg['error_rate_pct'])} "
            f"| {_spread(agg['p99_ms'], 0)} | {slos['pass']}/{slos['fail']}/{slos['error']} |"
        )
    if summary.get("system_not_back"):
        after = ", ".join(_cell(t) for t in summary["system_not_back"])
        lines += ["", f"**The system did not come back** (not serving end to end) after {after}."]
    if summary["reasons"]:
        lines += ["", "### Why it fails", ""]
        shown = summary["reasons"][:MAX_REASONS]
        lines += [f"- {_cell(r)}" for r in shown]
        if len(summary["reasons"]) > len(shown):
            lines.append(f"- … and {len(summary['reasons']) - len(shown)} more (see summary.json)")
    lines += [
        "",
        f"<details><summary>Score formula</summary>\n\n`{score['formula']}`\n\n</details>",
        "",
        "Full report: `report.html` (self-contained); data: `summary.json`, `timeseries.csv`.",
        "",
    ]
    return "\n".join(lines)
