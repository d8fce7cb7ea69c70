"""Faults: what chaoskit breaks, with seeded victims, blast-radius limits and rollback.

One registry (:mod:`.registry`) holds every fault by name; :mod:`.runner` injects them,
records what must be undone in the state file before it takes effect (:mod:`.state`), and
rolls it back always: at the end of a hold, on errors, on Ctrl-C and SIGTERM, and through
``chaoskit recover`` after a harness was killed.
"""

from __future__ import annotations
