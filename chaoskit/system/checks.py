"""Running a system's invariant checks: each in a process of its own, under its timeout.

Both kinds of check run the same way. A ``command`` is started as given (a relative program
path is the system folder's); a ``python`` check is started as a child interpreter running
:mod:`chaoskit.system.checkrunner`, which imports the function from the folder, calls it and
prints its answer. Either way the process runs in the system folder, in a session of its
own, reads :meth:`InvariantInput.stdin`, has ``KUBECONFIG`` set when the input names one, and
its stdout is read by :func:`chaoskit.system.invariants.parse_result`. A timeout kills its
whole process group; so does its end (nothing it started outlives it). A crash, a hang or a
malformed answer cannot reach chaoskit's own process: it is an :class:`InvariantError`, and
the trial is *errored*, never *passed*.

::

    outcomes = run_checks(spec.invariants, given, folder=spec.folder)
    verdict(outcomes)  # "passed", "violated" or "errored"
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chaoskit.system.checkrunner import FAILURE
from chaoskit.system.invariants import (
    InvariantError,
    InvariantInput,
    InvariantResult,
    parse_result,
)
from chaoskit.system.spec import CommandCheck, Invariant, PythonCheck

logger = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("checkrunner.py")
MAX_STDOUT_BYTES = 1 << 20
"""A check answers one JSON object; more output than this is a broken check."""
STDERR_KEPT_BYTES = 64 << 10
"""How much of the end of a check's stderr is kept to quote when it fails."""
STDERR_LINES = 5
STDERR_CHARS = 400
"""How much of that an error message quotes: its last lines, cut from the front."""
EXIT_GRACE_S = 0.5
"""How long the output of a check that exited is still read: a process it left running in
the background may hold its stdout open."""
POLL_S = 0.02
READ_BYTES = 64 << 10
WRITE_BYTES = select.PIPE_BUF
"""What one write to a pipe that is ready for writing takes without blocking."""

Verdict = Literal["passed", "violated", "errored"]


@dataclass(frozen=True)
class CheckOutcome:
    """One check's run: its result, or why it gave none."""

    name: str
    result: InvariantResult | None
    error: str | None
    """The reason the check errored (one line), None when it answered."""
    seconds: float

    @property
    def errored(self) -> bool:
        return self.error is not None

    @property
    def violated(self) -> bool:
        return self.result is not None and not self.result.ok

    def summary(self) -> str:
        """One line: the result's summary, or ``name: errored: reason``."""
        if self.result is not None:
            return self.result.summary()
        return f"{self.name}: errored: {self.error}"


def run_check(invariant: Invariant, given: InvariantInput, *, folder: Path) -> InvariantResult:
    """Runs ``invariant``'s check of the system in ``folder`` and returns its result.

    Raises InvariantError (one line naming the check and the reason, with the end of its
    stderr) when it cannot be started, runs past its timeout, exits non-zero, prints more
    than :data:`MAX_STDOUT_BYTES` or answers something else than a result."""
    name, check = invariant.name, invariant.check
    argv = _argv(check, folder)
    env = dict(os.environ)
    if given.kubeconfig is not None:
        env["KUBECONFIG"] = str(given.kubeconfig)
    logger.debug("invariant %s: running %s in %s", name, argv, folder)
    run = _run(
        name, argv, cwd=folder, env=env, stdin=given.stdin().encode(), timeout=invariant.timeout
    )
    if run.reason is not None or run.returncode != 0:
        reason, stderr = _failure(check, run)
        raise InvariantError(name, _with_stderr(reason, stderr))
    try:
        return parse_result(name, run.stdout.decode("utf-8", "replace"))
    except InvariantError as e:
        raise InvariantError(name, _with_stderr(e.reason, run.stderr)) from None


def run_checks(
    invariants: Iterable[Invariant], given: InvariantInput, *, folder: Path
) -> list[CheckOutcome]:
    """Runs every check in turn (one that errors does not stop the others), timing each."""
    outcomes: list[CheckOutcome] = []
    for invariant in invariants:
        started = time.monotonic()
        result: InvariantResult | None = None
        error: str | None = None
        try:
            result = run_check(invariant, given, folder=folder)
        except InvariantError as e:
            error = e.reason
        seconds = time.monotonic() - started
        outcome = CheckOutcome(invariant.name, result, error, seconds)
        logger.info("invariant %s (%s, %.1f s)", outcome.summary(), given.phase, seconds)
        outcomes.append(outcome)
    return outcomes


def verdict(outcomes: Iterable[CheckOutcome]) -> Verdict:
    """``errored`` if any check errored, else ``violated`` if any found a violation, else
    ``passed`` (no check: passed)."""
    listed = list(outcomes)
    if any(o.errored for o in listed):
        return "errored"
    if any(o.violated for o in listed):
        return "violated"
    return "passed"


