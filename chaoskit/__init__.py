"""chaoskit: chaos and resilience testing for Kubernetes on kind.

Real clusters, real faults, real traffic, honest numbers. The command line (``chaoskit``)
is the main entry point; this module re-exports the small public API.
"""

from __future__ import annotations

from typing import Any

from chaoskit.errors import ChaoskitError, InvalidInput, OperationFailed

__version__ = "0.1.0"

__all__ = ["ChaoskitError", "InvalidInput", "OperationFailed", "__version__", "discover"]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Chaos Toolkit's discovery entry point (``chaos discover chaoskit``).

    Chaos Toolkit looks for ``discover`` on the top-level package; the extension itself
    lives in ``chaoskit.ctk`` and is imported only when asked for.
    """
    from chaoskit.ctk import discover as discover_extension  # noqa: PLC0415

    return discover_extension(discover_system)
