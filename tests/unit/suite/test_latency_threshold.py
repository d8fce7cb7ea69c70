"""A latency SLO at or above the load client's request timeout could never fail (a request
that times out is recorded at the timeout): `suite validate` rejects it, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaoskit.errors import InvalidConfig
from chaoskit.load.profiles import REQUEST_TIMEOUT_S
from chaoskit.suite.spec import load_suite
from tests.unit.suite.test_spec import minimal, write

LIMIT = int(REQUEST_TIMEOUT_S * 1000)
LOAD = {"profile": "flash_sale", "users": 5}


def p99(threshold: float) -> dict[str, object]:
    return {"name": "p99", "kind": "p99_ms", "threshold": threshold}


@pytest.mark.parametrize("threshold", [LIMIT, LIMIT + 1, 60_000])
def test_a_suite_p99_at_or_above_the_timeout_is_rejected(tmp_path: Path, threshold: int) -> None:
    path = write(tmp_path, minimal(load=LOAD, slos=[{"kind": "lost_orders"}, p99(threshold)]))
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert caught.value.field == "slos[1].threshold"
    assert "request timeout" in str(caught.value) and str(path) in str(caught.value)


def test_an_experiments_own_p99_is_checked_too(tmp_path: Path) -> None:
    doc = minimal(load=LOAD)
    doc["experiments"] = [{"file": "pod-kill.yaml", "slos": [p99(LIMIT)]}]
    with pytest.raises(InvalidConfig) as caught:
        load_suite(write(tmp_path, doc))
    assert caught.value.field == "experiments[0].slos[0].threshold"


def test_a_p99_below_the_timeout_is_fine(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, minimal(load=LOAD, slos=[p99(LIMIT - 100)])))
    assert suite.slos[0]["threshold"] == LIMIT - 100


def test_suite_validate_exits_2_naming_file_field_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(load=LOAD, slos=[p99(LIMIT)]))
    proc = subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", "suite", "validate", path],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"{path}: slos[0].threshold: {LIMIT} ms is not below" in proc.stderr
    assert "Traceback" not in proc.stderr
