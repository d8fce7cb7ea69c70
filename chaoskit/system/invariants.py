"""Invariants: a system's own checks, run before and after every trial.

A check is given an :class:`InvariantInput` (as one JSON object on stdin for a ``command``,
as keyword arguments with the same JSON values for a ``python`` function) and answers one
JSON object (printed on stdout, or returned as a mapping)::

    {"checked": 120, "violations": [{"what": "write 17 acknowledged, not stored", "key": 17}],
     "details": {"stored": 119}}

``checked`` counts what it looked at, each violation says ``what`` is wrong (and anything
else it likes), ``details`` is free (optional). :func:`parse_result` turns that answer into
an :class:`InvariantResult`; an answer of any other shape is an :class:`InvariantError`: a
broken check makes its trial *errored*, never *passed*. The format: ``docs/system-file.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from chaoskit.errors import OperationFailed

Phase = Literal["before", "after"]
RESULT_FIELDS = frozenset({"checked", "violations", "details"})
SHOWN_CHARS = 60
"""How much of a malformed answer an error message quotes."""


class InvariantError(OperationFailed):
    """A check did not answer as the interface says, or could not be run (it did not start,
    timed out, exited non-zero: :mod:`chaoskit.system.checks`)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invariant {name!r}: {reason}")


class WindowJSON(TypedDict):
    start: float
    end: float


class InvariantInputJSON(TypedDict):
    phase: Phase
    window: WindowJSON
    acknowledged: str | None
    published: dict[str, str]
    kubeconfig: str | None


@dataclass(frozen=True)
class Window:
    """A span of wall-clock time, in seconds since the epoch."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
            raise ValueError(f"not a time window: {self.start} to {self.end}")


@dataclass(frozen=True)
class InvariantInput:
    """What a check is given."""

    phase: Phase
    """``before``: just before the trial starts (its load included); ``after``: once it
    ended (faults rolled back, load stopped)."""
    window: Window
    """From the trial's start to its end; in ``before`` both are the trial's start."""
    published: dict[str, str] = field(default_factory=dict)
    """``http://127.0.0.1:PORT`` of each published Service, by its publish name."""
    acknowledged: Path | None = None
    """A JSON Lines file of the operations the load was told succeeded during the window
    (one object per line, fields as the load wrote them); None when there is none."""
    kubeconfig: Path | None = None
    """The kubeconfig of the cluster the system runs on (for checks that read its state)."""

    def to_json(self) -> InvariantInputJSON:
        return {
            "phase": self.phase,
            "window": {"start": self.window.start, "end": self.window.end},
            "acknowledged": str(self.acknowledged) if self.acknowledged else None,
            "published": dict(self.published),
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
        }

    def stdin(self) -> str:
        """A command check's standard input."""
        return json.dumps(self.to_json()) + "\n"

    def kwargs(self) -> dict[str, Any]:
        """A Python check's keyword arguments: the same JSON values."""
        return dict(self.to_json())


@dataclass(frozen=True)
class InvariantResult:
    """What a check answered: the invariant holds when there is no violation."""

    name: str
    checked: int
    violations: tuple[dict[str, Any], ...] = ()
    """Each with a ``what`` string; the other keys are the check's own."""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        """One line: ``name: N checked, M violations (first: ...)``."""
        line = f"{self.name}: {self.checked} checked, {len(self.violations)} violations"
        if self.violations:
            line += f" (first: {self.violations[0]['what']})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": list(self.violations),
            "details": self.details,
        }


def parse_result(name: str, text: str) -> InvariantResult:
    """The result a command check printed (``text``, its stdout) for invariant ``name``;
    InvariantError with a one-line reason when it is not one JSON object of the shape."""
    stripped = text.strip()
    if not stripped:
        raise InvariantError(name, "printed nothing (it must print one JSON object)")
    try:
        value = json.loads(stripped, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise InvariantError(
            name,
            f"did not print one JSON object ({e.msg}, line {e.lineno} column {e.colno}): "
            f"{_shown(stripped)}",
        ) from None
    except ValueError as e:  # NaN or Infinity
        raise InvariantError(name, f"printed {e}, which is not JSON") from None
    except RecursionError:
        raise InvariantError(name, "printed JSON nested too deep to read") from None
    return result_from(name, value)


def result_from(name: str, value: object) -> InvariantResult:
    """The result a check answered as a parsed JSON value (a Python check's return value);
    InvariantError when it is not of the shape."""
    if not isinstance(value, dict):
        raise InvariantError(name, f"answered {_json_type(value)}, not a JSON object")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvariantError(name, f"answered what is not JSON: {_shown(str(e))}") from None
    for key in value:
        if key not in RESULT_FIELDS:
            known = ", ".join(sorted(RESULT_FIELDS))
            raise InvariantError(name, f"unknown field {_shown(key)} (known: {known})")
    if "checked" not in value:
        raise InvariantError(name, "'checked' is missing (how many things it checked)")
    checked = value["checked"]
    if isinstance(checked, bool) or not isinstance(checked, int) or checked < 0:
        raise InvariantError(
            name, f"'checked' must be an integer of at least 0, not {_shown(checked)}"
        )
    if "violations" not in value:
        raise InvariantError(name, "'violations' is missing (an empty list when none)")
    violations = value["violations"]
    if not isinstance(violations, list | tuple):
        raise InvariantError(name, f"'violations' must be a list, not {_json_type(violations)}")
    for i, violation in enumerate(violations):
        what = violation.get("what") if isinstance(violation, dict) else None
        if not isinstance(what, str) or not what.strip():
            raise InvariantError(
                name, f"violations[{i}] must be an object with a non-empty 'what' string"
            )
    details = value.get("details", {})
    if not isinstance(details, dict):
        raise InvariantError(name, f"'details' must be an object, not {_json_type(details)}")
    return InvariantResult(
        name=name, checked=checked, violations=tuple(violations), details=details
    )


def _refuse_constant(constant: str) -> object:
    raise ValueError(constant)


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),  # before int: a bool is an int
    ((int, float), "a number"),
    (str, "a string"),
    ((list, tuple), "an array"),
    (dict, "an object"),
)


def _json_type(value: object) -> str:
    for kinds, name in _JSON_TYPES:
        if isinstance(value, kinds):
            return name
    return f"a {type(value).__name__}"


def _shown(value: object) -> str:
    """``value`` quoted on one line, cut short."""
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > SHOWN_CHARS:
        text = text[: SHOWN_CHARS - 3] + "..."
    return repr(text)
