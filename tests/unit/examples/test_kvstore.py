"""The kvstore example system (examples/kvstore): its system files load, its server keeps
acknowledged writes across a killed process (and its buffered mode does not: the bug the
example's invariant exists to catch), its proxy forwards, and its invariant check passes,
fails and errors as docs/system-file.md says. The server runs as local processes on
127.0.0.1 with a temporary log folder; no Docker, no cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from chaoskit.system.checks import run_check
from chaoskit.system.invariants import InvariantInput, Window
from chaoskit.system.spec import KustomizeDeploy, PythonCheck, load_system

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "kvstore"
KV = EXAMPLE / "images" / "kv" / "kv.py"
START_TIMEOUT_S = 15.0


def _module(path: Path, name: str) -> ModuleType:
    """``path`` imported under a name of its own (the example's ``checks`` package is not
    put on sys.path, where it could shadow another)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ left in the example's folder, which users copy.
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


kv = _module(KV, "kvstore_example_kv")
acknowledged_writes = _module(
    EXAMPLE / "checks" / "acknowledged_writes.py", "kvstore_example_acknowledged_writes"
)


class Server:
    """kv.py running as a process of its own on 127.0.0.1, on a port it picked."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / f"kv-{uuid.uuid4().hex[:8]}.log"
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(KV), *args, "--port", "0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.port = self._port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = re.search(r"listening on port (\d+)", self.log.read_text())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                pytest.fail(f"kv.py exited {self.process.returncode}: {self.log.read_text()}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"kv.py did not listen within {START_TIMEOUT_S} s: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: nothing of the process runs after it (no flush, no handler)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts kv.py with the given arguments; every one started is killed at the end."""
    started: list[Server] = []

    def _start(*args: str) -> Server:
        server = Server(tmp_path, *args)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.kill()


