"""Observing a cluster: watch-based informers, the experiment timeline and the
desired-state oracle. Nothing here changes the cluster."""

from __future__ import annotations