def _argv(check: CommandCheck | PythonCheck, folder: Path) -> list[str]:
    if isinstance(check, PythonCheck):
        # -B: no __pycache__ written into the user's folder; -P: the runner's folder is not
        # put on sys.path (the runner puts the system folder there itself).
        return [sys.executable, "-B", "-P", str(RUNNER), str(folder), check.module, check.function]
    program, *args = check.argv
    # As the system file reads it: a path with a slash is the folder's, a bare name is
    # looked up on PATH, an absolute path is taken as it is.
    if "/" in program and not Path(program).is_absolute():
        program = str(folder / program)
    return [program, *args]


@dataclass(frozen=True)
class _Output:
    stdout: bytes
    stderr: bytes
    """Its end (:data:`STDERR_KEPT_BYTES`)."""
    reason: str | None = None
    """Set when the run itself failed: a timeout, too much output."""


@dataclass(frozen=True)
class _Run(_Output):
    returncode: int = 0


def _run(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdin: bytes,
    timeout: float,
) -> _Run:
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            # A group of its own: a timeout kills what the check started too.
            start_new_session=True,
        )
    except OSError as e:
        what = e.filename if e.filename is not None else argv[0]
        raise InvariantError(name, f"cannot be started: {what}: {e.strerror or e}") from None
    with process:
        try:
            output = _communicate(process, stdin, timeout)
        finally:
            # The leader is not reaped yet, so its group id cannot be anyone else's.
            _kill_group(process.pid)
    return _Run(output.stdout, output.stderr, output.reason, returncode=process.returncode)


def _communicate(process: subprocess.Popen[bytes], stdin: bytes, timeout: float) -> _Output:
    """Feeds stdin and reads stdout and stderr until the check is done, without reaping it:
    its pipes closed and it exited, or it exited :data:`EXIT_GRACE_S` ago, or its time is up,
    or it printed too much."""
    assert process.stdin and process.stdout and process.stderr
    deadline = time.monotonic() + timeout
    stdout = bytearray()
    stderr = bytearray()
    pending = memoryview(stdin)
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdin, selectors.EVENT_WRITE)
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if exited_at is None and _exited(process.pid):
                exited_at = now
            if exited_at is not None and (
                not selector.get_map() or now >= exited_at + EXIT_GRACE_S
            ):
                return _Output(bytes(stdout), bytes(stderr))
            if now >= deadline:
                return _Output(
                    bytes(stdout),
                    bytes(stderr),
                    reason=f"did not finish within {timeout:g} s (killed)",
                )
            for key, _ in selector.select(min(deadline - now, POLL_S)):
                fd = key.fd
                if key.fileobj is process.stdin:
                    try:
                        pending = pending[os.write(fd, pending[:WRITE_BYTES]) :]
                    except BrokenPipeError:
                        pending = pending[:0]  # it does not read its input: its choice
                    if not pending:
                        selector.unregister(key.fileobj)
                        process.stdin.close()
                    continue
                chunk = os.read(fd, READ_BYTES)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stdout:
                    stdout += chunk
                    if len(stdout) > MAX_STDOUT_BYTES:
                        return _Output(
                            b"",
                            bytes(stderr),
                            reason=f"printed more than {MAX_STDOUT_BYTES >> 20} MiB on stdout "
                            "(a check prints one JSON object; logs go to stderr)",
                        )
                else:
                    stderr += chunk
                    del stderr[:-STDERR_KEPT_BYTES]


def _exited(pid: int) -> bool:
    """True once the child ``pid`` has ended; it stays unreaped (a zombie), so that its pid,
    and the id of its process group, are not reused until we kill that group."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left of it
        os.killpg(pgid, signal.SIGKILL)


def _failure(check: CommandCheck | PythonCheck, run: _Run) -> tuple[str, bytes]:
    """Why ``run`` failed, and the stderr to quote."""
    if run.reason is not None:
        return run.reason, run.stderr
    if isinstance(check, PythonCheck):
        # The runner's own line says why (the exception, the wrong return value); the
        # check's logs before it are quoted.
        lines = run.stderr.decode("utf-8", "replace").splitlines()
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].startswith(FAILURE):
                return lines[i].removeprefix(FAILURE), "\n".join(lines[:i]).encode()
    return _exit_reason(run.returncode), run.stderr


def _exit_reason(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


def _with_stderr(reason: str, stderr: bytes) -> str:
    """``reason``, then the last lines of ``stderr`` on one line, cut short."""
    lines = []
    for raw in stderr.decode("utf-8", "replace").splitlines():
        line = "".join(c if c.isprintable() else " " for c in raw)
        line = " ".join(line.split())
        if line:
            lines.append(line)
    tail = " | ".join(lines[-STDERR_LINES:])
    if not tail:
        return reason
    if len(tail) > STDERR_CHARS:
        tail = "..." + tail[-(STDERR_CHARS - 3) :]
    return f"{reason}; stderr: {tail}"
