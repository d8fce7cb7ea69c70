"""Chaos Toolkit actions: one function per chaoskit fault, plus the rollback.

The fault functions are not written here: this module makes one for every fault of the
registry (:mod:`chaoskit.faults.registry`) when it is imported, named by the fault's
``action`` (``kill_pods`` for ``pod-kill``), with a keyword argument for each field of
the fault's ``params_type`` (type, default and help as ``chaoskit faults list`` shows
them) and ``configuration``. Adding a fault to ``chaoskit/faults`` adds its action here,
to ``chaos discover chaoskit`` and to the checks of ``chaoskit validate``.

Each function injects its fault through the run's fault session: victims chosen with the
run's seed within the blast-radius limit, what must be undone written to the state file
first, a ``duration`` held and rolled back inside the action. A fault held without
``duration`` stays until ``rollback_faults`` (put it under the experiment's
``rollbacks``), the end of the run, or ``chaoskit recover``.

Every function returns what it did: the victims, timestamps and details, which Chaos
Toolkit keeps in the journal.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

from chaoskit.faults import registry
from chaoskit.faults.base import Fault
from chaoskit.faults.params import describe

Action = Callable[..., dict[str, Any]]
"""A fault's action: its fault's arguments as keywords, and ``configuration``."""

__all__ = ["rollback_faults"]  # and every fault's action, added by refresh()

FAULT_ACTIONS: dict[str, str] = {}
"""Which fault each action injects (action -> fault name), from the registry."""

_NOT_ARGUMENTS = ("configuration", "secrets")
_CONFIGURATION = inspect.Parameter(
    "configuration",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=dict[str, Any] | None,
)


def _inject(fault: str, arguments: dict[str, Any]) -> dict[str, Any]:
    configuration = arguments.get("configuration")
    given = {k: v for k, v in arguments.items() if k not in _NOT_ARGUMENTS and v is not None}
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.get(configuration)
    return ctx.session.inject(fault, given, where=fault).to_dict()


def action_signature(cls: type[Fault[Any]]) -> inspect.Signature:
    """The action's signature: every field of the fault's parameters, keyword-only (the
    required ones first), then ``configuration``."""
    hints = get_type_hints(cls.params_type)
    fields = sorted(
        dataclasses.fields(cls.params_type),
        key=lambda f: (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        ),
    )
    parameters = []
    for f in fields:
        default: Any = inspect.Parameter.empty
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        parameters.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hints[f.name]
            )
        )
    return inspect.Signature([*parameters, _CONFIGURATION], return_annotation=dict[str, Any])


def _doc(cls: type[Fault[Any]]) -> str:
    lines = [f"{cls.summary.rstrip('.')}.", "", f"Injects the fault {cls.name!r}."]
    if cls.holds:
        lines.append(
            "It holds until rolled back: after `duration` if given, else by "
            "`rollback_faults`, the end of the run or `chaoskit recover`."
        )
    lines += ["", "Arguments:"]
    for p in describe(cls.params_type):
        if p.required:
            need = "required"
        elif p.default is None:
            need = "optional"
        else:
            need = f"default {p.default!r}"
        lines.append(f"    {p.name} ({p.type}, {need}): {p.help}")
    lines += ["", "Returns what it did: the victims, timestamps and details."]
    return "\n".join(lines)


def make_action(cls: type[Fault[Any]]) -> Action:
    """The Chaos Toolkit action of the fault ``cls``."""
    sig = action_signature(cls)
    fault, name = cls.name, cls.action

    def action(**arguments: Any) -> dict[str, Any]:
        # Refuse what a written function would refuse (an unknown or a missing argument)
        # with the same TypeError, which Chaos Toolkit reports as the activity's failure.
        try:
            sig.bind(**arguments)
        except TypeError as e:
            raise TypeError(f"{name}() {e}") from None
        return _inject(fault, arguments)

    action.__name__ = action.__qualname__ = name
    action.__module__ = __name__
    action.__doc__ = _doc(cls)
    # Chaos Toolkit's validation and discovery read the signature, and
    # typing.get_type_hints (chaoskit's discovery) the annotations.
    action.__signature__ = sig  # type: ignore[attr-defined]
    action.__annotations__ = {
        **{p.name: p.annotation for p in sig.parameters.values()},
        "return": sig.return_annotation,
    }
    return action


def refresh() -> None:
    """Makes one action per registered fault, in this module's namespace and ``__all__``.

    Importing this module does it once, after every module of ``chaoskit.faults`` has
    registered its faults; call it again after registering or unregistering a fault from
    elsewhere (a test, a plugin).
    """
    namespace = globals()
    for old in FAULT_ACTIONS:
        namespace.pop(old, None)
    FAULT_ACTIONS.clear()
    for cls in registry.faults():
        if cls.action in namespace:
            raise RuntimeError(
                f"fault {cls.name!r}: its action {cls.action!r} is already a name of {__name__}"
            )
        namespace[cls.action] = make_action(cls)
        FAULT_ACTIONS[cls.action] = cls.name
    __all__[:] = sorted([*FAULT_ACTIONS, "rollback_faults"])


def rollback_faults(configuration: dict[str, Any] | None = None) -> list[str]:
    """Undoes every fault of this run that is still in place; returns what it undid."""
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.current()
    if ctx is None:
        return []
    return [c.undo.description for c in ctx.session.rollback()]


refresh()
