"""The container engine chaoskit runs kind on: found, or installed and started."""

from __future__ import annotations

from chaoskit.engine.docker import LEGACY_BUILDER_ENV, ensure_build_tools, ensure_engine

__all__ = ["LEGACY_BUILDER_ENV", "ensure_build_tools", "ensure_engine"]
