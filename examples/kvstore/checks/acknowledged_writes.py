"""The kvstore example's invariant: every write the service acknowledged reads back.

A Python check (``python: checks.acknowledged_writes:check``, docs/system-file.md): called
with the trial's ``phase``, ``acknowledged`` (the JSON Lines file of the writes the load
was answered 201 for, ``{"t": ..., "key": ..., "value": ...}`` each) and ``published``
(``entry``: kv-api's URL on the host). Each acknowledged key is read through the entry: a
404 is a lost write, another value a changed one; both are violations.

A service that cannot be reached (refused, timed out, a 5xx: kv-api answers 502 while the
store is down) is retried for ``unreachable_for`` seconds and then raises: a check that
could not look makes the trial errored, not passed and not failed.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

READ_TIMEOUT_S = 5.0
UNREACHABLE_FOR_S = 30.0
"""How long a read is retried while the service cannot be reached."""
RETRY_EVERY_S = 1.0
READERS = 8
"""Reads in parallel: a trial acknowledges thousands of writes, the check has 120 s."""
SHOWN_VIOLATIONS = 50
"""Violations listed one by one; ``details`` counts all of them."""

Outcome = Literal["ok", "lost", "changed"]


class CannotRead(Exception):
    """The service could not be asked (within the retry bound), or answered nonsense."""


def check(
    *,
    phase: str,
    acknowledged: str | None,
    published: dict[str, str],
    unreachable_for: float = UNREACHABLE_FOR_S,
    **_: Any,
) -> dict[str, Any]:
    """``{"checked", "violations", "details"}`` for the writes of ``acknowledged``; raises
    :class:`CannotRead` when the entry cannot be read, ValueError for a garbled file."""
    expected = _acknowledged(Path(acknowledged)) if acknowledged else {}
    reader = _Reader(published["entry"].rstrip("/"), unreachable_for)
    pool = ThreadPoolExecutor(READERS)
    try:
        outcomes = list(pool.map(reader.read_back, expected.keys(), expected.values()))
    finally:
        # A read that gave up stops the others, and what has not started never does.
        reader.stop.set()
        pool.shutdown(cancel_futures=True)
    wrong = [(key, outcome) for key, outcome in zip(expected, outcomes, strict=True)
             if outcome != "ok"]  # fmt: skip
    return {
        "checked": len(expected),
        "violations": [
            {"what": f"write {key} acknowledged, {outcome}", "key": key}
            for key, outcome in wrong[:SHOWN_VIOLATIONS]
        ],
        "details": {
            "phase": phase,
            "acknowledged": len(expected),
            "lost": sum(outcome == "lost" for _, outcome in wrong),
            "changed": sum(outcome == "changed" for _, outcome in wrong),
        },
    }


def _acknowledged(path: Path) -> dict[str, str]:
    """The value each key must hold: that of its latest acknowledged write."""
    latest: dict[str, tuple[float, str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, value, t = str(record["key"]), str(record["value"]), float(record["t"])
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: not an acknowledged write ({e})") from None
            if key not in latest or t >= latest[key][0]:
                latest[key] = (t, value)
    return {key: value for key, (_, value) in latest.items()}


class _Reader:
    """Reads keys back through the entry, from several threads."""

    def __init__(self, entry: str, unreachable_for: float) -> None:
        self.entry = entry
        self.unreachable_for = unreachable_for
        self.stop = threading.Event()

    def read_back(self, key: str, value: str) -> Outcome:
        url = f"{self.entry}/kv/{urllib.parse.quote(key, safe='')}"
        deadline = time.monotonic() + self.unreachable_for
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=READ_TIMEOUT_S) as response:  # noqa: S310 - the entry is an http URL
                    body = response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return "lost"
                if e.code < 500:
                    raise CannotRead(f"GET {url} answered {e.code}") from None
                reason = f"answered {e.code}"
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out
                reason = str(getattr(e, "reason", e))
            else:
                return "ok" if body == value else "changed"
            if time.monotonic() >= deadline:
                raise CannotRead(
                    f"GET {url}: {reason}, still after {self.unreachable_for:g} s of retries"
                )
            self.stop.wait(RETRY_EVERY_S)
        raise CannotRead(f"GET {url}: stopped, another read gave up")
