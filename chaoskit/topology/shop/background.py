"""A background loop in its own thread, started and stopped with the web app.

The outbox relay, the notification consumer and the schema set-up are blocking loops
(PyMySQL and librdkafka block); each runs in a daemon thread whose step function returns
how long to wait before the next step. An exception in a step is logged and retried after
a growing pause, so a dependency that is down never kills the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 5.0


class Loop:
    def __init__(
        self,
        name: str,
        step: Callable[[threading.Event], float],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        """``step(stopping)`` does one round of work and returns the seconds to wait."""
        self.name = name
        self._step = step
        self._on_stop = on_stop
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        """Consecutive failed steps (0 while the loop is healthy)."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info("%s: started", self.name)
        while not self._stopping.is_set():
            try:
                pause = self._step(self._stopping)
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - a loop must outlive its dependencies
                self.failures += 1
                pause = min(MAX_BACKOFF_S, 0.2 * 2 ** min(self.failures, 5))
                log.warning(
                    "%s: %s: %s (retry in %.1f s)", self.name, type(exc).__name__, exc, pause
                )
            if pause > 0:
                self._stopping.wait(pause)
        if self._on_stop is not None:
            try:
                self._on_stop()
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                log.warning("%s: while stopping: %s", self.name, exc)
        log.info("%s: stopped", self.name)
