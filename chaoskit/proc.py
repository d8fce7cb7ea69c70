"""Running external programs (docker, kind, go, kubectl) with their output kept in a log.

Every long step of chaoskit writes what the program printed to a log file, so that a failure
can be reported in one line that names the log.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from chaoskit.errors import OperationFailed

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3600.0
"""The longest any program chaoskit runs may take unless its call says otherwise: above a
cold Go build of Kubernetes on 2 cores (~15 min per binary set), so that only a hung
program ever reaches it. Calls that should be quicker pass their own."""


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    what: str,
    error: type[OperationFailed] = OperationFailed,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Runs ``cmd``, appending its output to ``log``; raises ``error(what failed, log)``.

    Every run has a deadline: a program still running after ``timeout`` seconds is killed
    and ``error`` names it and the wait."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [os.fspath(c) for c in cmd]
    full_env = {**os.environ, **env} if env is not None else None
    started = time.monotonic()
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(argv)}\n".encode())
        out.flush()
        logger.debug("running %s (log: %s)", shlex.join(argv), log)
        try:
            proc = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as e:
            raise error(f"{what} failed: {argv[0]} not found", log=log) from e
        except subprocess.TimeoutExpired as e:
            out.write(f"# killed: still running after {timeout:g} s\n".encode())
            raise error(f"{what} did not finish within {timeout:g} s (hung?)", log=log) from e
        elapsed = time.monotonic() - started
        out.write(f"# exit {proc.returncode} after {elapsed:.1f} s\n".encode())
    if proc.returncode != 0:
        raise error(f"{what} failed (exit {proc.returncode})", log=log)


def run_pipe(
    first: Sequence[str | os.PathLike[str]],
    second: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    what: str,
    error: type[OperationFailed] = OperationFailed,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Runs ``first | second`` under one deadline, their output appended to ``log``.

    Raises ``error`` when either fails, or kills both when they are still running after
    ``timeout`` seconds (a stalled daemon on either side would otherwise block forever).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    a = [os.fspath(c) for c in first]
    b = [os.fspath(c) for c in second]
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(a)} | {shlex.join(b)}\n".encode())
        out.flush()
        started = time.monotonic()
        try:
            producer = subprocess.Popen(
                a, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=out
            )
        except FileNotFoundError as e:
            raise error(f"{what} failed: {a[0]} not found", log=log) from e
        try:
            consumer = subprocess.Popen(
                b, stdin=producer.stdout, stdout=out, stderr=subprocess.STDOUT
            )
        except FileNotFoundError as e:
            producer.kill()
            producer.wait()
            raise error(f"{what} failed: {b[0]} not found", log=log) from e
        # Only the consumer reads now: the producer gets SIGPIPE if the consumer exits.
        if producer.stdout is not None:
            producer.stdout.close()
        try:
            consumer.wait(timeout=timeout)
            producer.wait(timeout=max(1.0, started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired as e:
            _kill(producer, consumer)
            out.write(f"# killed: still running after {timeout:g} s\n".encode())
            raise error(f"{what} did not finish within {timeout:g} s (hung?)", log=log) from e
        except BaseException:
            _kill(producer, consumer)
            raise
        out.write(
            f"# exit {producer.returncode} | {consumer.returncode} "
            f"after {time.monotonic() - started:.1f} s\n".encode()
        )
    if producer.returncode != 0 or consumer.returncode != 0:
        raise error(f"{what} failed (exit {producer.returncode} | {consumer.returncode})", log=log)


def _kill(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def capture(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a short command and returns its output; never raises for a non-zero exit."""
    argv = [os.fspath(c) for c in cmd]
    full_env = {**os.environ, **env} if env is not None else None
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            input=stdin.decode() if stdin is not None else None,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout} s")


def process_alive(pid: int) -> bool:
    """True if a process with this pid runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
