"""The build graph of the image factory: named steps, cached by a key of their inputs.

A step's key is a hash of what it is made from (pinned versions, the files of its build
context) and of the keys of the steps it needs, so changing a version or a file rebuilds that
step and everything after it, and nothing else. A step is done when its stamp holds its key
and its outputs are still there (a wiped Docker engine loses images but not stamps).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chaoskit.errors import BuildFailed
from chaoskit.locks import file_lock
from chaoskit.progress import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildEnv:
    """Where a build reads and writes."""

    cache_dir: Path
    contexts_dir: Path

    @property
    def log_dir(self) -> Path:
        return self.cache_dir / "logs" / "build"

    @property
    def stamp_dir(self) -> Path:
        return self.cache_dir / "stamps"

    @property
    def bin_dir(self) -> Path:
        return self.cache_dir / "bin"

    @property
    def work_dir(self) -> Path:
        return self.cache_dir / "work"

    def log(self, step: str) -> Path:
        return self.log_dir / f"{step.replace(':', '-').replace('/', '_')}.log"


@dataclass(frozen=True)
class Step:
    """One thing the factory makes: binaries in the cache, or a Docker image."""

    name: str
    inputs: tuple[str, ...]
    """Strings that identify what the step is made from (versions, recipe text)."""
    build: Callable[[BuildEnv, Path, str], None]
    """Makes the outputs; gets the environment, the step's log file and its key."""
    present: Callable[[BuildEnv, str], bool]
    """Whether the outputs of the build with this key still exist."""
    needs: tuple[str, ...] = ()
    context_dirs: tuple[str, ...] = ()
    """Build-context folders (under ``contexts_dir``) whose files are part of the key."""
    description: str = ""


def hash_tree(root: Path) -> str:
    """A stable hash of every file's relative path, mode bit for execution, and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class Plan:
    """Steps in dependency order, with the key of each."""

    steps: list[Step]
    keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, steps: Sequence[Step], env: BuildEnv, targets: Iterable[str]) -> Plan:
        by_name = {s.name: s for s in steps}
        ordered: list[Step] = []
        seen: set[str] = set()

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in trail:
                raise BuildFailed(f"build steps depend on each other in a cycle: {trail}")
            step = by_name.get(name)
            if step is None:
                raise BuildFailed(f"unknown build step {name!r}")
            for dep in step.needs:
                visit(dep, (*trail, name))
            seen.add(name)
            ordered.append(step)

        for target in targets:
            visit(target, ())
        plan = cls(ordered)
        for step in ordered:
            digest = hashlib.sha256()
            for item in step.inputs:
                digest.update(item.encode() + b"\0")
            for ctx in step.context_dirs:
                digest.update(hash_tree(env.contexts_dir / ctx).encode())
            for dep in step.needs:
                digest.update(plan.keys[dep].encode())
            plan.keys[step.name] = digest.hexdigest()[:16]
        return plan


def _stamp(env: BuildEnv, step: Step) -> Path:
    return env.stamp_dir / step.name.replace("/", "_").replace(":", "-")


def is_done(env: BuildEnv, step: Step, key: str) -> bool:
    stamp = _stamp(env, step)
    return stamp.is_file() and stamp.read_text().strip() == key and step.present(env, key)


BUILD_LOCK_TIMEOUT_S = 7200.0
"""How long a second build waits for the first: above a whole cold build (~40 min)."""


@contextmanager
def build_lock(env: BuildEnv, progress: Progress) -> Iterator[None]:
    """One build at a time per cache: a second chaoskit waits instead of racing the first."""

    def waiting(pid: int | None) -> None:
        progress.note(f"waiting for another chaoskit build to finish (pid {pid})")

    with file_lock(
        env.cache_dir / "build.lock",
        timeout=BUILD_LOCK_TIMEOUT_S,
        what="another chaoskit build",
        on_wait=waiting,
    ):
        yield


@dataclass(frozen=True)
class StepResult:
    name: str
    cached: bool
    seconds: float


def run_step(env: BuildEnv, step: Step, key: str) -> StepResult:
    """Builds ``step`` unless its stamp holds ``key`` and its outputs are there."""
    if is_done(env, step, key):
        return StepResult(step.name, cached=True, seconds=0.0)
    log = env.log(step.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {step.name} (key {key}) started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    stamp = _stamp(env, step)
    stamp.unlink(missing_ok=True)
    started = time.monotonic()
    step.build(env, log, key)
    if not step.present(env, key):
        raise BuildFailed(f"{step.name}: the build ran but its outputs are missing", log=log)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key + "\n")
    return StepResult(step.name, cached=False, seconds=time.monotonic() - started)
