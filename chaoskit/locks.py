"""File locks with a deadline, whose holder can be named.

``flock`` alone waits forever and says nothing about who holds the lock. Here the holder
writes its pid into the lock file, and a waiter gives up after ``timeout`` seconds with an
error that names that pid (a hung or forgotten chaoskit is then one ``kill`` away).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chaoskit.errors import OperationFailed

POLL_S = 0.2


class LockTimeout(OperationFailed):
    """Another process held a lock for longer than the waiter's deadline."""


def holder(path: Path) -> int | None:
    """The pid written into lock file ``path`` by its current (or last) holder."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def file_lock(
    path: Path,
    *,
    timeout: float,
    what: str,
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` for the ``with`` block.

    Waits at most ``timeout`` seconds for another holder (``on_wait`` is called once,
    with its pid, when waiting starts), then raises :class:`LockTimeout` naming ``what``,
    the file and the holder's pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = holder(path)
                if time.monotonic() >= deadline:
                    who = f"pid {pid}" if pid is not None else "another process"
                    raise LockTimeout(
                        f"{what}: {path} is still held by {who} after {timeout:g} s; "
                        "wait for it to finish or stop it"
                    ) from None
                if not waited and on_wait is not None:
                    on_wait(pid)
                waited = True
                time.sleep(POLL_S)
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
