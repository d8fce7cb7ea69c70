"""The state file: what chaoskit changed on a cluster and has not undone yet.

A fault writes how to undo a change (an :class:`Undo`) here *before* the change takes
effect, and marks it undone after its rollback. If the harness dies in between (SIGKILL,
a lost terminal, a crashed CI runner), ``chaoskit recover`` finds the pending entries and
undoes them. One JSON file per cluster, under ``<cache>/state/<cluster>.json``; every
update is a locked read-modify-write, written to a temporary file, fsync'd and renamed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from chaoskit.documents import parse_json, read_text
from chaoskit.errors import InvalidConfig
from chaoskit.locks import file_lock
from chaoskit.proc import process_alive
from chaoskit.settings import Settings

VERSION = 1
LOCK_TIMEOUT_S = 60.0

Status = Literal["pending", "undone", "failed"]


def pid_alive(pid: int) -> bool:
    """True if another process with this pid runs on this host (not this process)."""
    return pid != os.getpid() and process_alive(pid)


@dataclass(frozen=True)
class Undo:
    """How to undo one change: an operation name and its arguments (plain JSON)."""

    op: str
    args: dict[str, Any]
    description: str
    """What the undo does, for people: 'docker start faults-worker'."""


@dataclass(frozen=True)
class Change:
    id: str
    run_id: str
    fault: str
    victim: str
    undo: Undo
    recorded_at: float
    status: Status = "pending"
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Change:
        return cls(**{**raw, "undo": Undo(**raw["undo"])})


@dataclass
class RunInfo:
    id: str
    pid: int
    started_at: float
    what: str
    """The experiment file or command that started the run."""
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "started_at": self.started_at,
            "what": self.what,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunInfo:
        return cls(
            id=raw["id"],
            pid=int(raw["pid"]),
            started_at=float(raw["started_at"]),
            what=str(raw.get("what", "")),
            changes=[Change.from_dict(c) for c in raw.get("changes", [])],
        )

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.status != "undone"]


def state_path(settings: Settings, cluster: str) -> Path:
    return settings.cache_dir / "state" / f"{cluster}.json"


class StateFile:
    """The state file of one cluster."""

    def __init__(self, path: Path, cluster: str) -> None:
        self.path = path
        self.cluster = cluster

    @classmethod
    def of(cls, settings: Settings, cluster: str) -> StateFile:
        return cls(state_path(settings, cluster), cluster)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Held for one read-modify-write only: a minute of waiting means a hung holder.
        with file_lock(
            self.path.with_suffix(".lock"),
            timeout=LOCK_TIMEOUT_S,
            what=f"the state file of cluster {self.cluster!r}",
        ):
            yield

    def _read(self) -> dict[str, RunInfo]:
        if not self.path.is_file():
            return {}
        try:
            return self._runs(parse_json(self.path, read_text(self.path)))
        except InvalidConfig as e:
            raise self._corrupt(e) from None

    def _runs(self, raw: object) -> dict[str, RunInfo]:
        runs = raw.get("runs", []) if isinstance(raw, dict) else None
        if not isinstance(runs, list):
            raise InvalidConfig(self.path, "runs", "missing or not a list")
        parsed: dict[str, RunInfo] = {}
        for i, run in enumerate(runs):
            try:
                info = RunInfo.from_dict(run)
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise InvalidConfig(self.path, f"runs[{i}]", f"malformed: {e!r}") from None
            parsed[info.id] = info
        return parsed

    def _corrupt(self, e: InvalidConfig) -> InvalidConfig:
        """What to do about a state file chaoskit cannot read. It is the only record of
        what a killed run left changed, so it is kept: the user decides."""
        where = f"{e.field}: " if e.field else ""
        return InvalidConfig(
            self.path,
            "",
            f"{where}{e.reason}: the state file of cluster {self.cluster!r} is damaged, so "
            "chaoskit cannot tell which faults are still in place; it is left as it is. "
            "Undo by hand what it still lists (stopped or paused node containers: docker "
            f"start/unpause), then move it aside (mv {self.path} {self.path}.broken) and run "
            "chaoskit recover again, or delete the cluster (chaoskit cluster down)",
        )

    def _write(self, runs: dict[str, RunInfo]) -> None:
        if not runs:
            self.path.unlink(missing_ok=True)
            return
        doc = {
            "version": VERSION,
            "cluster": self.cluster,
            "runs": [r.to_dict() for r in runs.values()],
        }
        tmp = self.path.with_suffix(f".tmp.{os.getpid()}")
        with tmp.open("w") as out:
            json.dump(doc, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _update(self, change: Callable[[dict[str, RunInfo]], Any]) -> Any:
        with self._locked():
            runs = self._read()
            result = change(runs)
            self._write(runs)
            return result

    def runs(self) -> list[RunInfo]:
        with self._locked():
            return list(self._read().values())

    def begin_run(self, run_id: str, what: str) -> None:
        def add(runs: dict[str, RunInfo]) -> None:
            runs[run_id] = RunInfo(run_id, os.getpid(), time.time(), what)

        self._update(add)

    def record(self, run_id: str, fault: str, victim: str, undo: Undo) -> Change:
        """Writes a pending change, durably, before the caller makes it."""

        def add(runs: dict[str, RunInfo]) -> Change:
            run = runs.setdefault(run_id, RunInfo(run_id, os.getpid(), time.time(), ""))
            change = Change(
                id=f"{run_id}-{len(run.changes) + 1}",
                run_id=run_id,
                fault=fault,
                victim=victim,
                undo=undo,
                recorded_at=time.time(),
            )
            run.changes.append(change)
            return change

        result: Change = self._update(add)
        return result

    def mark(self, change: Change, status: Status, error: str = "") -> None:
        def set_status(runs: dict[str, RunInfo]) -> None:
            run = runs.get(change.run_id)
            if run is None:
                return
            run.changes = [
                Change(**{**asdict(c), "undo": c.undo, "status": status, "error": error})
                if c.id == change.id
                else c
                for c in run.changes
            ]

        self._update(set_status)

    def pending(self, run_id: str | None = None) -> list[Change]:
        """Changes not undone yet, newest first (the order to undo them in)."""
        changes = [c for r in self.runs() if run_id is None or r.id == run_id for c in r.pending]
        return sorted(changes, key=lambda c: c.recorded_at, reverse=True)

    def end_run(self, run_id: str) -> None:
        """Forgets a run whose every change is undone; keeps it if something is pending."""

        def drop(runs: dict[str, RunInfo]) -> None:
            run = runs.get(run_id)
            if run is not None and not run.pending:
                del runs[run_id]

        self._update(drop)
