"""The one error hierarchy of chaoskit.

``InvalidInput`` and its subclasses describe what is wrong *before* anything runs (a bad
file, a bad argument): the CLI prints one line and exits with code 2. ``OperationFailed``
and its subclasses describe what went wrong *while* running: one line, the path of a log
where there is one, exit code 1. No traceback reaches a user unless ``--debug`` is given.
"""

from __future__ import annotations

from pathlib import Path


class ChaoskitError(Exception):
    """Root of every error chaoskit raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(ChaoskitError):
    """Something the user gave is wrong; nothing has been changed yet."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line by contract: a line break from the user's own file (a key, a value)
        # is shown escaped.
        super().__init__("\\n".join(message.splitlines()))


class InvalidConfig(InvalidInput):
    """A configuration file is wrong: names the file, the field and the reason."""

    def __init__(self, file: str | Path, field: str, reason: str) -> None:
        self.file = str(file)
        self.field = field
        self.reason = reason
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {reason}")


class OperationFailed(ChaoskitError):
    """A step failed while running; ``log`` points at the evidence when there is some."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        self.log = log
        super().__init__(f"{message} (log: {log})" if log else message)


class EngineFailed(OperationFailed):
    """The Docker engine could not be found, installed or started."""


class BuildFailed(OperationFailed):
    """An image or binary could not be built."""


class ClusterFailed(OperationFailed):
    """A kind cluster could not be created, reached or deleted."""
