"""Running a load profile: Locust headless in processes of its own, bounded in time.

``LoadRun(spec).start()`` checks that the target answers, then starts ``python -m locust``
on the profile: one process, or a master and ``spec.workers`` workers on 127.0.0.1, or (with
``worker_mode="pods"``) a master on the host and its workers as pods inside the cluster
(:mod:`chaoskit.load.pods`). Locust stops by itself when the profile's shape ends
(``--run-time``); a hard deadline behind that terminates whatever still runs. ``wait()``
returns a :class:`LoadResult`: the per-second time series, Locust's whole-run figures and
the acknowledged orders as an :class:`~chaoskit.topology.client.OrderRun` for the integrity
ledger. ``stop()`` ends a run early (an experiment that is torn down); what was measured
until then is kept.

Every Locust process also loads :data:`RECORDER_PLUGIN`, chaoskit's recorder, so that any
Locust file (the user's own too) leaves the per-second series. Everything a run produces
stays in ``spec.out_dir``: the recorder's files (``seconds-*.jsonl``, ``acked-*.jsonl``, the
shop's ``acks-*.jsonl``), Locust's CSV files (``locust_*.csv``) and the log of
each Locust process (``locust-*.log``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd

from chaoskit.errors import InvalidInput

# Re-exported: the load errors have always been importable from here.
from chaoskit.load.errors import LoadFailed as LoadFailed  # noqa: PLC0414
from chaoskit.load.errors import TargetUnreachable as TargetUnreachable  # noqa: PLC0414
from chaoskit.load.pods import PodWorkers
from chaoskit.load.profiles import REQUEST_TIMEOUT_ENV, REQUEST_TIMEOUT_S
from chaoskit.load.timeseries import LoadStats, read_locust, read_seconds, write_timeseries
from chaoskit.progress import LogProgress, Progress
from chaoskit.settings import Settings
from chaoskit.topology.client import RUN_ID_LIMIT, OrderRun, new_run_id, owns_key
from chaoskit.topology.ledger import Ack

logger = logging.getLogger(__name__)

CSV_PREFIX = "locust"
STOP_TIMEOUT = 5
"""Seconds Locust lets users finish what they are doing once the shape ends."""
STARTUP_ALLOWANCE = 45
"""Seconds for Locust to start (and for workers to connect) before the run's own time."""
SHUTDOWN_ALLOWANCE = 30
"""Seconds after the run's time (and the stop timeout) before it is cut short."""
TERMINATE_GRACE = 10
"""Seconds between SIGTERM (Locust then writes its statistics) and SIGKILL."""
RECORDER_PLUGIN = Path(__file__).with_name("locust_plugin.py")
"""Loaded beside every profile (``-f PROFILE,PLUGIN``): chaoskit's recorder
(:mod:`chaoskit.load.recorder`) writes the per-second series and the acknowledged operations
of any Locust file."""
RUN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9-]{{0,{RUN_ID_LIMIT - 1}}}")


WorkerMode = Literal["local", "pods"]
WORKER_MODES: tuple[WorkerMode, ...] = ("local", "pods")
POD_STARTUP_ALLOWANCE = 120
"""Seconds for worker pods to be scheduled, start and connect (a loaded node is slow)."""


