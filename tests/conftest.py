"""Marks every test by its folder (tests/unit -> unit, tests/e2e -> e2e); e2e is opt-in;
unit tests run first and the heaviest e2e modules last.

The e2e tests make a real kind cluster (and the images for it): a bare ``pytest`` in a
user's checkout must not. They run only with ``--e2e`` or ``CHAOSKIT_E2E=1``, as
``make test`` (scripts/test.sh) and CI pass; otherwise they are deselected, and the
summary says how many.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).parent
OPT_IN_ENV = "CHAOSKIT_E2E"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--e2e",
        action="store_true",
        default=False,
        help=f"run tests/e2e too: they make a real kind cluster (also {OPT_IN_ENV}=1)",
    )


def e2e_opted_in(config: pytest.Config) -> bool:
    return bool(config.getoption("--e2e", default=False)) or os.environ.get(OPT_IN_ENV) == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    opted_in = e2e_opted_in(config)
    for item in items:
        path = Path(item.path)
        kind = path.relative_to(_HERE).parts[0] if path.is_relative_to(_HERE) else ""
        if kind in ("unit", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))
        if kind == "e2e" and not opted_in:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
    items.sort(key=_run_order)  # stable: tests keep their order within a rank


# The order of a full run: unit tests first, before the e2e session makes its cluster (they
# need no cluster and would only share the CPU with it), then the e2e modules, then these,
# in this order. test_data_tier.py replaces the shop with the heavier replicated topology
# (ecommerce-ha), which no later test should share the machine with or have to replace.
LAST_E2E_MODULES = ("test_data_tier.py",)


def _run_order(item: pytest.Item) -> int:
    path = Path(item.path)
    if not path.is_relative_to(_HERE / "e2e"):
        return 0
    if path.parent == _HERE / "e2e" and path.name in LAST_E2E_MODULES:
        return 2 + LAST_E2E_MODULES.index(path.name)
    return 1


def pytest_report_header(config: pytest.Config) -> str | None:
    if e2e_opted_in(config):
        return "e2e tests: on (they make a real kind cluster)"
    return f"e2e tests: off (pass --e2e or set {OPT_IN_ENV}=1 to run them)"
