"""The systems under test that chaoskit deploys onto a cluster (the e-commerce shop)."""

from __future__ import annotations
