"""What chaoskit records of any Locust file: requests per second, and acknowledged operations.

Imported into a Locust process (chaoskit's load runner loads it beside every profile, see
:data:`chaoskit.load.runner.RECORDER_PLUGIN`; the shop's profiles import it themselves), it
registers its listeners on Locust's events. Nothing of the harness is imported here, only
the standard library, gevent and Locust: chaoskit itself never imports this module (Locust
monkey-patches the interpreter it is imported into), and worker pods get it as a file.

When ``CHAOSKIT_LOAD_OUT`` names a directory, each Locust process (master or worker) writes
files of its own there, named after its host and pid so that workers never clash:

- ``seconds-<host>-<pid>.jsonl``: per wall-clock second and endpoint, the request count,
  failures and a histogram of response times (ms) in fixed buckets (:func:`bucket_ms`),
  plus the user count; chaoskit merges them into an exact per-second time series (Locust's
  own history averages over ~10 s) and merges the buckets over a window for its p99.
- ``acked-<host>-<pid>.jsonl``: one line per call of :func:`acknowledge`, the operations a
  Locust file of the user's own was told succeeded (``{"t": epoch seconds, **fields}``),
  flushed at once: what a system's invariant checks are given as ``acknowledged``.
- ``acks-<host>-<pid>.jsonl``: the shop's acknowledged orders (``loadprofiles/_shop.py``
  writes them through :data:`FILES`), the integrity ledger's input.

Without ``CHAOSKIT_LOAD_OUT`` nothing is written, so a Locust file runs under plain
``locust`` as well.

A request that timed out (connecting or waiting for the answer, after
``CHAOSKIT_REQUEST_TIMEOUT`` seconds) is a failure recorded at the full timeout: the
client waited that long, and a latency SLO must see it.

A worker that runs where the harness's folder is not (a pod inside the cluster) is started
with ``CHAOSKIT_LOAD_RELAY=1`` instead: it sends the same lines to its master with Locust's
custom messages (acknowledgements at once, the per-second records every second), and the
master writes them to ``<kind>-<worker>.jsonl`` in its own ``CHAOSKIT_LOAD_OUT``. When the
test stops, the master asks every worker to drain (stop its users, send what it still holds,
answer) and waits for the answers before it quits, so the last records are not lost between
a worker and a master that is shutting down.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust import events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

OUT_DIR = os.environ.get("CHAOSKIT_LOAD_OUT")
RELAY = os.environ.get("CHAOSKIT_LOAD_RELAY") == "1"
"""A worker sends its records to the master instead of writing them (see the module doc)."""
DEFAULT_REQUEST_TIMEOUT_S = 10.0
"""chaoskit.load.profiles.REQUEST_TIMEOUT_S: what a run without chaoskit uses."""
REQUEST_TIMEOUT_S = float(os.environ.get("CHAOSKIT_REQUEST_TIMEOUT") or DEFAULT_REQUEST_TIMEOUT_S)
"""Seconds the client waits for an answer; a request that took longer timed out."""
RECORDS_MESSAGE = "chaoskit_records"
"""worker -> master: ``{kind: [json line, ...]}`` to append to ``<kind>-<worker>.jsonl``."""
DRAIN_MESSAGE = "chaoskit_drain"
"""master -> worker: stop the users, send every record still held, then answer."""
DRAINED_MESSAGE = "chaoskit_drained"
"""worker -> master: everything this worker recorded has been sent."""
DRAIN_GRACE = 3.0
"""Seconds beyond Locust's --stop-timeout the master waits for its workers to drain."""
ACKS, ACKED, SECONDS = "acks", "acked", "seconds"
KINDS = (ACKS, ACKED, SECONDS)
IMMEDIATE = (ACKS, ACKED)
"""Kinds a relaying worker sends at once rather than with the next second's records."""

logger = logging.getLogger(__name__)


