"""Settings only the person running chaoskit may give: those that widen the target.

``chaoskit_kubeconfig`` (another kubeconfig), ``chaoskit_context`` (a context in it) and
``chaoskit_allow_context`` (a context chaoskit did not make) point faults at clusters beyond
chaoskit's own. A shared experiment or suite file must not be able to do that, so these come
from the command line (set here for the run) or from the invoking user's environment, never
from a file's ``configuration``: ``chaoskit validate`` rejects them there. Light on purpose (no
Kubernetes client): the validator imports it.
"""

from __future__ import annotations

import os
from typing import Final

OPERATOR_KEYS: Final = {
    "chaoskit_kubeconfig": ("--kubeconfig", "CHAOSKIT_KUBECONFIG"),
    "chaoskit_context": ("--context", "CHAOSKIT_CONTEXT"),
    "chaoskit_allow_context": ("--allow-context", "CHAOSKIT_ALLOW_CONTEXT"),
}
"""Each key with the command-line option and the environment variable that set it."""

_given: dict[str, str] = {}


def give(**values: str | None) -> None:
    """What the command line gave for this run (``kubeconfig=``, ``context=``,
    ``allow_context=``); replaces what an earlier run in this process gave."""
    _given.clear()
    for name, value in values.items():
        key = f"chaoskit_{name}"
        if key not in OPERATOR_KEYS:
            raise ValueError(f"{key} is not an operator setting")
        if value:
            _given[key] = value


def value(key: str) -> str | None:
    """The command line's value for ``key``, else the environment's, else None."""
    return _given.get(key) or os.environ.get(OPERATOR_KEYS[key][1]) or None


def refusal(key: str) -> str:
    """Why a file may not set ``key``, and how to set it instead."""
    option, variable = OPERATOR_KEYS[key]
    return f"set by the person running chaoskit, not by a file: use {option} or {variable}"
