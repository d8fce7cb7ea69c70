"""`chaoskit validate` and `chaoskit faults list` stay fast: they never import the
Kubernetes client or pandas (about 3 s of CPU between them), only the commands that act do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("kubernetes", "pandas")

# Runs the CLI in a fresh interpreter, then reports which heavy packages it loaded.
_PROBE = """
import json, sys
%s
from chaoskit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}))
"""


def _loaded_by(*args: str, prelude: str = "") -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE % (prelude, HEAVY), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report["code"], report["loaded"]


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "experiments/pod-kill.yaml"),
        (
            "validate",
            *sorted(str(p.relative_to(REPO)) for p in (REPO / "experiments").glob("*.yaml")),
        ),
        ("faults", "list"),
        ("faults", "list", "--json"),
        ("--help",),
    ],
    ids=["validate", "validate-all", "faults-list", "faults-list-json", "help"],
)
def test_light_commands_do_not_import_the_kubernetes_client_or_pandas(
    args: tuple[str, ...],
) -> None:
    code, loaded = _loaded_by(*args)
    assert code == 0
    assert loaded == []


def test_the_probe_sees_a_heavy_import() -> None:
    # Without this, the check above would also pass if the probe saw no import at all.
    code, loaded = _loaded_by("--help", prelude="import chaoskit.ctk.context")
    assert code == 0
    assert loaded == ["kubernetes"]
