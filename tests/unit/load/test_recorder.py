"""chaoskit's recorder with a Locust file of the user's own: Locust runs headless for real,
on loopback, against a small key-value server; the file imports nothing of chaoskit but
``acknowledge``, and the series come from the recorder the runner loads beside it.

Locust runs in child processes: importing it monkey-patches the process it runs in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chaoskit.load.runner import LoadRun, LoadSpec, merge_acknowledged

REPO = Path(__file__).resolve().parents[3]

USER_LOCUSTFILE = textwrap.dedent(
    """
    import itertools
    from locust import HttpUser, constant, task
    from chaoskit.load.recorder import acknowledge

    KEYS = itertools.count()

    class Writer(HttpUser):
        wait_time = constant(0.05)

        @task(3)
        def write(self):
            key = next(KEYS)
            with self.client.put(f"/kv/{key}", data=b"v", name="/kv/[key]",
                                 catch_response=True) as answer:
                if answer.status_code == 204:
                    acknowledge(key=key, value="v")

        @task
        def read(self):
            self.client.get("/kv/0", name="/kv/[key]")
    """
)


class _Store(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.writes = 0
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Store
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int) -> None:
        with self.server.lock:
            self.server.requests += 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._answer(200)

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.writes += 1
        self._answer(204)


@pytest.fixture
def store() -> Iterator[_Store]:
    server = _Store()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_users_locustfile_leaves_the_series_and_its_acknowledged_writes(
    store: _Store, tmp_path: Path
) -> None:
    locustfile = tmp_path / "system" / "locustfile.py"
    locustfile.parent.mkdir()
    locustfile.write_text(USER_LOCUSTFILE)
    out = tmp_path / "out"
    spec = LoadSpec(
        profile=locustfile,
        host=store.url,
        duration=2,
        out_dir=out,
        users=3,
        spawn_rate=3,
        run_id="run-user",
        think_time=0.5,  # the shop's option: a file that does not define it still runs
    )
    result = LoadRun(spec).start().wait()

    assert list(out.glob("seconds-*.jsonl")), sorted(p.name for p in out.iterdir())
    # the recorder counted each request once, although the file imports it too
    assert result.stats.total.requests > 10
    # the server's count, less the runner's reachability check and what was in flight at stop
    assert 0 <= (store.requests - 1) - result.stats.total.requests <= spec.users
    assert result.stats.total.failures == 0
    assert any("/kv/[key]" in e.endpoint for e in result.stats.endpoints)
    assert not list(out.glob("acks-*.jsonl")) and not result.orders.acks  # no shop orders

    merged = merge_acknowledged(out, tmp_path / "trial" / "acknowledged.jsonl")
    assert merged is not None
    acked = [json.loads(line) for line in merged.read_text().splitlines()]
    assert store.writes - spec.users <= len(acked) <= store.writes
    assert all(a["value"] == "v" and a["t"] >= result.started_at for a in acked)
    assert [a["t"] for a in acked] == sorted(a["t"] for a in acked)
    assert len({a["key"] for a in acked}) == len(acked)


ACKNOWLEDGE = textwrap.dedent(
    """
    from chaoskit.load.recorder import acknowledge
    acknowledge(key=7, what="write")
    acknowledge(key=8)
    """
)


def _acknowledge(tmp_path: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ACKNOWLEDGE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin", "PYTHONPATH": str(REPO), **env},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_acknowledge_appends_one_line_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _acknowledge(tmp_path, {"CHAOSKIT_LOAD_OUT": str(out)})
    [file] = out.glob("acked-*.jsonl")
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert [{k: v for k, v in line.items() if k != "t"} for line in lines] == [
        {"key": 7, "what": "write"},
        {"key": 8},
    ]
    assert all(isinstance(line["t"], float) for line in lines)


def test_acknowledge_does_nothing_under_plain_locust(tmp_path: Path) -> None:
    _acknowledge(tmp_path, {})
    assert not list(tmp_path.rglob("*.jsonl"))


def test_merging_keeps_every_process_s_records_in_time_order(tmp_path: Path) -> None:
    out = tmp_path / "load"
    out.mkdir()
    (out / "acked-a-1.jsonl").write_text('{"t": 3, "key": 3}\n{"t": 1, "key": 1}\n')
    (out / "acked-b-2.jsonl").write_text('{"t": 2, "key": 2}\n[1]\n{"t": 4, "ke')  # cut short
    merged = merge_acknowledged(out, tmp_path / "acknowledged.jsonl")
    assert merged == tmp_path / "acknowledged.jsonl"
    assert [json.loads(x)["key"] for x in merged.read_text().splitlines()] == [1, 2, 3]


def test_no_acknowledged_operations_is_no_file(tmp_path: Path) -> None:
    assert merge_acknowledged(tmp_path, tmp_path / "acknowledged.jsonl") is None
    assert not (tmp_path / "acknowledged.jsonl").exists()
