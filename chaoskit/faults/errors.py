"""The errors of fault injection, under chaoskit's one hierarchy (chaoskit/errors.py)."""

from __future__ import annotations

from chaoskit.errors import InvalidInput, OperationFailed


class InvalidParam(InvalidInput):
    """An argument of a fault is wrong: names the argument and the reason (exit code 2)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class FaultFailed(OperationFailed):
    """A fault found nothing to act on, or could not be injected or rolled back."""
