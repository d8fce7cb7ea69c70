"""The GitHub Actions example (docs/ci/github-actions.yml) stays in step with the CLI."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from chaoskit.cli import cli

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "github-actions.yml"


def steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = list(doc["jobs"].values())
    assert len(jobs) == 1
    result: list[dict[str, Any]] = jobs[0]["steps"]
    return result


def chaoskit_calls() -> list[list[str]]:
    """Each ``chaoskit ...`` command line of the run steps, as argument lists."""
    calls = []
    for step in steps():
        script = str(step.get("run", "")).replace("\\\n", " ")
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            if "chaoskit" in words:
                calls.append(words[words.index("chaoskit") + 1 :])
    return calls


def command_for(args: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


def test_every_chaoskit_call_uses_options_the_cli_has() -> None:
    calls = chaoskit_calls()
    assert {tuple(c[:2]) for c in calls} >= {("suite", "run"), ("gate", "--report")}
    for call in calls:
        command, rest = command_for(call)
        assert not isinstance(command, click.Group), call
        known = {opt for param in command.params for opt in param.opts}
        used = {word.split("=")[0] for word in rest if word.startswith("--")}
        assert used <= known, f"{call}: {used - known} not options of the CLI"


def test_it_runs_the_suite_fresh_then_gates_against_the_baseline() -> None:
    calls = chaoskit_calls()
    suite = next(c for c in calls if c[:2] == ["suite", "run"])
    assert "--fresh-cluster" in suite
    assert suite[suite.index("--out") + 1] == "$REPORT"
    assert any(c[0] == "gate" and "--baseline" in c for c in calls)
    env = yaml.safe_load(WORKFLOW.read_text())["jobs"]["resilience"]["env"]
    assert env["REPORT"] == "reports/ci"
    assert env["SUITE"] == "experiments/suites/flash-sale.yaml"


def test_the_report_is_published_also_when_the_gate_fails() -> None:
    by_name = {s.get("name", s.get("uses")): s for s in steps()}
    summary = by_name["Job summary"]
    assert summary["if"] == "always()"
    assert '"$REPORT/report.md" >> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    upload = by_name["Upload the report"]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ env.REPORT }}"
    junit = by_name["Test results"]
    assert junit["if"].startswith("always()")
    assert junit["with"]["report_paths"] == "${{ env.REPORT }}/junit.xml"
