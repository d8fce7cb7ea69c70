"""Signals and rollback: Ctrl-C and SIGTERM must never leave a fault behind.

``terminate_raises`` turns SIGTERM into an exception (as Ctrl-C already is), so that the
``finally`` blocks that roll faults back run when a CI runner or a user stops the harness.
``deferred`` holds SIGINT and SIGTERM back while a rollback step runs and delivers them
when it is done, so that an impatient second Ctrl-C does not cut a rollback in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that rollbacks in ``finally`` blocks run."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


@contextmanager
def terminate_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block, unless someone handles it already."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Runs the block to its end; SIGINT/SIGTERM received meanwhile are delivered after it."""
    if not _in_main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous: dict[int, Any] = {}
    for sig in _SIGNALS:
        previous[sig] = signal.signal(sig, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


class StopFlag:
    """Set once SIGINT or SIGTERM arrived inside :func:`remembering_stops`."""

    requested: bool = False


@contextmanager
def remembering_stops() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM raise inside the block as usual (KeyboardInterrupt, Terminated)
    and are also remembered: a caller whose callee swallowed the exception (chaoslib marks
    the experiment interrupted and returns) can still see that it must stop."""
    flag = StopFlag()
    if not _in_main_thread():
        yield flag
        return

    def on_int(signum: int, frame: FrameType | None) -> None:
        flag.requested = True
        raise KeyboardInterrupt

    def on_term(signum: int, frame: FrameType | None) -> None:
        flag.requested = True
        raise Terminated(f"signal {signum}")

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_int),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_term),
    }
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
