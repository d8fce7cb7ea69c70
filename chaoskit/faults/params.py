"""Fault parameters: frozen dataclasses, checked field by field from what an experiment gives.

Each fault declares its parameters as a frozen dataclass with type hints and a ``help`` in
each field's metadata. :func:`parse` turns a raw mapping (an experiment's ``arguments``, or
``--set key=value`` from the command line) into that dataclass, and says exactly which
argument is wrong and why, listing the valid ones for a name it does not know.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from chaoskit.faults.errors import InvalidParam

T = TypeVar("T")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class ParamInfo:
    """One parameter, as ``chaoskit faults list`` and Chaos Toolkit discovery show it."""

    name: str
    type: str
    required: bool
    default: Any
    help: str


def describe(cls: type[Any]) -> list[ParamInfo]:
    hints = get_type_hints(cls)
    result = []
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        result.append(
            ParamInfo(
                name=f.name,
                type=type_name(hints[f.name]),
                required=required,
                default=list(default) if isinstance(default, tuple) else default,
                help=str(f.metadata.get("help", "")),
            )
        )
    return sorted(result, key=lambda p: not p.required)


def parse(cls: type[T], raw: Mapping[str, Any], *, where: str = "") -> T:
    """Builds ``cls`` from ``raw``; raises :class:`InvalidParam` naming the argument."""
    if not isinstance(raw, Mapping):
        raise InvalidParam(where, f"must be a mapping of arguments, not {type(raw).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in fields:
            valid = ", ".join(sorted(fields))
            raise InvalidParam(_join(where, str(key)), f"unknown argument (valid: {valid})")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        path = _join(where, name)
        if name in raw and unset(f, raw[name]):
            continue
        if name in raw:
            values[name] = coerce(raw[name], hints[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidParam(path, "is required")
    params = cls(**values)
    check = getattr(params, "check", None)
    if callable(check):
        try:
            check()
        except InvalidParam as e:
            raise InvalidParam(_join(where, e.field), e.reason) from None
    return params


def unset(f: dataclasses.Field[Any], value: Any) -> bool:
    """An optional string left empty (an experiment's ``"${spare}"`` with no value) is
    not given; a required one must not be empty."""
    return value == "" and f.default == ""


def _join(where: str, name: str) -> str:
    if not where:
        return name
    return f"{where}.{name}" if name else where


def coerce(value: Any, hint: Any, path: str) -> Any:  # noqa: PLR0911, PLR0912 - one case per type
    """``value`` as type ``hint``; strings from the environment or the CLI are converted."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, path)
            except InvalidParam as e:
                errors.append(e.reason)
        raise InvalidParam(path, errors[0] if len(errors) == 1 else " or ".join(errors))
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise InvalidParam(
                path, f"must be one of {', '.join(map(str, choices))}, not {value!r}"
            )
        return value
    if origin in (tuple, list):
        (item,) = get_args(hint)[:1]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            raise InvalidParam(path, f"must be a list, not {type(value).__name__}")
        return tuple(coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise InvalidParam(path, f"must be true or false, not {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise InvalidParam(path, f"must be an integer, not {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise InvalidParam(path, f"must be a number, not {value!r}")
    if hint is str:
        if isinstance(value, str) and value:
            return value
        raise InvalidParam(path, f"must be a non-empty string, not {value!r}")
    raise TypeError(f"{path}: parameter type {hint!r} is not supported")


def type_name(hint: Any) -> str:
    """A short, readable name of a parameter type: ``integer``, ``list of string``, ..."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in get_args(hint) if a is not type(None)]
        return " or ".join(names)
    if origin is Literal:
        return "|".join(map(str, get_args(hint)))
    if origin in (tuple, list):
        return f"list of {type_name(get_args(hint)[0])}"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(hint, str(hint))
