"""Nothing waits forever: subprocesses and file locks have deadlines that name what hung."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chaoskit import proc
from chaoskit.cluster.kind import Kind
from chaoskit.errors import BuildFailed, OperationFailed
from chaoskit.faults import state as state_module
from chaoskit.faults.state import StateFile, Undo
from chaoskit.images import docker as image_docker
from chaoskit.images import factory
from chaoskit.locks import LockTimeout, file_lock


def test_a_hung_program_is_killed_and_named_with_its_wait(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(OperationFailed, match=r"sleeping did not finish within 0\.5 s"):
        proc.run_logged(["sleep", "30"], log=tmp_path / "log", what="sleeping", timeout=0.5)
    assert time.monotonic() - started < 10


def test_every_run_has_a_deadline_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = subprocess.run

    def run(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("timeout"))
        return real(*args, **kwargs)

    monkeypatch.setattr(proc.subprocess, "run", run)
    proc.run_logged(["true"], log=tmp_path / "log", what="true")
    assert seen == [proc.DEFAULT_TIMEOUT_S]
    assert proc.DEFAULT_TIMEOUT_S >= 1800, "a cold Go build must never reach it"


def test_a_hung_pipe_is_killed_on_both_sides(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BuildFailed, match=r"save \| import did not finish within 0\.5 s"):
        proc.run_pipe(
            ["sleep", "30"],
            ["cat"],
            log=tmp_path / "log",
            what="save | import",
            error=BuildFailed,
            timeout=0.5,
        )
    assert time.monotonic() - started < 10


def test_a_pipe_passes_its_data_and_reports_either_side_failing(tmp_path: Path) -> None:
    log = tmp_path / "log"
    proc.run_pipe(["echo", "through"], ["cat"], log=log, what="echo | cat")
    assert "through" in log.read_text()
    with pytest.raises(OperationFailed, match=r"failed \(exit 1 \| 0\)"):
        proc.run_pipe(["false"], ["cat"], log=log, what="false | cat")


def test_builds_pulls_deletes_and_the_preload_pipe_pass_their_deadlines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeouts: dict[str, Any] = {}

    def run_logged(cmd: list[Any], **kwargs: Any) -> None:
        timeouts[str(cmd[1])] = kwargs.get("timeout")

    def run_pipe(first: list[str], second: list[str], **kwargs: Any) -> None:
        timeouts["save|import"] = kwargs.get("timeout")

    for module in (image_docker, factory):
        monkeypatch.setattr(module, "run_logged", run_logged)
    monkeypatch.setattr(factory, "run_pipe", run_pipe, raising=False)
    monkeypatch.setattr(factory, "capture", lambda *a, **k: None)
    monkeypatch.setattr("chaoskit.cluster.kind.run_logged", run_logged)

    image_docker.build_image(tmp_path, ["x:1"], key="k", log=tmp_path / "log")
    Kind(Path("kind")).delete("c", kubeconfig=None, log=tmp_path / "log")
    factory.preload_images("base", "target", ["a:1"], key="k", log=tmp_path / "log")
    assert timeouts["build"] >= 3600, "a cold build on 2 cores must fit"
    assert timeouts["delete"] is not None
    assert timeouts["save|import"] is not None


def test_a_held_lock_names_its_holder_after_the_deadline(tmp_path: Path) -> None:
    lock = tmp_path / "build.lock"
    waited: list[int | None] = []
    with file_lock(lock, timeout=5, what="the first build"):
        assert lock.read_text().strip() == str(os.getpid())
        with (
            pytest.raises(LockTimeout, match=rf"held by pid {os.getpid()} after 0\.3 s"),
            file_lock(lock, timeout=0.3, what="another build", on_wait=waited.append),
        ):
            pass
    assert waited == [os.getpid()]
    with file_lock(lock, timeout=0.3, what="again"):
        pass  # released


def test_the_state_file_does_not_wait_forever_for_its_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "LOCK_TIMEOUT_S", 0.3)
    state = StateFile(tmp_path / "c.json", "c")
    outcome: list[BaseException | None] = []

    def record() -> None:
        try:
            state.record("r", "node-stop", "n", Undo("docker-start", {"node": "n"}, "start n"))
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - the test looks at what came out
            outcome.append(e)

    with file_lock(tmp_path / "c.lock", timeout=5, what="a hung chaoskit"):
        worker = threading.Thread(target=record, daemon=True)
        worker.start()
        worker.join(timeout=10)
    assert outcome, "record() waited forever for the lock"
    assert isinstance(outcome[0], LockTimeout)
    assert f"pid {os.getpid()}" in str(outcome[0])
