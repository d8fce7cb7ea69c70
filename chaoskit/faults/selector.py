"""The syntax of Kubernetes label selectors, checked before anything runs.

The API would reject a bad selector only when a fault lists its victims, in the middle of
a run; ``chaoskit validate`` checks it here instead, without a cluster. The grammar is the
one of ``kubectl get -l``:

    selector    := requirement ("," requirement)*
    requirement := KEY | "!" KEY
                 | KEY ("=" | "==" | "!=") VALUE
                 | KEY ("in" | "notin") "(" VALUE ("," VALUE)* ")"
                 | KEY (">" | "<") INTEGER

KEY is a qualified name (an optional DNS-subdomain prefix and ``/``, then a name of at
most 63 characters); VALUE is empty or a name of at most 63 characters.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TOKEN = re.compile(r"\s*(==|!=|[!=,()<>]|[^\s!=,()<>]+)")
_OPERATORS = ("=", "==", "!=", "in", "notin", ">", "<")
_SYMBOLS = ("!", "=", "==", "!=", ",", "(", ")", "<", ">")


def selector_problem(selector: str) -> str:
    """Why ``selector`` is not a valid label selector, or "" when it is."""
    tokens = _tokens(selector)
    if tokens is None:
        return "not a label selector"
    if not tokens:
        return "is empty"
    position = 0
    while True:
        position, problem = _requirement(tokens, position)
        if problem:
            return problem
        if position == len(tokens):
            return ""
        if tokens[position] != ",":
            return f"expected ',' before {tokens[position]!r}"
        position += 1


def _tokens(selector: str) -> list[str] | None:
    tokens: list[str] = []
    position = 0
    text = selector.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _requirement(tokens: list[str], i: int) -> tuple[int, str]:  # noqa: PLR0911 - one per form
    """(the position after the requirement at ``i``, "" or the problem)."""
    negated = i < len(tokens) and tokens[i] == "!"
    i += negated
    if i >= len(tokens):
        return i, "a requirement is missing its key"
    key = tokens[i]
    if key in _SYMBOLS:
        return i, f"expected a label key, not {key!r}"
    problem = key_problem(key)
    if problem:
        return i, problem
    i += 1
    if negated or i == len(tokens) or tokens[i] == ",":
        return i, ""
    operator = tokens[i]
    if operator not in _OPERATORS:
        return i, f"after key {key!r}: expected =, ==, !=, in, notin, > or <, not {operator!r}"
    i += 1
    if operator in ("in", "notin"):
        return _value_set(tokens, i, key)
    value = tokens[i] if i < len(tokens) and tokens[i] != "," else ""
    if value in _SYMBOLS:
        return i, f"{key} {operator}: expected a value, not {value!r}"
    if operator in (">", "<"):
        if not re.fullmatch(r"-?[0-9]+", value):
            return i, f"{key} {operator}: wants an integer, not {value or 'nothing'!r}"
        return i + 1, ""
    problem = value_problem(value)
    if problem:
        return i, f"value of {key!r}: {problem}"
    return i + bool(value), ""


def _value_set(tokens: list[str], i: int, key: str) -> tuple[int, str]:
    if i >= len(tokens) or tokens[i] != "(":
        return i, f"{key} in/notin: expected '(' and a list of values"
    i += 1
    values = 0
    while i < len(tokens) and tokens[i] != ")":
        if tokens[i] == ",":
            i += 1
            continue
        problem = value_problem(tokens[i])
        if problem:
            return i, f"value of {key!r}: {problem}"
        values += 1
        i += 1
    if i >= len(tokens):
        return i, f"{key} in/notin: missing ')'"
    if not values:
        return i, f"{key} in/notin: the set of values is empty"
    return i + 1, ""


def key_problem(key: str) -> str:
    """Why ``key`` is not a label key, or ""."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix or len(prefix) > 253:
            return f"key {key!r}: the prefix must be a DNS subdomain of 1 to 253 characters"
        if not all(DNS_LABEL.fullmatch(part) for part in prefix.split(".")):
            return f"key {key!r}: the prefix {prefix!r} is not a DNS subdomain"
    if not name or len(name) > 63 or not _NAME.fullmatch(name):
        return (
            f"key {key!r}: the name must be 1 to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return ""


def value_problem(value: str) -> str:
    """Why ``value`` is not a label value, or "" (an empty value is valid)."""
    if value and (len(value) > 63 or not _NAME.fullmatch(value)):
        return (
            f"{value!r} is not a label value (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return ""