@dataclass(frozen=True)
class LoadSpec:
    """One run of a profile against a host."""

    profile: Path
    """The locustfile (see :func:`chaoskit.load.profiles.find_profile`)."""
    host: str
    """Base URL of the shop, e.g. the ingress through kind's port mapping on 127.0.0.1."""
    duration: float
    """Seconds the profile's shape runs (Locust's --run-time)."""
    out_dir: Path
    """Where the run's files go; must not hold another run's records."""
    users: int = 50
    """Peak users (flash_sale, ramp) or the user count (steady)."""
    spawn_rate: float | None = None
    """Users started per second; default: the peak within a few seconds."""
    workers: int = 0
    """0: one Locust process; N: a master and N workers (distributed mode)."""
    worker_mode: WorkerMode = "local"
    """local: the workers are processes here; pods: pods inside ``cluster``."""
    cluster: str | None = None
    """The chaoskit cluster the worker pods run in (worker_mode pods)."""
    run_id: str = field(default_factory=new_run_id)
    """Prefix of every idempotency key, so the ledger can tell this run's orders apart."""
    sale_start: float | None = None
    """flash_sale: seconds of baseline before the spike."""
    sale_hold: float | None = None
    """flash_sale: seconds the peak is held."""
    think_time: float | None = None
    """Mean seconds between a user's actions (profile default: 1)."""

    def validate(self) -> None:
        """Raises InvalidInput naming the argument that cannot work."""
        if not self.profile.is_file():
            raise InvalidInput(f"profile {self.profile}: no such file")
        if "," in str(self.profile.resolve()):
            raise InvalidInput(f"profile {self.profile}: Locust cannot load a path with a comma")
        check_host(self.host)
        problems = {
            "--duration": self.duration <= 0,
            "--users": self.users < 1,
            "--spawn-rate": self.spawn_rate is not None and self.spawn_rate <= 0,
            "--workers": self.workers < 0,
            "--think-time": self.think_time is not None and self.think_time < 0,
        }
        for option, bad in problems.items():
            if bad:
                raise InvalidInput(f"{option}: must be positive")
        if not RUN_ID.fullmatch(self.run_id):
            raise InvalidInput(f"run id {self.run_id!r}: 1-64 letters, digits and '-'")
        if self.sale_start is not None and self.sale_start + (self.sale_hold or 0) > self.duration:
            raise InvalidInput("--sale-start: the sale must start and end within --duration")
        if self.worker_mode not in WORKER_MODES:
            raise InvalidInput(f"--worker-mode {self.worker_mode!r}: must be local or pods")
        if self.worker_mode == "pods" and not self.cluster:
            raise InvalidInput("--worker-mode pods: needs --cluster (where the workers run)")
        if self.worker_mode == "pods" and self.workers < 1:
            raise InvalidInput("--worker-mode pods: needs --workers 1 or more")

    @property
    def run_time(self) -> int:
        """Locust's --run-time takes whole seconds."""
        return max(1, math.ceil(self.duration))

    @property
    def startup_allowance(self) -> int:
        """Seconds for Locust to start and its workers to connect."""
        return POD_STARTUP_ALLOWANCE if self.worker_mode == "pods" else STARTUP_ALLOWANCE

    @property
    def deadline_seconds(self) -> float:
        """How long the run may take in all before it is cut short."""
        return self.startup_allowance + self.run_time + STOP_TIMEOUT + SHUTDOWN_ALLOWANCE


@dataclass(frozen=True)
class LoadResult:
    """What a run measured."""

    spec: LoadSpec
    stats: LoadStats
    orders: OrderRun
    ack_times: tuple[float, ...]
    """When each of ``orders.acks`` was acknowledged (epoch seconds), in the same order."""
    started_at: float
    """Epoch seconds (this machine's wall clock) when Locust was started."""
    ended_at: float
    stopped_early: bool = False
    """``stop()`` ended the run before its shape did."""

    @property
    def timeseries(self) -> pd.DataFrame:
        return self.stats.timeseries

    def summary(self) -> dict[str, Any]:
        total = self.stats.total
        return {
            "run_id": self.spec.run_id,
            "profile": self.spec.profile.stem,
            "host": self.spec.host,
            "duration_s": self.spec.duration,
            "users": self.spec.users,
            "workers": self.spec.workers,
            "worker_mode": self.spec.worker_mode,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "stopped_early": self.stopped_early,
            "requests": total.requests,
            "failures": total.failures,
            "rps": round(total.rps, 2),
            "p50_ms": total.p50_ms,
            "p95_ms": total.p95_ms,
            "p99_ms": total.p99_ms,
            "acknowledged_orders": len(self.orders.acks),
            "order_failures": dict(self.orders.failures),
            "endpoints": [vars(e) for e in self.stats.endpoints],
        }


def check_host(host: str) -> None:
    parsed = urllib.parse.urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(f"--host {host!r}: want a URL like http://127.0.0.1:8080")


