"""Rollback steps are not cut short by Ctrl-C or SIGTERM; SIGTERM reaches finally blocks."""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType

import pytest

from chaoskit.faults import signals


def test_a_signal_during_a_deferred_block_is_delivered_after_it() -> None:
    seen: list[str] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append("handled")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            seen.append("block finished")
        assert seen == ["block finished", "handled"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_raises_so_that_finally_blocks_roll_back() -> None:
    rolled_back = []
    with pytest.raises(signals.Terminated), signals.terminate_raises():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            rolled_back.append(True)
    assert rolled_back == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_swallowed_ctrl_c_is_still_remembered() -> None:
    """chaoslib swallows KeyboardInterrupt; the suite runner must still see it."""
    before_int = signal.getsignal(signal.SIGINT)
    with signals.remembering_stops() as stop:
        assert not stop.requested
        with contextlib.suppress(KeyboardInterrupt):  # what chaoslib does
            os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
    assert signal.getsignal(signal.SIGINT) is before_int


def test_sigterm_is_remembered_and_raises_terminated() -> None:
    with signals.remembering_stops() as stop, pytest.raises(signals.Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
