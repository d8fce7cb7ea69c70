"""``pytest experiments/...`` as a user runs it: chaoskit's plugin runs an experiment file
as a test item against the session's cluster, and a failing run is a readable failure."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness import REPO, Cluster, Shop


@dataclass(frozen=True)
class PytestRun:
    returncode: int
    stdout: str
    case: ET.Element
    """The one junit test case."""

    @property
    def properties(self) -> dict[str, str]:
        return {p.get("name", ""): p.get("value", "") for p in self.case.iter("property")}


def run_pytest(tmp_path: Path, *args: str) -> PytestRun:
    """A separate ``pytest`` in the repo (its pyproject's addopts apply), as a user runs it."""
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--junitxml={junit}",
            f"--chaoskit-out={tmp_path / 'out'}",
            *args,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    sys.stderr.write(proc.stderr)
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 1, proc.stdout
    return PytestRun(proc.returncode, proc.stdout, cases[0])


def test_an_experiment_file_is_a_test_item_that_passes(
    cluster: Cluster, shop: Shop, tmp_path: Path
) -> None:
    run = run_pytest(
        tmp_path,
        "experiments/pod-kill.yaml",
        f"--chaoskit-cluster={cluster.name}",
        "--no-chaoskit-deploy",
        "--chaoskit-seed=7",
        "-rP",
    )

    assert run.returncode == 0, run.stdout
    assert run.case.get("name") == "pod-kill"
    assert run.case.find("failure") is None
    assert run.case.find("error") is None
    result_file = Path(run.properties["chaoskit_result"])
    assert result_file == tmp_path / "out" / "experiments" / "pod-kill.json"
    result = json.loads(result_file.read_text())
    assert result["status"] == "completed"
    assert result["deviated"] is False
    chaoskit = result["chaoskit"]
    assert chaoskit["cluster"] == cluster.name
    assert chaoskit["seed"] == "7"
    victims = chaoskit["injections"][0]["victims"]
    assert [v["name"].startswith("gateway-") for v in victims] == [True]
    assert [v["ok"] for v in chaoskit["verdicts"]] == [True, True]
    # -rP shows what chaoskit measured for a passing item.
    assert "oracle (after): desired state holds" in run.stdout
    assert f"results: {tmp_path / 'out'}" in run.stdout


def test_a_failing_run_is_a_failed_item_with_a_readable_reason(
    cluster: Cluster, shop: Shop, tmp_path: Path
) -> None:
    run = run_pytest(
        tmp_path,
        "experiments/pod-kill.yaml",
        f"--chaoskit-cluster={cluster.name}",
        "--no-chaoskit-deploy",
        "--chaoskit-var=selector=app=nothing",
    )

    assert run.returncode == 1, run.stdout
    assert "FAILED experiments/pod-kill.yaml::pod-kill" in run.stdout
    reason = "selector 'app=nothing' in namespace 'shop' matches nothing"
    assert "experiment experiments/pod-kill.yaml: interrupted" in run.stdout
    assert f"failed: delete-pods: pod-kill: {reason}" in run.stdout
    assert "Traceback" not in run.stdout
    failure = run.case.find("failure")
    assert failure is not None
    assert reason in failure.get("message", "")
    result = json.loads((tmp_path / "out" / "experiments" / "pod-kill.json").read_text())
    assert result["status"] == "interrupted"
    assert result["chaoskit"]["injections"] == []
