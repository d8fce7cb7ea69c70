"""Settings shared by every layer, read from the environment (``CHAOSKIT_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chaoskit"


@dataclass(frozen=True)
class Settings:
    """Where chaoskit keeps what outlives one command."""

    cache_dir: Path = field(default_factory=_default_cache_dir)
    """Builds, images and logs, keyed by version; reused by every later run."""

    @classmethod
    def from_env(cls) -> Settings:
        cache = os.environ.get("CHAOSKIT_CACHE_DIR")
        return cls(cache_dir=Path(cache).expanduser()) if cache else cls()

    @property
    def log_dir(self) -> Path:
        return self.cache_dir / "logs"

    @property
    def bin_dir(self) -> Path:
        return self.cache_dir / "bin"
