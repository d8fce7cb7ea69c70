"""kind clusters: checking configs, bringing clusters up and down, reporting their state."""

from __future__ import annotations
