"""Running chaoskit's console entry point in this process, as fast as a unit test wants."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from chaoskit.cli import main


def invoke(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``chaoskit ARGS``. An exception that ``main`` lets
    through is what a user would see as a traceback: it propagates to the test."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        else:
            code = 0
    return code, out.getvalue(), err.getvalue()