def check_reachable(host: str, timeout: float = 5) -> None:
    """Fails fast, naming the URL, when nothing answers HTTP there (any status will do)."""
    url = host.rstrip("/") + "/products"
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - http(s) checked above
            return
    except urllib.error.HTTPError:
        return  # it answered: a shop that says 503 is reachable, and worth loading
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TargetUnreachable(f"load target {url} is unreachable: {reason}") from e


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_env(spec: LoadSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of the Locust processes: where the profile writes, and its options."""
    env = {
        **base,
        "CHAOSKIT_RUN_ID": spec.run_id,
        "CHAOSKIT_LOAD_OUT": str(spec.out_dir.resolve()),
        REQUEST_TIMEOUT_ENV: f"{REQUEST_TIMEOUT_S:g}",
        "PYTHONUNBUFFERED": "1",
    }
    for name, value in (
        ("LOCUST_SALE_START", spec.sale_start),
        ("LOCUST_SALE_HOLD", spec.sale_hold),
        ("LOCUST_THINK_TIME", spec.think_time),
    ):
        env.pop(name, None)
        if value is not None:
            env[name] = str(value)
    return env


def pod_env(spec: LoadSpec) -> dict[str, str]:
    """The environment of worker pods: no folder of the harness; records go to the master."""
    env = locust_env(spec, {})
    del env["CHAOSKIT_LOAD_OUT"]
    env["CHAOSKIT_LOAD_RELAY"] = "1"
    return env


def locust_commands(
    spec: LoadSpec, master_port: int = 0, bind_host: str = "127.0.0.1"
) -> list[tuple[str, list[str]]]:
    """(role, argv) of every Locust process here: one, or a master and its local workers.

    With worker pods the master is the only process here; it listens on ``bind_host``.
    """
    files = f"{spec.profile.resolve()},{RECORDER_PLUGIN}"
    locust = [sys.executable, "-m", "locust", "-f", files]
    headless = [
        *locust,
        "--headless",
        *("--host", spec.host),
        *("--users", str(spec.users)),
        *("--spawn-rate", str(spec.spawn_rate or max(1.0, spec.users / 4))),
        *("--run-time", f"{spec.run_time}s"),
        *("--stop-timeout", str(STOP_TIMEOUT)),
        *("--csv", str((spec.out_dir / CSV_PREFIX).resolve())),
        "--csv-full-history",
        "--only-summary",
        # Failed requests are what experiments measure, not an error of the run.
        *("--exit-code-on-error", "0"),
    ]
    if not spec.workers:
        return [("locust", headless)]
    master = [
        *headless,
        "--master",
        *("--master-bind-host", bind_host),
        *("--master-bind-port", str(master_port)),
        *("--expect-workers", str(spec.workers)),
        *("--expect-workers-max-wait", str(spec.startup_allowance)),
    ]
    if spec.worker_mode == "pods":
        return [("master", master)]
    worker = [
        *locust,
        "--worker",
        *("--master-host", "127.0.0.1"),
        *("--master-port", str(master_port)),
    ]
    return [("master", master)] + [(f"worker-{n}", worker) for n in range(1, spec.workers + 1)]


@dataclass
class _Process:
    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    log_handle: IO[bytes]


class LoadRun:
    """One run of a profile, started and stopped by the harness (see the module doc)."""

    def __init__(
        self, spec: LoadSpec, *, settings: Settings | None = None, progress: Progress | None = None
    ) -> None:
        self.spec = spec
        self._settings = settings or Settings.from_env()
        self._progress: Progress = progress or LogProgress()
        self._pods: PodWorkers | None = None
        """The worker pods (worker_mode pods), from start() until they are removed."""
        self._processes: list[_Process] = []
        self._started_at = 0.0
        self._deadline = 0.0
        self._stopped_early = False

    @property
    def pids(self) -> dict[str, int]:
        """The Locust processes by role (``locust``, or ``master`` and ``worker-N``)."""
        return {p.role: p.popen.pid for p in self._processes}

    @property
    def running(self) -> bool:
        return any(p.popen.poll() is None for p in self._processes)

    def start(self) -> LoadRun:
        spec = self.spec
        spec.validate()
        out = spec.out_dir
        if any(any(out.glob(f"{kind}-*.jsonl")) for kind in ("acks", "acked", "seconds")):
            raise InvalidInput(f"--out {out}: already holds a run's records; use an empty folder")
        bind_host, port = "127.0.0.1", 0
        if spec.worker_mode == "pods":
            assert spec.cluster is not None  # validate() made sure
            self._pods = PodWorkers.prepare(
                self._settings,
                cluster=spec.cluster,
                run_id=spec.run_id,
                workers=spec.workers,
                profile=spec.profile,
                host=spec.host,
                env=pod_env(spec),
                deadline_seconds=spec.deadline_seconds,
                out_dir=out,
                progress=self._progress,
            )
            bind_host, port = self._pods.plan.master_host, self._pods.plan.master_port
        else:
            check_reachable(spec.host)
            port = _free_port() if spec.workers else 0
        out.mkdir(parents=True, exist_ok=True)
        self._started_at = time.time()
        self._deadline = time.monotonic() + spec.deadline_seconds
        logger.info(
            "load %s: %s against %s for %d s, %d users, %s",
            spec.run_id,
            spec.profile.stem,
            spec.host,
            spec.run_time,
            spec.users,
            _processes(spec),
        )
        try:
            for role, argv in locust_commands(spec, port, bind_host):
                self._spawn(role, argv, locust_env(spec, os.environ))
            if self._pods is not None:
                self._pods.start()
        except BaseException:
            self._terminate()
            raise
        return self

    def _spawn(self, role: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.spec.out_dir / f"locust-{role}.log"
        handle = log.open("ab")
        handle.write(f"$ {' '.join(argv)}\n".encode())
        handle.flush()
        popen = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.spec.out_dir,
            # Its own session: a Ctrl-C meant for chaoskit does not reach Locust directly;
            # chaoskit stops it (and waits for its statistics) instead.
            start_new_session=True,
        )
        self._processes.append(_Process(role, popen, log, handle))

    @property
    def _main(self) -> _Process:
        return self._processes[0]

    def wait(self, poll: float = 0.5) -> LoadResult:
        """Waits until Locust stopped by itself (or the deadline), then reads the results."""
        if not self._processes:
            raise LoadFailed("wait() before start()")
        try:
            while self._main.popen.poll() is None:
                crashed = [p for p in self._processes[1:] if p.popen.poll() not in (None, 0)]
                if crashed:
                    self._terminate()
                    raise self._failure(crashed[0], "crashed")
                if self._pods is not None:
                    self._pods.check()
                if time.monotonic() > self._deadline:
                    self._terminate()
                    raise LoadFailed(
                        f"Locust did not stop within {self.spec.deadline_seconds:.0f} s",
                        log=self._main.log,
                    )
                time.sleep(poll)
            # Workers quit when the master does; give them a moment, then make sure.
            for process in self._processes[1:]:
                try:
                    process.popen.wait(timeout=TERMINATE_GRACE)
                except subprocess.TimeoutExpired:
                    logger.warning("locust %s did not quit with its master", process.role)
            if self._pods is not None:
                # A master also ends when its last worker went away: that is no success.
                self._pods.check(now=True)
                self._pods.wait_finished(TERMINATE_GRACE)
        finally:
            self._terminate()
        failed = [p for p in self._processes if p.popen.returncode not in (0, None)]
        if failed and not self._stopped_early:
            raise self._failure(failed[0], "crashed")
        return self.collect()

    def check(self) -> None:
        """Raises LoadFailed if a Locust process ended while the run should still go on
        (a crash, or a profile that quit): the harness then marks its trial errored."""
        if not self._processes:
            raise LoadFailed("check() before start()")
        for process in self._processes:
            code = process.popen.poll()
            if code is not None:
                raise self._failure(process, "crashed" if code else "quit before its time")
        if self._pods is not None:
            self._pods.check()

    def stop(self) -> LoadResult:
        """Ends the run now (Locust writes its statistics on SIGTERM) and reads the results."""
        self._stopped_early = self.running
        self._terminate()
        return self.collect()

    def _terminate(self) -> None:
        running = [p for p in self._processes if p.popen.poll() is None]
        for process in running:
            logger.debug("stopping locust %s (pid %d)", process.role, process.popen.pid)
            process.popen.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.popen.wait(timeout=TERMINATE_GRACE)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=TERMINATE_GRACE)
        for process in self._processes:
            process.log_handle.close()
        if self._pods is not None:
            self._pods.remove()

    def _failure(self, process: _Process, what: str) -> LoadFailed:
        who = "Locust" if process.role == "locust" else f"Locust {process.role}"
        last = _last_error(process.log)
        detail = f": {last}" if last else ""
        if self._pods is not None:
            detail += f"; worker pods: {self._pods.describe()}"
        code = process.popen.returncode
        return LoadFailed(f"{who} {what} (exit {code}){detail}", log=process.log)

    def collect(self) -> LoadResult:
        """Reads what the run wrote (also after a failure, for whatever was measured)."""
        out = self.spec.out_dir
        seconds = sorted(out.glob("seconds-*.jsonl"))
        if seconds:
            stats = read_seconds(seconds)
        elif Path(f"{out / CSV_PREFIX}_stats.csv").is_file():
            logger.warning(
                "%s wrote no per-second records; using Locust's history (10 s windows)",
                self.spec.profile,
            )
            stats = read_locust(out / CSV_PREFIX)
        else:
            log = self._main.log if self._processes else None
            raise LoadFailed(f"load run {self.spec.run_id} left no statistics in {out}", log=log)
        acks = read_acks(out, self.spec.run_id)
        orders = OrderRun(run_id=self.spec.run_id, acks=[ack for _, ack in acks])
        orders.failures.update(_order_failures(out / f"{CSV_PREFIX}_failures.csv"))
        return LoadResult(
            spec=self.spec,
            stats=stats,
            orders=orders,
            ack_times=tuple(t for t, _ in acks),
            started_at=self._started_at,
            ended_at=time.time(),
            stopped_early=self._stopped_early,
        )


LOCUST_LOG_LINE = re.compile(r"\[[^]]+\] \S+/(DEBUG|INFO|WARNING)/")


def _last_error(log: Path) -> str:
    """The last line of a log that reads like an error (Locust ends a crash with it)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines[-50:]):
        text = line.strip()
        if not text or text.startswith(("$", "File ", "^", "~")) or LOCUST_LOG_LINE.match(text):
            continue
        return text[:300]
    return ""


