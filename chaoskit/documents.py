"""Reading the YAML (or JSON) files users write: cluster configs, experiments, suites.

A file that is missing, is not UTF-8 text, does not parse, or nests deeper than any
chaoskit file needs is one :class:`InvalidConfig` naming the file and the line; what the
document must contain is each reader's own business (:class:`FieldReader` helps it name the
field).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from chaoskit.errors import InvalidConfig

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no chaoskit file needs more than a dozen levels,
and a document nested thousands deep would exhaust the stack of whatever walks it."""
MAX_VALUES = 1_000_000
"""More values than this (YAML aliases counted each time they are used) are refused: a
few aliased lines can otherwise stand for billions of values."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML would keep the
    last silently, and a user would run what they did not read."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the constructor below says so
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path) -> str:
    """The text of ``path``; InvalidConfig naming the line when it is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidConfig(path, "", f"cannot be read: {e.strerror or e}") from e
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InvalidConfig(
            path, f"line {line}", f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})"
        ) from None


def parse_json(path: Path, text: str) -> object:
    """The JSON document ``text`` of ``path``, checked for depth and size."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidConfig(path, f"line {e.lineno}", f"not valid JSON: {e.msg}") from None
    except RecursionError:
        raise InvalidConfig(path, "", f"nested more than {MAX_DEPTH} levels deep") from None
    check_shape(path, doc)
    return doc


def parse_yaml(path: Path, text: str) -> object:
    """The YAML document ``text`` of ``path``, checked for depth and size."""
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        reason = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InvalidConfig(path, where, f"not valid YAML: {reason}") from None
    except RecursionError:
        raise InvalidConfig(path, "", f"nested more than {MAX_DEPTH} levels deep") from None
    check_shape(path, doc)
    return doc


def check_shape(path: Path, doc: object) -> None:
    """InvalidConfig when ``doc`` nests deeper than MAX_DEPTH or holds more than MAX_VALUES
    values; walks without recursion, so any parsed document can be checked."""
    stack: list[tuple[object, int, str]] = [(doc, 0, "")]
    seen = 0
    while stack:
        value, depth, where = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise InvalidConfig(path, "", f"more than {MAX_VALUES} values (aliases counted)")
        if depth > MAX_DEPTH:
            shown = where if len(where) <= 60 else where[:57] + "..."
            raise InvalidConfig(path, shown, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            prefix = f"{where}." if where else ""
            stack.extend((v, depth + 1, f"{prefix}{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


PLACEHOLDER = "CHANGE-ME"
"""What ``chaoskit init`` writes where it cannot tell what goes (an image name the
manifests do not show, a label selector): a system or suite file holding it is refused."""


def refuse_placeholders(path: Path, doc: object) -> None:
    """InvalidConfig naming the first field (in the file's order) whose value still holds
    :data:`PLACEHOLDER`."""
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str) and PLACEHOLDER in value:
            raise InvalidConfig(
                path,
                where,
                f"{value!r} is a placeholder chaoskit init wrote where it could not tell what "
                f"goes here: replace {PLACEHOLDER} (the comment beside it says with what)",
            )
        if isinstance(value, dict):
            prefix = f"{where}." if where else ""
            stack.extend((v, f"{prefix}{k}") for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))


def read_document(path: Path) -> object:
    """The parsed document of ``path``: JSON for a ``.json`` file, YAML otherwise."""
    if not path.is_file():
        raise InvalidConfig(path, "", "no such file")
    text = read_text(path)
    return parse_json(path, text) if path.suffix == ".json" else parse_yaml(path, text)


class FieldReader:
    """Typed reads of one document, each failure naming the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, reason: str) -> InvalidConfig:
        return InvalidConfig(self.path, where, reason)

    def mapping(self, where: str, value: Any, known: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, not {type(value).__name__}")
        for key in value:
            # x-... fields are the author's own (YAML anchors to reuse), as in Compose files.
            if key not in known and not (where == "" and str(key).startswith("x-")):
                prefix = f"{where}." if where else ""
                raise self.fail(
                    f"{prefix}{key}", f"unknown field (known: {', '.join(sorted(known))})"
                )
        return value

    def text(self, where: str, value: Any, *, pattern: re.Pattern[str] | None = None) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "must be a non-empty string")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(where, f"{value!r} must match {pattern.pattern}")
        return value

    def integer(self, where: str, value: Any, *, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, not {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(where, f"must be {bound}, not {value}")
        return value

    def number(self, where: str, value: Any, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"must be a number, not {value!r}")
        if value < 0 or (positive and value == 0):
            raise self.fail(where, f"must be {'positive' if positive else 'at least 0'}")
        return float(value)

    def file(self, where: str, value: Any) -> Path:
        relative = Path(self.text(where, value))
        resolved = relative if relative.is_absolute() else self.path.parent / relative
        if not resolved.is_file():
            raise self.fail(where, f"no such file: {resolved}")
        return resolved
