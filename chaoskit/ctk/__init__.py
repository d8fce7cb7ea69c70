"""chaoskit as a Chaos Toolkit extension.

Experiments call chaoskit's faults as actions (:mod:`chaoskit.ctk.actions`), its oracle
as probes (:mod:`chaoskit.ctk.probes`), and declare its control
(:mod:`chaoskit.ctk.control`), which adds the timeline, recovery times and verdicts to the
journal. ``chaos discover chaoskit`` lists them with their arguments; ``chaos run`` and
``chaoskit run`` run the same experiment files.
"""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

from chaoskit import __version__
from chaoskit.faults import registry
from chaoskit.faults.params import describe, type_name

__all__ = ["CHAOSKIT_MODULES", "discover"]

CHAOSKIT_MODULES = ("chaoskit.ctk.actions", "chaoskit.ctk.probes", "chaoskit.ctk.datatier")
"""The modules an experiment may call chaoskit's actions and probes from (the one list:
validation checks calls into these, and the control stops a run when one of them fails)."""

_MODULES = {"action": "chaoskit.ctk.actions", "probe": "chaoskit.ctk.probes"}


def _activities(activity_type: str) -> list[dict[str, Any]]:
    import importlib  # noqa: PLC0415 - discovery only

    module = importlib.import_module(_MODULES[activity_type])
    faults = getattr(module, "FAULT_ACTIONS", {})
    found = []
    for name in module.__all__:
        func = getattr(module, name)
        hints = get_type_hints(func)
        helps: dict[str, str] = {}
        if name in faults:
            helps = {p.name: p.help for p in describe(registry.get(faults[name]).params_type)}
        arguments = []
        for param in inspect.signature(func).parameters.values():
            if param.name in ("configuration", "secrets"):
                continue
            arg: dict[str, Any] = {"name": param.name, "type": type_name(hints[param.name])}
            if param.default is not inspect.Parameter.empty:
                arg["default"] = param.default
            if helps.get(param.name):
                arg["doc"] = helps[param.name]
            arguments.append(arg)
        found.append(
            {
                "type": activity_type,
                "name": name,
                "mod": module.__name__,
                "doc": inspect.getdoc(func) or "",
                "arguments": arguments,
                "return_type": type_name(hints.get("return", Any)),
            }
        )
    return found


def discover(discover_system: bool = True) -> dict[str, Any]:
    """What the extension offers, in Chaos Toolkit's discovery format."""
    from chaoslib.discovery.discover import initialize_discovery_result  # noqa: PLC0415

    discovery: dict[str, Any] = initialize_discovery_result("chaoskit", __version__, "kubernetes")
    discovery["activities"].extend(_activities("action"))
    discovery["activities"].extend(_activities("probe"))
    return discovery