def _processes(spec: LoadSpec) -> str:
    if spec.worker_mode == "pods":
        return f"master + {spec.workers} worker pods in cluster {spec.cluster}"
    return f"master + {spec.workers} workers" if spec.workers else "one process"


def read_acks(out_dir: Path, run_id: str) -> list[tuple[float, Ack]]:
    """(epoch seconds, ack) for every order the run's Locust processes saw acknowledged."""
    records: list[tuple[float, Ack]] = []
    for path in sorted(out_dir.glob("acks-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                key, order_id = str(record["idempotency_key"]), str(record["order_id"])
            except (ValueError, KeyError, TypeError):
                logger.warning("%s: skipped a line that is not an ack: %r", path, line[:200])
                continue
            if owns_key(run_id, key):
                records.append((float(record.get("t", 0)), Ack(key, order_id)))
    return sorted(records, key=lambda r: r[0])


def merge_acknowledged(out_dir: Path, dest: Path) -> Path | None:
    """Every operation a run's Locust file acknowledged (``acked-*.jsonl``, from
    :func:`chaoskit.load.recorder.acknowledge`) as one JSON Lines file ``dest``, ordered by
    time; None (and no file) when there are none. A line that is not a JSON object is left
    out with a warning (a process killed mid-write leaves half a line)."""
    records: list[tuple[float, str]] = []
    for path in sorted(out_dir.glob("acked-*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                if line.strip():
                    logger.warning("%s: skipped a line that is not a record: %r", path, line[:200])
                continue
            t = record.get("t")
            when = float(t) if isinstance(t, int | float) and not isinstance(t, bool) else 0.0
            records.append((when, json.dumps(record, separators=(",", ":"))))
    if not records:
        return None
    records.sort(key=lambda r: r[0])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(f"{line}\n" for _, line in records), encoding="utf-8")
    return dest


def _order_failures(failures_csv: Path) -> Counter[str]:
    """Failed order attempts by error, from Locust's failures file."""
    counts: Counter[str] = Counter()
    if not failures_csv.is_file():
        return counts
    table = pd.read_csv(failures_csv)
    for row in table.to_dict("records"):
        if str(row["Name"]).startswith("/orders"):
            counts[f"{row['Name']}: {_error_text(str(row['Error']))}"] += int(row["Occurrences"])
    return counts


def _error_text(error: str) -> str:
    """Locust writes ``CatchResponseError('HTTP 503')`` locally and ``'HTTP 503'`` as master."""
    match = re.fullmatch(r"(?:\w+\()?(['\"])(.*)\1\)?", error.strip())
    return match.group(2) if match else error


def write_outputs(result: LoadResult) -> dict[str, Path]:
    """The time series, the acknowledged orders and the summary, next to Locust's files."""
    out = result.spec.out_dir
    paths = {
        "timeseries": out / "timeseries.csv",
        "acks": out / "acks.jsonl",
        "summary": out / "summary.json",
    }
    write_timeseries(result.timeseries, paths["timeseries"])
    with paths["acks"].open("w", encoding="utf-8") as handle:
        for t, ack in zip(result.ack_times, result.orders.acks, strict=True):
            record = {"idempotency_key": ack.idempotency_key, "order_id": ack.order_id, "t": t}
            handle.write(json.dumps(record) + "\n")
    paths["summary"].write_text(json.dumps(result.summary(), indent=2) + "\n", encoding="utf-8")
    return paths


def run(spec: LoadSpec) -> LoadResult:
    """Runs a profile to its end and returns what it measured."""
    return LoadRun(spec).start().wait()
