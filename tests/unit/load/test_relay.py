"""Workers that relay their records to the master (as Locust workers in pods do): a real
Locust master and two relaying workers on loopback against a small stand-in shop.

The workers have no output folder of their own; everything the harness reads must arrive
through the master, including the last second and the last acks of the run, which only the
drain at the end delivers: the stand-in shop takes a second to take an order, so when the
run ends, users are still waiting for answers that become acks only after the master has
begun to quit.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chaoskit.load.runner import LoadSpec, _free_port, locust_commands, locust_env, read_acks
from chaoskit.load.timeseries import read_seconds

PROFILES = Path(__file__).resolve().parents[3] / "loadprofiles"
ORDER_SECONDS = 1.5


class _Shop(ThreadingHTTPServer):
    """Answers like the shop's gateway and remembers every request and order it took."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests = 0
        self.orders: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Shop
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        with self.server.lock:
            self.server.requests += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200, [{"id": "flash-1", "price": 1}])

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/orders":
            self._answer(200, {"total": 1})
            return
        time.sleep(ORDER_SECONDS)
        key = self.headers["Idempotency-Key"]
        with self.server.lock:
            order_id = self.server.orders.setdefault(key, str(uuid.uuid4()))
        self._answer(201, {"order_id": order_id, "status": "paid"})


@pytest.fixture
def shop() -> Iterator[_Shop]:
    server = _Shop()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_relaying_workers_deliver_every_record_through_the_master(
    shop: _Shop, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    spec = LoadSpec(
        profile=PROFILES / "steady.py",
        host=shop.url,
        duration=8,
        out_dir=out,
        users=6,
        spawn_rate=6,
        workers=2,
        run_id="run-relay",
        think_time=0.05,
    )
    commands = locust_commands(spec, _free_port())
    master_env = locust_env(spec, os.environ)
    worker_env = {k: v for k, v in master_env.items() if k != "CHAOSKIT_LOAD_OUT"}
    worker_env["CHAOSKIT_LOAD_RELAY"] = "1"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    processes = [
        subprocess.Popen(
            argv,
            env=master_env if role == "master" else worker_env,
            cwd=workdir,
            stdout=(tmp_path / f"{role}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for role, argv in commands
    ]
    try:
        for process in processes:
            assert process.wait(timeout=90) == 0, (tmp_path / "master.log").read_text()[-3000:]
    finally:
        for process in processes:
            process.kill()

    # Only the master wrote: its own users, and what each worker sent it.
    worker_files = sorted(p.name for p in out.glob("*-*.jsonl") if "_" in p.name)
    assert len([n for n in worker_files if n.startswith("acks-")]) == 2, worker_files
    assert len([n for n in worker_files if n.startswith("seconds-")]) == 2, worker_files
    assert not any(workdir.iterdir())

    acks = read_acks(out, "run-relay")
    assert len(acks) > 8
    assert {ack.idempotency_key: ack.order_id for _, ack in acks} == shop.orders

    stats = read_seconds(sorted(out.glob("seconds-*.jsonl")))
    assert stats.total.requests == shop.requests
    assert stats.timeseries[("Aggregated", "users")].max() == 6
