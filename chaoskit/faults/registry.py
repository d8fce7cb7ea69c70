"""The one registry of faults, by name.

A fault module defines a :class:`~chaoskit.faults.base.Fault` subclass and decorates it
with :func:`register`. Every module of this package is imported on first use, so adding a
fault is adding one module (plus its experiment and test): its Chaos Toolkit action
(:mod:`chaoskit.ctk.actions`), ``chaoskit faults list``, discovery and the checks of
``chaoskit validate`` all come from the class's ``name``, ``action``, ``summary`` and
``params_type``.
"""

from __future__ import annotations

import importlib
import keyword
import pkgutil
from collections.abc import Mapping
from typing import Any, TypeVar

from chaoskit.faults.base import Fault
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.params import parse

F = TypeVar("F", bound=type[Fault[Any]])

_FAULTS: dict[str, type[Fault[Any]]] = {}
_loaded = False


def register(cls: F) -> F:
    """Class decorator: makes a fault known under ``cls.name`` and its action ``cls.action``."""
    name = cls.name
    existing = _FAULTS.get(name)
    if existing is not None and existing is not cls:
        raise RuntimeError(f"fault {name!r} registered twice: {existing} and {cls}")
    # Programming errors, caught when the module is imported: the action becomes a
    # function of chaoskit.ctk.actions, so it must be a public Python name of its own.
    action = getattr(cls, "action", None)
    if action is None:
        raise RuntimeError(f"fault {name!r} ({cls}) declares no action (its Chaos Toolkit name)")
    if not isinstance(action, str) or not action.isidentifier() or keyword.iskeyword(action):
        raise RuntimeError(f"fault {name!r} ({cls}): action must be a Python name, not {action!r}")
    if action.startswith("_"):
        raise RuntimeError(f"fault {name!r} ({cls}): action {action!r} must not be private")
    for other in _FAULTS.values():
        if other is not cls and other.action == action:
            raise RuntimeError(f"action {action!r} of fault {name!r} is already {other.name!r}'s")
    _FAULTS[name] = cls
    return cls


def unregister(name: str) -> None:
    """Forgets the fault ``name`` (a fault a test or a plugin registered for a while)."""
    _FAULTS.pop(name, None)


def load_all() -> None:
    """Imports every module of chaoskit.faults, which registers the faults they define."""
    global _loaded  # noqa: PLW0603 - a process-wide, load-once registry
    if _loaded:
        return
    package = importlib.import_module("chaoskit.faults")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"chaoskit.faults.{module.name}")
    _loaded = True


def names() -> list[str]:
    load_all()
    return sorted(_FAULTS)


def faults() -> list[type[Fault[Any]]]:
    return [_FAULTS[name] for name in names()]


def get(name: str, *, field: str = "fault") -> type[Fault[Any]]:
    load_all()
    try:
        return _FAULTS[name]
    except KeyError:
        valid = ", ".join(sorted(_FAULTS))
        raise InvalidParam(field, f"unknown fault {name!r} (valid: {valid})") from None


def build(name: str, arguments: Mapping[str, Any], *, where: str = "") -> Fault[Any]:
    """The fault ``name`` with checked ``arguments``; errors name the bad argument."""
    cls = get(name, field=where or "fault")
    return cls(parse(cls.params_type, arguments, where=where))
