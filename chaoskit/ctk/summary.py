"""A few readable lines about a run's results (what ``chaoskit run`` prints)."""

from __future__ import annotations

import re
from typing import Any

from chaoskit.results import RunResults

_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*: ")


def _s(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}s"


def _phases(entry: dict[str, Any]) -> str:
    phases = entry.get("phases") or {}
    names = (
        ("controller_manager", "controller-manager"),
        ("scheduler", "scheduler"),
        ("kubelet", "kubelet"),
        ("endpoints", "endpoints"),
    )
    return ", ".join(f"{label} {_s(phases.get(key))}" for key, label in names)


def _recovery_lines(rec: dict[str, Any]) -> list[str]:
    out = []
    for pod in rec.get("pods", []):
        if pod.get("restored"):
            out.append(f"  {pod['pod']}: restored, Ready {_s(pod.get('ready'))}")
        elif pod.get("replacement"):
            out.append(
                f"  {pod['pod']} -> {pod['replacement']}: Ready+endpoint after "
                f"{_s(pod.get('total'))} ({_phases(pod)})"
            )
        else:
            out.append(f"  {pod['pod']}: deleted, no replacement seen")
    for item in rec.get("containers", []):
        out.append(
            f"  {item['pod']} container {item.get('container')}: died {_s(item.get('died'))}, "
            f"restarted {_s(item.get('restarted'))}, Ready {_s(item.get('ready'))}"
        )
    for item in rec.get("components", []):
        after = item.get("ready_after_rollback")
        out.append(
            f"  {item['pod']}: died {_s(item.get('died'))}, not Ready "
            f"{_s(item.get('not_ready'))}, restarted {_s(item.get('restarted'))}, Ready "
            f"{_s(item.get('ready'))}" + (f" ({_s(after)} after rollback)" if after else "")
        )
    for item in rec.get("nodes", []):
        if item.get("not_ready") is None:
            out.append(f"  node {item['node']}: stayed Ready")
            continue
        back = item.get("ready_after_rollback")
        out.append(
            f"  node {item['node']}: NotReady after {_s(item.get('not_ready'))}, Ready "
            + (f"{_s(back)} after rollback" if back is not None else f"at {_s(item.get('ready'))}")
        )
    for outage in rec.get("api_outages", []):
        out.append(f"  API reads failing from {_s(outage['from'])} for {_s(outage['seconds'])}")
    if rec.get("recovered_after_s") is not None:
        out.append(f"  desired state back {_s(rec['recovered_after_s'])} after the fault")
    return out


def _verdict_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    out = []
    for verdict in verdicts:
        if verdict.get("ok"):
            out.append(f"oracle ({verdict['name']}): desired state holds")
        else:
            problems = verdict.get("problems") or []
            out.append(f"oracle ({verdict['name']}): {len(problems)} problem(s)")
            out += [f"  - {p}" for p in problems[:12]]
    return out


def lines(result: dict[str, Any] | None) -> list[str]:
    """The victims, recovery split by component and oracle verdicts of one run."""
    if not result:
        return ["no chaoskit results (the run stopped before chaoskit started)"]
    out = [
        f"cluster {result.get('cluster')!r}, namespaces {', '.join(result.get('namespaces', []))}"
        f", seed {result.get('seed')}"
    ]
    injections = result.get("injections", [])
    for injection, rec in zip(injections, result.get("recovery", []), strict=False):
        victims = ", ".join(
            f"{v.get('kind')} {v.get('name')}" + (f" on {v['node']}" if v.get("node") else "")
            for v in injection.get("victims", [])
        )
        out.append(f"{injection['fault']}: {victims or 'no victims'}")
        for detail in injection.get("details", []):
            timings = [
                f"{key.removesuffix('_s').replace('_', ' ')} {_s(value)}"
                for key, value in detail.items()
                if key.endswith("_s") and isinstance(value, int | float)
            ]
            if timings:
                out.append(f"  {detail.get('victim', '')}: {', '.join(timings)}")
        out += _recovery_lines(rec)
    out += _verdict_lines(result.get("verdicts", []))
    problem = RunResults.from_dict(result).rollback_problem()
    if problem:
        out.append(problem)
    return out


def failures(journal: dict[str, Any]) -> list[str]:
    """Why a run failed: each failed activity with the last line of its error."""
    runs = list(journal.get("run") or [])
    for phase in ("before", "after"):
        runs += list(((journal.get("steady_states") or {}).get(phase) or {}).get("probes") or [])
    out = []
    for run in runs:
        if run.get("status") == "failed":
            lines_ = run.get("exception") or ["failed"]
            name = (run.get("activity") or {}).get("name", "?")
            out.append(f"{name}: {reason(str(lines_[-1]))}")
    return out


def reason(text: str) -> str:
    """An exception line without its 'package.module.Class: ' prefixes."""
    text = text.strip()
    while True:
        stripped = _EXCEPTION_PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped
