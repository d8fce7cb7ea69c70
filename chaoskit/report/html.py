"""``report.html``: one self-contained page (inline CSS and SVG, no script, nothing
fetched) with the score and verdict, the experiments aggregated over their trials, and per
trial the load timeline with the fault marked, recovery by component, SLOs and the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from chaoskit import __version__
from chaoskit.load.timeseries import AGGREGATED
from chaoskit.report import svg
from chaoskit.report.metrics import COMPONENTS
from chaoskit.report.rundir import Run, Trial
from chaoskit.report.slo import UNITS
from chaoskit.results import (
    ExperimentSummary,
    RunResults,
    SLOResult,
    Spread,
    Summary,
    TrialSummary,
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#111827;
background:#f9fafb;line-height:1.4}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid #e5e7eb}
h3{margin:0 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:700;
font-size:.9em;color:#fff}
.pass,.passed{background:#15803d}.fail,.failed{background:#b91c1c}
.error,.errored{background:#a16207}
.score{font-size:2.4em;font-weight:800}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em;background:#fff}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
article.trial{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px;
margin:16px 0}
.muted{color:#6b7280}.reasons li{color:#991b1b}
svg{max-width:100%;height:auto;display:block;margin:8px 0}
code{font-size:.85em;background:#f3f4f6;padding:1px 4px;border-radius:4px}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".rstrip() if unit else text


def _short(value: Any) -> str:
    """A measured value, as many digits as it deserves: 0.4, 900, 1.527, 12346."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _badge(status: object) -> str:
    return f'<span class="badge {_e(status)}">{_e(str(status).upper())}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    """Cells are HTML already (escaped by the caller); numbers get class num by ``|``."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if cell.startswith("|"):
                cells.append(f'<td class="num">{cell[1:]}</td>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _spread(agg: Spread, digits: int = 2) -> str:
    if not agg.n:
        return "-"
    return f"{_num(agg.min, digits)} / <b>{_num(agg.median, digits)}</b> / {_num(agg.max, digits)}"


# --------------------------------------------------------------------------- sections


def _header(summary: Summary) -> str:
    suite = summary.suite
    cluster = summary.cluster
    score = summary.score
    totals = summary.totals
    rows = [
        ("run", _e(summary.run_id)),
        ("suite file", _e(suite.get("file") or "-")),
        ("seed", _e(suite.get("seed") if suite.get("seed") is not None else "-")),
        ("trials per experiment", _e(suite.get("trials") or "-")),
        ("load profile", _e(suite.get("profile") or "-")),
        ("topology", _e(suite.get("topology") or "-")),
        (
            "cluster",
            _e(cluster.get("name") or "-")
            + (" (fresh)" if cluster.get("fresh") else " (reused)" if cluster else ""),
        ),
        ("duration", _num(summary.duration_s, 0, "s")),
        (
            "trials",
            f"{totals.passed} passed, {totals.failed} failed, {totals.errored} errored",
        ),
        (
            "SLO checks",
            ", ".join(f"{n} {k}" for k, n in totals.slos.to_dict().items()),
        ),
        ("lost orders", _e(totals.lost_orders)),
    ]
    if summary.system_not_back:
        after = ", ".join(summary.system_not_back)
        rows.append(("system", _e(f"did not come back (not serving end to end) after {after}")))
    info = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    reasons = ""
    if summary.reasons:
        items = "".join(f"<li>{_e(r)}</li>" for r in summary.reasons)
        reasons = f'<h3>Why it fails</h3><ul class="reasons">{items}</ul>'
    return (
        f"<header><h1>chaoskit resilience report: {_e(summary.suite_name)}"
        f"</h1><p>{_badge(summary.verdict)} "
        f'<span class="score" id="score">{_num(score.value, 1)}</span>'
        f'<span class="muted"> / 100 resilience score</span></p>'
        f"<details><summary>How the score is computed</summary><p><code>"
        f"{_e(score.formula)}</code></p><p>SLO pass share "
        f"{_num(score.slo_pass_share, 3)}, trial pass share "
        f"{_num(score.trial_pass_share, 3)}, availability score "
        f"{_num(score.availability_score, 3)} (mean availability in the fault "
        f"windows {_num(score.availability, 4)}), recovery score "
        f"{_num(score.recovery_score, 3)}, lost orders {_e(score.lost_orders)}.</p>"
        f"</details><table>{info}</table>{reasons}</header>"
    )


def _overview(summary: Summary) -> str:
    experiments = summary.experiments
    rows = []
    for e in experiments:
        agg = e.aggregate
        slos = e.slos
        rows.append(
            [
                f'<a href="#exp-{_e(e.name)}">{_e(e.name)}</a>',
                _badge(e.verdict),
                f"|{e.trials_passed}/{e.trials_total}",
                "|" + _spread(agg.recovery_s),
                "|" + _spread(agg.error_rate_pct),
                "|" + _spread(agg.p99_ms, 0),
                f"|{slos.passed} / {slos.failed} / {slos.errors}",
            ]
        )
    table = _table(
        [
            "experiment",
            "verdict",
            "trials passed",
            "recovery s (min/median/max)",
            "error rate % during fault",
            "p99 ms during fault",
            "SLOs pass/fail/error",
        ],
        rows,
    )
    charts = []
    figures: list[tuple[Callable[[ExperimentSummary], Spread], str, str]] = [
        (lambda e: e.aggregate.recovery_s, "s", "Recovery time over trials (min, median, max)"),
        (lambda e: e.aggregate.error_rate_pct, "%", "Error rate during the fault over trials"),
        (lambda e: e.aggregate.p99_ms, "ms", "p99 latency during the fault over trials"),
    ]
    for figure, unit, title in figures:
        ranges = [
            (e.name, float(a.min), float(a.median), float(a.max))
            for e in experiments
            if (a := figure(e)).n
            and a.min is not None
            and a.median is not None
            and a.max is not None
        ]
        if ranges:
            charts.append(
                f"<h3>{_e(title)}</h3>" + svg.spread_chart(ranges, unit=unit, title=title)
            )
    return f'<section id="overview"><h2>Experiments</h2>{table}{"".join(charts)}</section>'


def _slo_definitions(summary: Summary) -> str:
    slos = summary.slos
    if not slos:
        return (
            '<section id="slos"><h2>SLOs</h2>'
            '<p class="muted">The suite defines no SLOs.</p></section>'
        )
    rows = []
    for s in slos:
        extra = []
        if "window" in s:
            w = s["window"]
            extra.append(
                f"fault window padded {w['before_s']:g} s before, {w['after_s']:g} s after"
            )
        if s.get("endpoint") and s["endpoint"] != AGGREGATED:
            extra.append(f"endpoint {s['endpoint']}")
        if s.get("query"):
            extra.append(f"{s['aggregate']} of <code>{_e(s['query'])}</code>")
        if s.get("experiments"):
            extra.append("only " + ", ".join(s["experiments"]))
        rows.append(
            [
                _e(s["name"]),
                _e(s["kind"]),
                _e(f"{s['op']} {s['threshold']:g} {UNITS.get(s['kind'], '')}".strip()),
                "; ".join(_e(x) if "<code>" not in x else x for x in extra),
            ]
        )
    table = _table(["name", "kind", "objective", "details"], rows)
    return f'<section id="slos"><h2>SLOs</h2>{table}</section>'


def _timeline(trial: Trial | None, experiment: str, t: TrialSummary) -> str:
    frame = trial.frame if trial is not None else None
    if frame is None or frame.empty:
        why = trial.frame_problem if trial is not None else "no trial folder"
        return f'<p class="muted">No timeline: {_e(why)}.</p>'
    fault = t.fault
    injected = fault.injected_at
    origin = float(injected) if injected is not None else float(frame.index.min())
    xs = [float(s) + 0.5 - origin for s in frame.index]

    def column(metric: str) -> list[float | None]:
        if (AGGREGATED, metric) not in frame.columns:
            return [None] * len(xs)
        return [None if math.isnan(v) else float(v) for v in frame[(AGGREGATED, metric)]]

    panels = [
        svg.Panel(
            "Requests per second", "", [svg.Line("rps", list(zip(xs, column("rps"), strict=True)))]
        ),
        svg.Panel(
            "p99 latency",
            "ms",
            [svg.Line("p99", list(zip(xs, column("p99_ms"), strict=True)), svg.PALETTE[1])],
        ),
        svg.Panel(
            "Errors per second",
            "",
            [
                svg.Line(
                    "failures", list(zip(xs, column("failures_per_s"), strict=True)), svg.PALETTE[2]
                )
            ],
        ),
    ]
    markers: list[svg.Marker] = []
    shade = None
    x_end = max(xs) + 0.5
    if injected is not None:
        markers.append(svg.Marker(0.0, "injected", "#b91c1c"))
        recovery = fault.recovery_s
        if recovery is not None:
            x_end = max(x_end, float(recovery) + 1)
            markers.append(svg.Marker(float(recovery), "recovered", "#15803d"))
            shade = (0.0, float(recovery))
        else:
            shade = (0.0, x_end)
        injections = RunResults.from_dict(trial.chaoskit).injections if trial else ()
        for injection in injections:
            if injection.rolled_back_at is not None:
                markers.append(
                    svg.Marker(injection.rolled_back_at - origin, "rolled back", "#6b7280")
                )
    title = f"{experiment} trial {t.trial}: load during the fault"
    x_title = (
        "seconds since the injection" if injected is not None else "seconds since the load began"
    )
    return svg.timeline_chart(
        panels,
        x_range=(min(min(xs) - 0.5, 0.0), x_end),
        x_title=x_title,
        markers=markers,
        shade=shade,
        title=title,
    )


def _recovery(t: TrialSummary) -> str:
    items = [(COMPONENTS.get(k, k).split(" (")[0], float(v)) for k, v in t.recovery.items()]
    if not items:
        return '<p class="muted">No recovery was measured (no result, or nothing was replaced).</p>'
    return "<h4>Recovery by component</h4>" + svg.bar_chart(
        items, unit="s", title=f"trial {t.trial}: recovery by component"
    )


def slo_rows(results: Sequence[SLOResult]) -> list[list[str]]:
    rows = []
    for r in results:
        unit = UNITS.get(r.kind, "")
        rows.append(
            [
                _e(r.name),
                _badge(r.status),
                "|" + (_e(_short(r.value)) if r.value is not None else "-"),
                _e(f"{r.op} {_short(r.threshold)} {unit}".strip()),
                _e(r.reason),
            ]
        )
    return rows


def _slos(t: TrialSummary) -> str:
    if not t.slos:
        return ""
    return "<h4>SLOs</h4>" + _table(
        ["SLO", "status", "value", "objective", "basis"], slo_rows(t.slos)
    )


def _ledger(t: TrialSummary) -> str:
    if t.ledger is None:
        error = t.ledger_error
        return f'<h4>Ledger</h4><p class="muted">No ledger{": " + _e(error) if error else ""}.</p>'
    keys = [
        "acknowledged",
        "stored",
        "notified",
        "lost_orders",
        "duplicated",
        "mismatched",
        "lost_events",
        "orphaned",
    ]
    counts = t.ledger.to_dict()
    row = [f"|{_e(counts.get(k, '-'))}" for k in keys]
    return "<h4>Ledger</h4>" + _table([k.replace("_", " ") for k in keys], [row])


def _invariants(t: TrialSummary) -> str:
    """A system's invariant checks, where the shop's trials show their ledger."""
    rows = [
        [
            _e(i.phase),
            _e(i.name),
            _badge("passed" if i.ok else "errored" if i.error is not None else "failed"),
            f"|{_e(i.checked if i.checked is not None else '-')}",
            f"|{_e(i.violations)}",
            _e(i.error or i.first_violation or ""),
        ]
        for i in t.invariants
    ]
    headers = ["phase", "invariant", "result", "checked", "violations", "first violation / error"]
    return "<h4>Invariants</h4>" + _table(headers, rows)


def _trial(run: Run, experiment: str, t: TrialSummary) -> str:
    trial = next(
        (x for x in run.trials_of(experiment) if x.number == t.trial),
        None,
    )
    fault = t.fault
    during = t.during_fault
    facts = [
        f"seed {_e(t.seed)}" if t.seed is not None else "",
        f"duration {_num(t.duration_s, 0, 's')}",
        f"recovery {_num(fault.recovery_s, 2, 's')}",
    ]
    if during.missing is None:
        facts.append(
            f"during the fault: {_e(during.requests)} requests, error rate "
            f"{_num(during.error_rate_pct, 2, '%')}, p99 {_num(during.p99_ms, 0, 'ms')}"
            f" (worst second {_num(during.worst_second_p99_ms, 0, 'ms')})"
        )
    victims = "".join(f"<li>{_e(v)}</li>" for v in fault.victims)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in t.reasons)
    return (
        f'<article class="trial" id="trial-{_e(experiment)}-{_e(t.trial)}">'
        f"<h3>{_e(experiment)} · trial {_e(t.trial)} {_badge(t.status)}</h3>"
        f"<p>{' · '.join(f for f in facts if f)}</p>"
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + (f"<details><summary>Victims</summary><ul>{victims}</ul></details>" if victims else "")
        + _timeline(trial, experiment, t)
        + _recovery(t)
        + _slos(t)
        + (_invariants(t) if t.invariants else _ledger(t))
        + "</article>"
    )


