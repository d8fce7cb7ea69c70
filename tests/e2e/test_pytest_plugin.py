"""``pytest experiments/...`` as a user runs it: chaoskit's plugin runs an experiment file
as a test item against the session's cluster, and a failing run is a readable failure. A
system folder of the user's own (``--chaoskit-topology ./FOLDER``) is deployed by the
session, its pod killed by the experiment, and its invariant checks run from a test; a
second session keeps it, Ready and serving, without deploying it again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, Cluster, Shop, delete_namespace
from tests.e2e.test_system import write_system

NODE_PORT = 30083  # kind-config.yaml maps it; test_system.py's system uses 30081


@dataclass(frozen=True)
class PytestRun:
    returncode: int
    stdout: str
    cases: dict[str, ET.Element]
    """The junit test cases by name."""

    @property
    def case(self) -> ET.Element:
        """The one test case of a run that has one."""
        assert len(self.cases) == 1, self.stdout
        return next(iter(self.cases.values()))

    def properties(self, name: str | None = None) -> dict[str, str]:
        case = self.case if name is None else self.cases[name]
        return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def run_pytest(tmp_path: Path, *args: str) -> PytestRun:
    """A separate ``pytest`` in the repo (its pyproject's addopts apply), as a user runs it."""
    junit = tmp_path / f"junit-{uuid.uuid4().hex[:6]}.xml"
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
    cases = {c.get("name", ""): c for c in ET.parse(junit).getroot().iter("testcase")}
    return PytestRun(proc.returncode, proc.stdout, cases)


USER_TEST = """import urllib.request


def test_the_system_serves_and_its_invariants_hold(chaoskit_system):
    assert chaoskit_system.name == "plugin-web"
    assert chaoskit_system.namespaces == ({namespace!r},)
    answer = urllib.request.urlopen(chaoskit_system.published["web"], timeout=10).read()
    assert answer.decode().startswith("web-"), answer
    (outcome,) = chaoskit_system.assert_invariants()
    assert outcome.result.checked == 4
    print("deployed by this session:", chaoskit_system.deployed)
"""


@pytest.fixture
def plugin_namespace(cluster: Cluster) -> Iterator[str]:
    """The system's namespace (the session makes it); deleted on teardown."""
    name = f"e2e-plugin-{uuid.uuid4().hex[:6]}"
    yield name
    delete_namespace(cluster.core, name, timeout=180)


@pytest.mark.usefixtures("probe_loaded")
def test_an_experiment_file_is_a_test_item_that_passes_on_a_system_folder(
    cluster: Cluster, plugin_namespace: str, tmp_path: Path
) -> None:
    folder = write_system(
        tmp_path / "plugin-web",
        plugin_namespace,
        dockerfile="FROM chaoskit/probe:1\nLABEL io.chaoskit.example=plugin-web\n",
        image="e2e-plugin/web:1",
        tag="e2e-plugin/web:1",
        name="plugin-web",
        node_port=NODE_PORT,
    )
    user_test = tmp_path / "test_user_system.py"
    user_test.write_text(USER_TEST.format(namespace=plugin_namespace))
    session = (
        f"--chaoskit-cluster={cluster.name}",
        f"--chaoskit-topology={folder}",
        "-rP",
    )
    started = time.monotonic()
    run = run_pytest(
        tmp_path,
        "experiments/pod-kill.yaml",
        str(user_test),
        *session,
        "--chaoskit-seed=7",
        f"--chaoskit-var=namespace={plugin_namespace}",
        "--chaoskit-var=selector=app=web",
    )
    first_s = time.monotonic() - started

    assert run.returncode == 0, run.stdout
    assert set(run.cases) == {"pod-kill", "test_the_system_serves_and_its_invariants_hold"}
    assert all(c.find("failure") is None and c.find("error") is None for c in run.cases.values())
    # The session deployed the system (it was not there), before the first item.
    assert "chaoskit: building e2e-plugin/web:1 from app/ ..." in run.stdout
    assert "chaoskit: applying system 'plugin-web': done" in run.stdout
    assert "deployed by this session: True" in run.stdout
    result_file = Path(run.properties("pod-kill")["chaoskit_result"])
    assert result_file == tmp_path / "out" / "experiments" / "pod-kill.json"
    result = json.loads(result_file.read_text())
    assert result["status"] == "completed"
    assert result["deviated"] is False
    chaoskit = result["chaoskit"]
    assert chaoskit["cluster"] == cluster.name
    assert chaoskit["seed"] == "7"
    # The oracle watched the system's namespace (the session's default with a system).
    assert chaoskit["namespaces"] == [plugin_namespace]
    victims = chaoskit["injections"][0]["victims"]
    assert [v["name"].startswith("web-") for v in victims] == [True]
    assert [v["ok"] for v in chaoskit["verdicts"]] == [True, True]
    # -rP shows what chaoskit measured for a passing item.
    assert "oracle (after): desired state holds" in run.stdout
    assert f"results: {tmp_path / 'out'}" in run.stdout

    # A second session finds it Ready and serving: kept, nothing built or applied.
    started = time.monotonic()
    again = run_pytest(tmp_path, str(user_test), *session)
    again_s = time.monotonic() - started
    assert again.returncode == 0, again.stdout
    assert "chaoskit: checking system 'plugin-web' is Ready: done" in again.stdout
    assert "chaoskit: system 'plugin-web' is Ready and serving: kept" in again.stdout
    assert "applying system" not in again.stdout and "building" not in again.stdout
    assert "deployed by this session: False" in again.stdout
    print(f"plugin on a system: first session {first_s:.0f} s, second {again_s:.0f} s")


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
