"""chaoskit: chaos and resilience testing for Kubernetes on kind.

Real clusters, real faults, real traffic, honest numbers. The command line (``chaoskit``)
is the main entry point; this module re-exports the small public API.
"""

from __future__ import annotations

from chaoskit.errors import ChaoskitError, InvalidInput, OperationFailed

__version__ = "0.1.0"

__all__ = ["ChaoskitError", "InvalidInput", "OperationFailed", "__version__"]