def _experiment(run: Run, e: ExperimentSummary) -> str:
    components = e.aggregate.components
    rows = [[_e(COMPONENTS.get(k, k)), "|" + _spread(v), f"|{v.n}"] for k, v in components.items()]
    aggregate = (
        "<h4>Recovery by component over trials (min / median / max)</h4>"
        + _table(["component", "seconds", "trials"], rows)
        if rows
        else ""
    )
    trials = "".join(_trial(run, e.name, t) for t in e.trials)
    if not trials:
        trials = '<p class="muted">No trial of this experiment ran.</p>'
    file = f' <span class="muted">({_e(e.file)})</span>' if e.file else ""
    return (
        f'<section class="experiment" id="exp-{_e(e.name)}"><h2>{_e(e.name)}{file} '
        f"{_badge(e.verdict)}</h2>{aggregate}{trials}</section>"
    )


def render_html(run: Run, summary: Summary) -> str:
    """The page for a run and its summary (see :mod:`chaoskit.report.summary`)."""
    suite = summary.suite_name
    body = (
        _header(summary)
        + _overview(summary)
        + _slo_definitions(summary)
        + "".join(_experiment(run, e) for e in summary.experiments)
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>chaoskit report: {_e(suite)}</title><style>{CSS}</style></head>"
        f'<body><main>{body}<footer class="muted"><p>chaoskit {_e(__version__)} · '
        f"schema {_e(summary.schema)}</p></footer></main></body></html>\n"
    )
