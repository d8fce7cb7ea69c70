"""Runs one ``python`` invariant check in a child interpreter of its own.

``python -B -P checkrunner.py FOLDER MODULE FUNCTION`` imports ``MODULE`` from ``FOLDER``,
calls ``FUNCTION`` with the JSON object read on stdin as keyword arguments, and prints the
mapping it returns as one JSON object on stdout: exactly what a ``command`` check does, so
that :mod:`chaoskit.system.checks` runs both kinds the same way. Whatever goes wrong (the
module does not import, the function raises or returns something else than a JSON mapping)
is one line on stderr, starting with :data:`FAILURE`, and exit status 1.

chaoskit runs this file by its path, not with ``-m``: it uses the standard library only, so
the child needs no chaoskit on its ``sys.path``, and the user's folder cannot shadow it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FAILURE = "chaoskit-check-failed: "
"""How the line that says why the check failed starts (the last line of stderr)."""
REASON_CHARS = 300


class CheckFailed(Exception):
    """Why the check gave no result, as one line."""


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"{FAILURE}usage: checkrunner.py FOLDER MODULE FUNCTION", file=sys.stderr)
        return 2
    folder, module, function = argv
    # The answer goes to the real stdout; what the check prints itself (print(), a program it
    # starts) goes to stderr with its logs, and cannot spoil the answer.
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        text = json.dumps(_call(folder, module, function, _given()), allow_nan=False)
    except CheckFailed as e:
        sys.stdout.flush()  # what the check printed comes before the reason
        print(f"{FAILURE}{_one_line(str(e))}", file=sys.stderr)
        return 1
    with os.fdopen(answer_fd, "w", encoding="utf-8") as answer:
        answer.write(text + "\n")
    return 0


def _given() -> dict[str, Any]:
    try:
        given = json.load(sys.stdin)
    except ValueError as e:
        raise CheckFailed(f"its input is not JSON: {e}") from None
    if not isinstance(given, dict):
        raise CheckFailed("its input is not a JSON object")
    return given


def _call(folder: str, module: str, function: str, given: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, folder)
    try:
        imported = importlib.import_module(module)
    except BaseException as e:  # noqa: BLE001 - whatever the import does is the check's failure
        raise CheckFailed(f"cannot import {module}: {_raised(e, folder)}") from None
    check = getattr(imported, function, None)
    if not callable(check):
        raise CheckFailed(f"module {module} has no function {function}")
    try:
        value = check(**given)
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        raise CheckFailed(f"raised {_raised(e, folder)}") from None
    if not isinstance(value, Mapping):
        raise CheckFailed(f"returned {_kind(value)}, not a mapping (checked, violations, details)")
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise CheckFailed(f"returned what is not JSON: {e}") from None
    return dict(value)


def _raised(error: BaseException, folder: str) -> str:
    """``Type: message (at file:line)``, the line being the innermost one of the folder."""
    text = type(error).__name__
    if str(error):
        text += f": {error}"
    base = Path(folder).resolve()
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(base):
            return f"{text} (at {path.relative_to(base).as_posix()}:{frame.lineno})"
    return text


def _kind(value: object) -> str:
    if value is None:
        return "None"
    noun = type(value).__name__
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads the check left running do not keep it alive once it answered.
    os._exit(status)
