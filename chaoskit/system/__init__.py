"""Systems under test of the user's own: a folder described by ``chaoskit-system.yaml``.

``spec`` reads and checks that file (:func:`chaoskit.system.spec.load_system`);
``invariants`` defines what the system's own checks are given and must answer
(:func:`chaoskit.system.invariants.parse_result`); ``checks`` runs them, each in a process
of its own (:func:`chaoskit.system.checks.run_checks`). The format: ``docs/system-file.md``.
"""

from __future__ import annotations