def _request(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _put_burst(url: str, count: int) -> dict[str, str]:
    """``count`` fresh keys written through ``url``: those answered 201 (all of them)."""
    acknowledged = {}
    for _ in range(count):
        key, value = str(uuid.uuid4()), uuid.uuid4().hex
        status, _body = _request("PUT", f"{url}/kv/{key}", value.encode())
        assert status == 201
        acknowledged[key] = value
    return acknowledged


def _readable(url: str, written: dict[str, str]) -> dict[str, str]:
    """The keys of ``written`` that read back with their value."""
    return {
        key: value
        for key, value in written.items()
        if _request("GET", f"{url}/kv/{key}") == (200, value.encode())
    }


def _acks_file(tmp_path: Path, written: dict[str, str]) -> Path:
    """The JSON Lines file chaoskit's recorder writes for these acknowledged writes."""
    path = tmp_path / f"acked-{uuid.uuid4().hex[:8]}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for key, value in written.items():
            out.write(json.dumps({"t": time.time(), "key": key, "value": value}) + "\n")
    return path


def _free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The system files


def test_both_system_files_load() -> None:
    safe = load_system(EXAMPLE)
    unsafe = load_system(EXAMPLE / "chaoskit-system-unsafe.yaml")
    assert (safe.name, unsafe.name) == ("kvstore", "kvstore-unsafe")
    for spec in (safe, unsafe):
        assert spec.namespaces == ("kv",)
        assert [i.tag for i in spec.images] == ["chaoskit-example/kv:1"]
        assert spec.published("entry").node_port == 30081
        assert spec.load is not None and spec.load.target == "entry"
        [invariant] = spec.invariants
        assert isinstance(invariant.check, PythonCheck)
        assert invariant.check.file == EXAMPLE / "checks" / "acknowledged_writes.py"
    assert isinstance(unsafe.deploy, KustomizeDeploy)
    assert unsafe.deploy.folder == EXAMPLE / "overlays" / "unsafe"


def test_the_unsafe_overlay_only_changes_the_durability() -> None:
    overlay = (EXAMPLE / "overlays" / "unsafe" / "kustomization.yaml").read_text()
    assert "../../manifests" in overlay
    assert "{name: KV_DURABILITY, value: buffered}" in overlay
    assert (
        "{name: KV_DURABILITY, value: fsync}" in (EXAMPLE / "manifests" / "store.yaml").read_text()
    )


# The store


def test_put_then_get(start: Callable[..., Server], tmp_path: Path) -> None:
    store = start("store", "--data", str(tmp_path / "data"))
    assert _request("GET", f"{store.url}/healthz") == (200, b"ok\n")
    assert _request("PUT", f"{store.url}/kv/k-1", b"v\x00\xff")[0] == 201
    assert _request("GET", f"{store.url}/kv/k-1") == (200, b"v\x00\xff")
    assert _request("PUT", f"{store.url}/kv/k-1", b"second")[0] == 201
    assert _request("GET", f"{store.url}/kv/k-1") == (200, b"second")
    assert _request("GET", f"{store.url}/kv/missing")[0] == 404
    assert _request("GET", f"{store.url}/kv/a/b")[0] == 400
    assert _request("GET", f"{store.url}/other")[0] == 404


def test_a_write_is_fsynced_before_it_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In fsync mode put() returns (and the server answers 201) only after the line is in
    the log and fsync-ed: what a killed process cannot show, a lost node would."""
    store = kv.Store(tmp_path, "fsync")
    synced: list[bytes] = []
    monkeypatch.setattr(kv.os, "fsync", lambda fd: synced.append(store.path.read_bytes()))
    store.put("k", b"v")
    assert synced and b'"key": "k"' in synced[-1]
    buffered = kv.Store(tmp_path / "b", "buffered")
    synced.clear()
    buffered.put("k", b"v")
    assert synced == []
    assert buffered.path.read_bytes() == b""


def test_acknowledged_writes_survive_a_killed_store(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    store = start("store", "--data", data)
    written = _put_burst(store.url, 200)
    store.kill()  # at once, right after the last 201
    again = start("store", "--data", data)
    assert _readable(again.url, written) == written


def test_the_buffered_store_loses_acknowledged_writes_when_killed(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    """The bug of kvstore-unsafe: acknowledged, then lost (the log is written every 10 s);
    the example's invariant reports every lost one."""
    data = str(tmp_path / "data")
    store = start("store", "--data", data, "--durability", "buffered")
    written = _put_burst(store.url, 50)
    assert _readable(store.url, written) == written  # served from memory meanwhile
    store.kill()
    again = start("store", "--data", data)
    assert _readable(again.url, written) == {}
    result = acknowledged_writes.check(
        phase="after",
        acknowledged=str(_acks_file(tmp_path, written)),
        published={"entry": again.url},
    )
    assert result["checked"] == 50
    assert result["details"]["lost"] == 50
    assert {v["key"] for v in result["violations"]} == set(written)


def test_the_buffered_store_keeps_what_it_flushed(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    store = start("store", "--data", data, "--durability", "buffered", "--flush-interval", "0.2")
    written = _put_burst(store.url, 20)
    time.sleep(1.0)
    store.kill()
    again = start("store", "--data", data)
    assert _readable(again.url, written) == written


def test_durability_comes_from_the_environment_too(tmp_path: Path) -> None:
    """KV_DURABILITY (what the unsafe overlay sets) picks the mode; an unknown one is
    refused."""
    env = {**os.environ, "KV_DURABILITY": "sometimes"}
    run = subprocess.run(
        [sys.executable, str(KV), "store", "--data", str(tmp_path), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert "KV_DURABILITY must be one of fsync, buffered" in run.stderr


def test_a_torn_last_line_is_dropped_and_the_log_goes_on(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    """A crash in the middle of a write (never acknowledged) leaves a torn line: replay
    keeps what precedes it and cuts it off, so that the next write starts a line."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "kv.log").write_bytes(b'{"key": "a", "value": "MQ=="}\n{"key": "b", "val')
    store = start("store", "--data", str(data))
    assert _request("GET", f"{store.url}/kv/a") == (200, b"1")
    assert _request("GET", f"{store.url}/kv/b")[0] == 404
    assert _request("PUT", f"{store.url}/kv/c", b"3")[0] == 201
    store.kill()
    again = start("store", "--data", str(data))
    assert _request("GET", f"{again.url}/kv/a") == (200, b"1")
    assert _request("GET", f"{again.url}/kv/c") == (200, b"3")


# The proxy


def test_the_proxy_forwards_and_answers_502_without_a_store(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    store = start("store", "--data", str(tmp_path / "data"))
    proxy = start("proxy", "--store", store.url)
    assert _request("PUT", f"{proxy.url}/kv/k", b"v")[0] == 201
    assert _request("GET", f"{proxy.url}/kv/k") == (200, b"v")
    assert _request("GET", f"{store.url}/kv/k") == (200, b"v")
    assert _request("GET", f"{proxy.url}/kv/missing")[0] == 404
    assert _request("GET", f"{proxy.url}/kv/a/b")[0] == 400
    store.kill()
    status, body = _request("GET", f"{proxy.url}/kv/k")
    assert status == 502
    assert b"store unreachable" in body
    assert _request("PUT", f"{proxy.url}/kv/k", b"v")[0] == 502
    assert _request("GET", f"{proxy.url}/healthz") == (200, b"ok\n")


# The invariant


def test_the_check_passes_when_every_acknowledged_write_reads_back(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    store = start("store", "--data", str(tmp_path / "data"))
    proxy = start("proxy", "--store", store.url)
    written = _put_burst(proxy.url, 30)
    result = acknowledged_writes.check(
        phase="after",
        window={"start": 0.0, "end": 1.0},
        acknowledged=str(_acks_file(tmp_path, written)),
        published={"entry": proxy.url},
        kubeconfig=None,
    )
    assert result == {
        "checked": 30,
        "violations": [],
        "details": {"phase": "after", "acknowledged": 30, "lost": 0, "changed": 0},
    }


def test_before_a_trial_without_acknowledged_writes_it_checks_nothing() -> None:
    result = acknowledged_writes.check(
        phase="before", acknowledged=None, published={"entry": "http://127.0.0.1:9"}
    )
    assert result["checked"] == 0
    assert result["violations"] == []


def test_the_check_reports_lost_and_changed_writes(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    store = start("store", "--data", str(tmp_path / "data"))
    written = _put_burst(store.url, 3)
    [kept, changed, _] = written
    assert _request("PUT", f"{store.url}/kv/{changed}", b"overwritten")[0] == 201
    acks = {**written, "never-stored": "x"}
    result = acknowledged_writes.check(
        phase="after", acknowledged=str(_acks_file(tmp_path, acks)), published={"entry": store.url}
    )
    assert result["checked"] == 4
    assert sorted(result["violations"], key=lambda v: str(v["key"])) == sorted(
        [
            {"what": f"write {changed} acknowledged, changed", "key": changed},
            {"what": "write never-stored acknowledged, lost", "key": "never-stored"},
        ],
        key=lambda v: str(v["key"]),
    )
    assert result["details"] == {"phase": "after", "acknowledged": 4, "lost": 1, "changed": 1}
    assert kept not in {v["key"] for v in result["violations"]}


def test_the_latest_acknowledged_value_of_a_key_is_the_one_expected(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    store = start("store", "--data", str(tmp_path / "data"))
    assert _request("PUT", f"{store.url}/kv/k", b"new")[0] == 201
    acks = tmp_path / "acks.jsonl"
    acks.write_text(
        '{"t": 2.0, "key": "k", "value": "new"}\n\n{"t": 1.0, "key": "k", "value": "old"}\n'
    )
    result = acknowledged_writes.check(
        phase="after", acknowledged=str(acks), published={"entry": store.url}
    )
    assert (result["checked"], result["violations"]) == (1, [])


@pytest.mark.parametrize("behind", ["nothing", "a proxy without a store"])
def test_the_check_raises_when_the_service_stays_unreachable(
    start: Callable[..., Server], tmp_path: Path, behind: str
) -> None:
    """Refused connections and 5xx answers are retried for unreachable_for seconds, then
    the check raises: its trial is errored, neither passed nor failed."""
    entry = f"http://127.0.0.1:{_free_port()}"
    if behind != "nothing":
        entry = start("proxy", "--store", entry).url
    acks = _acks_file(tmp_path, {f"k{i}": "v" for i in range(40)})
    started = time.monotonic()
    with pytest.raises(acknowledged_writes.CannotRead, match=r"still after 0\.5 s of retries"):
        acknowledged_writes.check(
            phase="after", acknowledged=str(acks), published={"entry": entry}, unreachable_for=0.5
        )
    assert time.monotonic() - started < 5.0  # the other reads stop too


def test_a_garbled_acknowledged_file_is_an_error(tmp_path: Path) -> None:
    acks = tmp_path / "acks.jsonl"
    acks.write_text('{"t": 1.0, "key": "k", "value": "v"}\n{"t": 1.0, "key": "k"\n')
    with pytest.raises(ValueError, match=r"acks\.jsonl:2: not an acknowledged write"):
        acknowledged_writes.check(
            phase="after", acknowledged=str(acks), published={"entry": "http://127.0.0.1:9"}
        )


def test_chaoskit_runs_the_check_as_the_system_file_names_it(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    """Through chaoskit's check runner (a process of its own, in the system folder): a pass,
    then a violation."""
    spec = load_system(EXAMPLE)
    [invariant] = spec.invariants
    store = start("store", "--data", str(tmp_path / "data"))
    written = _put_burst(store.url, 5)

    def given(acks: dict[str, str]) -> InvariantInput:
        return InvariantInput(
            phase="after",
            window=Window(1.0, 2.0),
            published={"entry": store.url},
            acknowledged=_acks_file(tmp_path, acks),
        )

    passed = run_check(invariant, given(written), folder=spec.folder)
    assert (passed.checked, passed.violations) == (5, ())
    failed = run_check(invariant, given({**written, "gone": "v"}), folder=spec.folder)
    assert failed.violations == ({"what": "write gone acknowledged, lost", "key": "gone"},)
    assert not list(EXAMPLE.rglob("__pycache__"))
