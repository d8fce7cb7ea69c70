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


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    what: str,
    error: type[OperationFailed] = OperationFailed,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
) -> None:
    """Runs ``cmd``, appending its output to ``log``; raises ``error(what failed, log)``."""
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
            raise error(f"{what} timed out after {timeout:.0f} s", log=log) from e
        elapsed = time.monotonic() - started
        out.write(f"# exit {proc.returncode} after {elapsed:.1f} s\n".encode())
    if proc.returncode != 0:
        raise error(f"{what} failed (exit {proc.returncode})", log=log)


def capture(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = 60,
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
