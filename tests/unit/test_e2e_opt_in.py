"""A bare pytest in a user's checkout makes no cluster: tests/e2e runs only on request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _collect(*args: str, opt_in_env: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CHAOSKIT_E2E"}
    if opt_in_env:
        env["CHAOSKIT_E2E"] = "1"
    # --collect-only: even if the opt-in were broken, nothing would run here.
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/e2e", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _selected(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("tests/e2e/") and "::" in line]


def test_without_the_opt_in_no_e2e_test_is_selected() -> None:
    proc = _collect()
    assert _selected(proc.stdout) == [], proc.stdout
    assert "deselected" in proc.stdout


def test_the_opt_in_by_option_or_environment_selects_them() -> None:
    by_option = _selected(_collect("--e2e").stdout)
    assert by_option, "tests/e2e has tests to select"
    assert _selected(_collect(opt_in_env=True).stdout) == by_option
