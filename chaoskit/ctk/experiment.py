"""Experiment files: checked before anything runs, then run through chaostoolkit-lib.

:func:`load_experiment` and :func:`check_experiment` read a Chaos Toolkit experiment
(YAML or JSON) and report the first problem as one line naming the file, the path inside
the document (``method[0].provider.arguments.count``) and the reason; chaoskit's own
actions are checked against the faults' parameters, after the configuration has been
substituted, and an unknown fault, action or argument lists the valid ones.
:func:`run_experiment_file` runs the file with chaostoolkit-lib exactly as ``chaos run``
would, with chaoskit's control, and writes the journal with chaoskit's results added.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import logging
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from chaoskit.ctk import CHAOSKIT_MODULES
from chaoskit.ctk.actions import FAULT_ACTIONS
from chaoskit.ctk.operator import OPERATOR_KEYS, give, refusal
from chaoskit.documents import read_document
from chaoskit.errors import InvalidConfig, InvalidInput
from chaoskit.faults import registry, signals
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.params import coerce, parse, unset
from chaoskit.results import RunResults

if TYPE_CHECKING:
    from chaoskit.faults.target import Target

logger = logging.getLogger(__name__)

CONTROL_MODULE = "chaoskit.ctk.control"
_NOT_SUBSTITUTED = frozenset({"configuration", "secrets", "extensions"})
"""Top-level fields whose ``${...}`` chaoslib leaves alone (or that are not chaoslib's)."""
CONTROL = {"name": "chaoskit", "provider": {"type": "python", "module": CONTROL_MODULE}}
TOP_LEVEL = frozenset(
    {
        "version",
        "title",
        "description",
        "tags",
        "contributions",
        "configuration",
        "secrets",
        "extensions",
        "controls",
        "steady-state-hypothesis",
        "method",
        "rollbacks",
        "runtime",
        "dry",
    }
)


def load_experiment(path: Path) -> dict[str, Any]:
    """The experiment document; an unreadable or malformed file names the line."""
    doc = read_document(path)
    if not isinstance(doc, dict):
        raise InvalidConfig(path, "", f"must be a mapping, not {type(doc).__name__}")
    return doc


def _mapping(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidConfig(path, where, f"must be a mapping, not {type(value).__name__}")
    return value


def _list(path: Path, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidConfig(path, where, f"must be a list, not {type(value).__name__}")
    return value


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfig(path, where, "is required (a non-empty string)")
    return value


def _configuration(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    from chaoslib.configuration import load_configuration  # noqa: PLC0415 - heavy import
    from chaoslib.exceptions import ChaosException  # noqa: PLC0415

    raw = _mapping(path, "configuration", doc.get("configuration") or {})
    for key in OPERATOR_KEYS:
        if key in raw:
            # A shared file must not point chaoskit at another cluster.
            raise InvalidConfig(path, f"configuration.{key}", refusal(key))
    try:
        return dict(load_configuration(copy.deepcopy(raw)))
    except ChaosException as e:
        raise InvalidConfig(path, "configuration", str(e)) from e


def _check_chaoskit_call(
    path: Path, where: str, provider: dict[str, Any], configuration: dict[str, Any]
) -> None:
    from chaoslib import substitute  # noqa: PLC0415 - heavy import

    module_name = provider["module"]
    module = importlib.import_module(module_name)
    func_name = str(provider.get("func"))
    exported = sorted(module.__all__)
    if func_name not in exported:
        what = "action" if module_name.endswith("actions") else "probe"
        raise InvalidConfig(
            path,
            f"{where}.func",
            f"unknown chaoskit {what} {func_name!r} (valid: {', '.join(exported)})",
        )
    arguments = _mapping(path, f"{where}.arguments", provider.get("arguments") or {})
    parameters = inspect.signature(getattr(module, func_name)).parameters
    valid = [p for p in parameters if p not in ("configuration", "secrets")]
    for key in arguments:
        if key not in valid:
            raise InvalidConfig(
                path,
                f"{where}.arguments.{key}",
                f"unknown argument of {func_name} (valid: {', '.join(valid)})",
            )
    for name, param in parameters.items():
        if name in valid and param.default is inspect.Parameter.empty and name not in arguments:
            raise InvalidConfig(path, f"{where}.arguments.{name}", f"is required by {func_name}")
    fault = FAULT_ACTIONS.get(func_name)
    if fault is None:
        return
    resolved = substitute(copy.deepcopy(arguments), configuration, {})
    given = {
        k: v
        for k, v in resolved.items()
        if v is not None and not (isinstance(v, str) and "${" in v)
    }
    try:
        _check_fault_arguments(registry.get(fault).params_type, given, f"{where}.arguments")
    except InvalidParam as e:
        raise InvalidConfig(path, e.field, e.reason) from e


def _check_fault_arguments(params_type: type[Any], given: dict[str, Any], where: str) -> None:
    """Each given argument against its type; the whole set once nothing required is left
    to a template that only the run can fill in."""
    hints = get_type_hints(params_type)
    fields = {f.name: f for f in dataclasses.fields(params_type)}
    for key, value in given.items():
        if key in fields and unset(fields[key], value):
            continue
        coerce(value, hints[key], f"{where}.{key}")
    missing = [
        f.name
        for f in dataclasses.fields(params_type)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in given
    ]
    if not missing:
        parse(params_type, given, where=where)


def _check_activity(
    path: Path, where: str, activity: Any, configuration: dict[str, Any], *, kind: str | None
) -> None:
    act = _mapping(path, where, activity)
    if "ref" in act:
        _text(path, f"{where}.ref", act["ref"])
        return
    act_type = act.get("type")
    if act_type not in ("action", "probe"):
        raise InvalidConfig(path, f"{where}.type", f"must be action or probe, not {act_type!r}")
    if kind is not None and act_type != kind:
        raise InvalidConfig(path, f"{where}.type", f"must be {kind} here, not {act_type}")
    _text(path, f"{where}.name", act.get("name"))
    provider = _mapping(path, f"{where}.provider", act.get("provider"))
    ptype = provider.get("type")
    if ptype not in ("python", "process", "http"):
        raise InvalidConfig(
            path, f"{where}.provider.type", f"must be python, process or http, not {ptype!r}"
        )
    if ptype == "python":
        module = _text(path, f"{where}.provider.module", provider.get("module"))
        _text(path, f"{where}.provider.func", provider.get("func"))
        if module in CHAOSKIT_MODULES:
            _check_chaoskit_call(path, f"{where}.provider", provider, configuration)
        elif module.startswith("chaoskit"):
            raise InvalidConfig(
                path,
                f"{where}.provider.module",
                f"unknown chaoskit module {module!r} (valid: {', '.join(CHAOSKIT_MODULES)})",
            )


def check_experiment(path: Path, doc: dict[str, Any]) -> None:
    """Raises InvalidConfig naming the file, the path in the document and the reason."""
    for key in doc:
        if key not in TOP_LEVEL:
            raise InvalidConfig(
                path,
                key if isinstance(key, str) and key.strip() else repr(key),
                f"unknown field (known: {', '.join(sorted(TOP_LEVEL))})",
            )
    _text(path, "title", doc.get("title"))
    _text(path, "description", doc.get("description"))
    configuration = _configuration(path, doc)
    for i, control in enumerate(_list(path, "controls", doc.get("controls") or [])):
        item = _mapping(path, f"controls[{i}]", control)
        _text(path, f"controls[{i}].name", item.get("name"))
        if "ref" not in item:
            provider = _mapping(path, f"controls[{i}].provider", item.get("provider"))
            module = str(provider.get("module", ""))
            if module.startswith("chaoskit") and module != CONTROL_MODULE:
                raise InvalidConfig(
                    path, f"controls[{i}].provider.module", f"must be {CONTROL_MODULE!r}"
                )
    if "steady-state-hypothesis" in doc:
        ssh = _mapping(path, "steady-state-hypothesis", doc["steady-state-hypothesis"])
        _text(path, "steady-state-hypothesis.title", ssh.get("title"))
        where = "steady-state-hypothesis.probes"
        for i, probe in enumerate(_list(path, where, ssh.get("probes") or [])):
            _check_activity(path, f"{where}[{i}]", probe, configuration, kind="probe")
            if isinstance(probe, dict) and "ref" not in probe and "tolerance" not in probe:
                raise InvalidConfig(path, f"{where}[{i}].tolerance", "is required")
    if "method" not in doc:
        raise InvalidConfig(path, "method", "is required (a list of activities)")
    if not _list(path, "method", doc["method"]):
        raise InvalidConfig(path, "method", "is empty: an experiment needs at least one activity")
    _check_references(path, doc)
    for i, activity in enumerate(_list(path, "method", doc["method"])):
        _check_activity(path, f"method[{i}]", activity, configuration, kind=None)
    for i, activity in enumerate(_list(path, "rollbacks", doc.get("rollbacks") or [])):
        _check_activity(path, f"rollbacks[{i}]", activity, configuration, kind="action")
    _check_with_chaoslib(path, doc)


def _check_references(path: Path, doc: dict[str, Any]) -> None:
    """Every ``${name}`` names a configuration or secret key. chaoslib would pass an
    unknown one on as the literal text, to fail (or worse, match nothing) mid-run."""
    known = {str(k) for k in _mapping(path, "configuration", doc.get("configuration") or {})}
    secrets = _mapping(path, "secrets", doc.get("secrets") or {})
    for scope, values in secrets.items():
        known |= {str(k) for k in _mapping(path, f"secrets.{scope}", values or {})}
    stack: list[tuple[str, Any]] = [
        (str(key), value) for key, value in doc.items() if key not in _NOT_SUBSTITUTED
    ]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, str):
            for match in string.Template.pattern.finditer(value):
                name = match.group("braced")
                if name is not None and name not in known:
                    keys = ", ".join(sorted(known)) or "none"
                    raise InvalidConfig(
                        path,
                        where,
                        f"${{{name}}} is not a configuration or secret key (keys: {keys})",
                    )


def check_target(path: Path, doc: dict[str, Any], target: Target) -> None:
    """Refuses, before anything runs, a chaoskit fault of ``doc`` that cannot act on
    ``target`` at all (a power fault on a cluster chaoskit did not make), naming it."""
    for section in ("method", "rollbacks"):
        activities = doc.get(section)
        for i, activity in enumerate(activities if isinstance(activities, list) else []):
            provider = activity.get("provider") if isinstance(activity, dict) else None
            if not isinstance(provider, dict) or provider.get("module") not in CHAOSKIT_MODULES:
                continue
            fault = FAULT_ACTIONS.get(str(provider.get("func")))
            if fault is None:
                continue
            try:
                registry.get(fault).check_target(target)
            except InvalidParam as e:
                raise InvalidConfig(path, f"{section}[{i}]", e.reason) from e


def _check_with_chaoslib(path: Path, doc: dict[str, Any]) -> None:
    from chaoslib.exceptions import ChaosException  # noqa: PLC0415 - heavy import
    from chaoslib.experiment import ensure_experiment_is_valid  # noqa: PLC0415

    try:
        ensure_experiment_is_valid(_without_own_control(doc))
    except ChaosException as e:
        raise InvalidConfig(path, "", f"Chaos Toolkit rejects it: {e}") from e


def _without_own_control(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` without chaoskit's control (checked above): chaoslib would import
    it, and with it the run's machinery and the Kubernetes client, only to find it there."""
    copied = copy.deepcopy(doc)
    controls = copied.get("controls")
    if not isinstance(controls, list):
        return copied
    own = [
        c.get("name")
        for c in controls
        if isinstance(c, dict)
        and isinstance(c.get("provider"), dict)
        and c["provider"].get("module") == CONTROL_MODULE
    ]
    copied["controls"] = [
        c
        for c in controls
        if not (isinstance(c, dict) and (c.get("name") in own or c.get("ref") in own))
    ]
    return copied


@dataclass(frozen=True)
class RunOutcome:
    path: Path
    status: str
    deviated: bool
    output: Path
    chaoskit: dict[str, Any] | None
    journal: dict[str, Any]

    @property
    def results(self) -> RunResults | None:
        return RunResults.from_dict(self.chaoskit) if self.chaoskit else None

    @property
    def rollback_problem(self) -> str | None:
        """A failed undo: what is still changed and how to undo it (None if all undone)."""
        return self.results.rollback_problem() if self.results else None

    @property
    def ok(self) -> bool:
        # A run whose undo failed left the cluster changed: it failed, whatever the oracle.
        return self.status == "completed" and not self.deviated and not self.rollback_problem


def _apply_overrides(
    path: Path,
    doc: dict[str, Any],
    variables: Mapping[str, str],
    chaoskit_keys: Mapping[str, str | None],
) -> None:
    config = doc.setdefault("configuration", {})
    for key, value in variables.items():
        if key not in config:
            keys = ", ".join(sorted(k for k in config if not k.startswith("chaoskit_")))
            raise InvalidInput(
                f"--var {key}: {path} has no configuration key {key!r} (keys: {keys or 'none'})"
            )
        config[key] = value
    for key, setting in chaoskit_keys.items():
        if setting is not None:
            config[key] = setting
    controls = doc.setdefault("controls", [])
    if not any(
        isinstance(c, dict) and (c.get("provider") or {}).get("module") == CONTROL_MODULE
        for c in controls
    ):
        controls.append(copy.deepcopy(CONTROL))


def run_experiment_file(
    path: Path,
    *,
    output: Path,
    cluster: str | None = None,
    namespaces: tuple[str, ...] = (),
    seed: str | None = None,
    allow_context: str | None = None,
    kubeconfig: Path | None = None,
    context: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> RunOutcome:
    """Runs ``path`` with chaostoolkit-lib and chaoskit's control; writes ``output``."""
    from chaoslib.configuration import load_configuration  # noqa: PLC0415 - heavy import
    from chaoslib.experiment import run_experiment  # noqa: PLC0415
    from chaoslib.types import Strategy  # noqa: PLC0415

    from chaoskit.ctk import context as run_context  # noqa: PLC0415 - heavy: only when running

    doc = load_experiment(path)
    check_experiment(path, doc)
    _apply_overrides(
        path,
        doc,
        variables or {},
        {
            "chaoskit_cluster": cluster,
            "chaoskit_namespaces": ",".join(namespaces) if namespaces else None,
            "chaoskit_seed": seed,
        },
    )
    # Not into the configuration: only the person running chaoskit widens the target.
    give(
        allow_context=allow_context,
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        context=context,
    )
    run_context.reset()
    configuration = load_configuration(copy.deepcopy(doc["configuration"]))
    run_context.configure(configuration, what=str(path))
    # The target is resolved (and an unsafe one refused, exit 2) before anything runs,
    # and so is a fault that cannot act on it.
    check_target(path, doc, run_context.resolve(configuration))
    run_context.get(configuration)
    started = time.time()
    try:
        with signals.terminate_raises():
            journal: dict[str, Any] = run_experiment(
                doc,
                settings={"runtime": {"rollbacks": {"strategy": "always"}}},
                strategy=Strategy.DEFAULT,
            )
    finally:
        leftover = run_context.finish()
        run_context.reset()
    chaoskit = journal.get("chaoskit") or leftover
    journal["chaoskit"] = chaoskit
    status = str(journal.get("status", "unknown"))
    deviated = bool(journal.get("deviated"))
    result = {
        "experiment": str(path),
        "started_at": started,
        "status": status,
        "deviated": deviated,
        "chaoskit": chaoskit,
        "journal": journal,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return RunOutcome(path, status, deviated, output, chaoskit, journal)
