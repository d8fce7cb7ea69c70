"""``python -m chaoskit`` runs the command line."""

from __future__ import annotations

from chaoskit.cli import main

main()
