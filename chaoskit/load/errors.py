"""What can go wrong while load runs (shared by the runner and the worker pods)."""

from __future__ import annotations

from chaoskit.errors import OperationFailed


class LoadFailed(OperationFailed):
    """Locust crashed, did not stop in time, or left nothing to read."""


class TargetUnreachable(LoadFailed):
    """The shop did not answer before any load was started."""