class Records:
    """Where this process's records go: files in ``out_dir``, or to its master.

    Files are opened on first use (after Locust forked, if it does) and flushed line by line.
    A worker that relays (:meth:`relay_to`) holds its lines until :meth:`flush`, which sends
    them in one message; acknowledgements are flushed at once.
    """

    def __init__(self, out_dir: str | None) -> None:
        self.out_dir = Path(out_dir) if out_dir else None
        self.runner: Any = None
        """The worker's runner, which carries the lines to the master; None: files."""
        self._open: dict[str, TextIO] = {}
        self._held: dict[str, list[str]] = defaultdict(list)

    def relay_to(self, runner: Any) -> None:
        self.runner = runner

    @property
    def active(self) -> bool:
        return self.out_dir is not None or self.runner is not None

    def write(self, kind: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        if self.runner is not None:
            self._held[kind].append(line)
            if kind in IMMEDIATE:
                self.flush()
            return
        self.append(kind, f"{socket.gethostname()}-{os.getpid()}", [line])

    def append(self, kind: str, source: str, lines: list[str]) -> None:
        """Appends lines to ``<kind>-<source>.jsonl`` (this process's, or a worker's)."""
        if self.out_dir is None or not lines:
            return
        name = f"{kind}-{source}.jsonl"
        handle = self._open.get(name)
        if handle is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            handle = self._open[name] = (self.out_dir / name).open("a", encoding="utf-8")
        handle.write("".join(f"{line}\n" for line in lines))
        handle.flush()

    def flush(self) -> None:
        """Sends the lines held for the master; keeps them for the next try if that fails."""
        if self.runner is None or not any(self._held.values()):
            return
        held, self._held = self._held, defaultdict(list)
        try:
            self.runner.send_message(RECORDS_MESSAGE, dict(held))
        except Exception as e:  # noqa: BLE001 - a lost connection must not end the user
            logger.warning("could not send records to the master (%s); will retry", e)
            for kind, lines in held.items():
                self._held[kind][:0] = lines


FILES = Records(OUT_DIR)


def acknowledge(**fields: Any) -> None:
    """Records one operation the system under test acknowledged (a write it said it kept):
    one line ``{"t": <epoch seconds>, **fields}`` in ``acked-<host>-<pid>.jsonl``, written
    at once. The system's invariant checks get these lines as ``acknowledged``. Fields must
    be JSON values. Does nothing when the file runs without chaoskit (no
    ``CHAOSKIT_LOAD_OUT``)."""
    if FILES.active:
        FILES.write(ACKED, {"t": time.time(), **fields})


def bucket_ms(ms: float) -> int:
    """The fixed latency bucket of a response time, named by its upper bound: 1 ms wide up
    to 100 ms, 10 ms up to 1 s, 100 ms up to 10 s, 1 s beyond. A percentile over the buckets
    is never below the true one (a 9,950 ms answer is not a 9,900 ms one)."""
    step = 1 if ms < 100 else 10 if ms < 1000 else 100 if ms < 10000 else 1000
    return max(step, math.ceil(ms / step - 1e-9) * step)


def _timed_out(exception: BaseException | None, response: Any) -> bool:
    """Whether the request gave up waiting: its own error, or the transport error behind a
    failure that the user's code reported (``catch_response``)."""
    errors = (exception, getattr(response, "error", None))
    return any(isinstance(e, TimeoutError | gevent.Timeout) for e in errors)


def latency_sample(
    response_time: float | None, exception: BaseException | None, response: Any = None
) -> tuple[float, bool]:
    """(milliseconds, failed) as recorded: a timed-out request is a failure at the full
    timeout (also one that gave up connecting sooner: the client's wait was spent); a
    failure whose wait is unknown counts as a timeout. So is any request that took longer
    than the timeout (the client's timeout bounds each socket wait, not the whole request;
    a user who waited that long has given up): no sample is ever above the timeout."""
    timeout_ms = REQUEST_TIMEOUT_S * 1000
    if _timed_out(exception, response):
        return timeout_ms, True
    if response_time is None:
        return (timeout_ms, True) if exception is not None else (0.0, False)
    if response_time >= timeout_ms:
        return timeout_ms, True
    return response_time, exception is not None


class PerSecond:
    """Requests by completion second and endpoint; complete seconds are written every second."""

    def __init__(self) -> None:
        self.requests: dict[int, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self.users: dict[int, int] = {}
        self.testing = False
        """Between test_start and test_stop: the seconds whose user count is recorded (not
        those a master spends waiting for its workers)."""

    def add(self, method: str, name: str, response_ms: float, failed: bool) -> None:
        second = int(time.time())
        bucket = self.requests[second].setdefault(
            (method, name), {"count": 0, "failures": 0, "times": defaultdict(int)}
        )
        bucket["count"] += 1
        bucket["failures"] += failed
        bucket["times"][bucket_ms(response_ms)] += 1

    def flush(self, *, everything: bool = False) -> None:
        now = int(time.time())
        for second in sorted(self.requests):
            if second >= now and not everything:
                break
            for (method, name), bucket in self.requests.pop(second).items():
                FILES.write(SECONDS, {"t": second, "type": method, "name": name, **bucket})
        for second in sorted(self.users):
            if second >= now and not everything:
                break
            FILES.write(SECONDS, {"t": second, "users": self.users.pop(second)})
        FILES.flush()


PER_SECOND = PerSecond()


def record_request(
    request_type: str,
    name: str,
    response_time: float | None,
    exception: BaseException | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    """Locust's ``request`` event: one sample into its second and endpoint."""
    ms, failed = latency_sample(response_time, exception, response)
    PER_SECOND.add(request_type, name, ms, failed)


def _start_recording(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if RELAY and isinstance(runner, WorkerRunner):
        FILES.relay_to(runner)
    if isinstance(runner, MasterRunner):
        _serve_workers(runner)
    elif isinstance(runner, WorkerRunner):
        runner.register_message(DRAIN_MESSAGE, _drain, concurrent=True)
    if not FILES.active:
        return

    def every_second() -> None:
        while True:
            # Users are counted where the shape runs (master or local runner), not per worker.
            if PER_SECOND.testing and runner is not None and not isinstance(runner, WorkerRunner):
                PER_SECOND.users[int(time.time())] = runner.user_count
            PER_SECOND.flush()
            gevent.sleep(1.02 - time.time() % 1.0)

    gevent.spawn(every_second)


def _serve_workers(master: Any) -> None:
    """The master's side: write what relaying workers send; drain every worker at the end."""
    drained: set[str] = set()

    def records(msg: Any, **_: Any) -> None:
        source = re.sub(r"[^A-Za-z0-9_.-]", "-", str(msg.node_id))
        for kind, lines in (msg.data or {}).items():
            if kind in KINDS:
                FILES.append(kind, source, [str(line) for line in lines])

    def drained_worker(msg: Any, **_: Any) -> None:
        drained.add(str(msg.node_id))

    def drain_workers(environment: Any, **_: Any) -> None:
        # Before the master quits (and stops listening), every worker stops its users and
        # sends what it recorded; the connection keeps messages in order, so the answer comes
        # after the last record.
        workers = [c.id for c in master.clients.all if c.state != STATE_MISSING]
        for worker in workers:
            master.send_message(DRAIN_MESSAGE, None, client_id=worker)
        deadline = time.monotonic() + (environment.stop_timeout or 0) + DRAIN_GRACE
        while not drained.issuperset(workers) and time.monotonic() < deadline:
            gevent.sleep(0.1)
        missing = sorted(set(workers) - drained)
        if missing:
            logger.warning(
                "workers did not drain in time, their last records may be missing: %s",
                ", ".join(missing),
            )

    master.register_message(RECORDS_MESSAGE, records)
    master.register_message(DRAINED_MESSAGE, drained_worker)
    master.environment.events.test_stop.add_listener(drain_workers)


def _drain(environment: Any, **_: Any) -> None:
    """The worker's side of the drain: stop the users, send everything, answer."""
    runner = environment.runner
    runner.stop()
    PER_SECOND.flush(everything=True)
    runner.send_message(DRAINED_MESSAGE)


def _test_started(**_: Any) -> None:
    PER_SECOND.testing = True


def _flush_at_stop(environment: Any, **_: Any) -> None:
    PER_SECOND.testing = False
    # A worker's users are stopped now: its last seconds are complete. (Where users are
    # counted, the current second is still being counted; that waits for quitting.)
    if isinstance(environment.runner, WorkerRunner):
        PER_SECOND.flush(everything=True)


def _flush_at_exit(**_: Any) -> None:
    PER_SECOND.flush(everything=True)


# Registered when imported (Locust's event hooks are untyped: reached through Any).
_events: Any = events
_events.request.add_listener(record_request)
_events.init.add_listener(_start_recording)
_events.test_start.add_listener(_test_started)
_events.test_stop.add_listener(_flush_at_stop)
_events.quitting.add_listener(_flush_at_exit)

__all__ = ["FILES", "PER_SECOND", "REQUEST_TIMEOUT_S", "acknowledge", "latency_sample"]
