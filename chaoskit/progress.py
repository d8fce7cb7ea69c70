"""How long work reports progress without knowing who shows it.

Layers below the CLI call a :class:`Progress`; the CLI passes one that draws with rich, tests
and library users get the logging one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

logger = logging.getLogger("chaoskit")


class Progress(Protocol):
    def task(self, description: str) -> AbstractContextManager[None]:
        """A unit of work: shown while it runs, reported with its duration when done."""
        ...

    def note(self, message: str) -> None:
        """A one-line fact worth showing (a cached step, a path)."""
        ...


class LogProgress:
    """Progress as log records, for library use and tests."""

    @contextmanager
    def task(self, description: str) -> Iterator[None]:
        logger.info("%s ...", description)
        yield
        logger.info("%s: done", description)

    def note(self, message: str) -> None:
        logger.info("%s", message)
