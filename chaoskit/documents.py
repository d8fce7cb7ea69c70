"""Reading the YAML (or JSON) files users write: cluster configs, experiments, suites.

A file that is missing or does not parse is one :class:`InvalidConfig` naming the file and
the line; what the document must contain is each reader's own business.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from chaoskit.errors import InvalidConfig


def read_document(path: Path) -> object:
    """The parsed document of ``path``: JSON for a ``.json`` file, YAML otherwise."""
    if not path.is_file():
        raise InvalidConfig(path, "", "no such file")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise InvalidConfig(path, f"line {e.lineno}", f"not valid JSON: {e.msg}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise InvalidConfig(path, where, f"not valid YAML: {getattr(e, 'problem', e)}") from e
