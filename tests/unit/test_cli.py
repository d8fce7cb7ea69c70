from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaoskit import __version__
from chaoskit.cli import main


def run_cli(*args: str) -> tuple[int, str, str]:
    """Runs the real console entry point in a fresh interpreter, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_version_prints_the_package_version() -> None:
    code, out, _ = run_cli("--version")
    assert code == 0
    assert out.strip() == f"chaoskit, version {__version__}"


def test_help_lists_usage() -> None:
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "Usage: chaoskit" in out
    assert "--debug" in out


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    code, _, err = run_cli("no-such-command")
    assert code == 2
    assert "No such command" in err
    assert "Traceback" not in err


def test_unknown_flag_is_a_usage_error_with_exit_2() -> None:
    code, _, err = run_cli("--no-such-flag")
    assert code == 2
    assert "No such option" in err
    assert "Traceback" not in err


def test_main_exits_zero_on_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "Usage" in capsys.readouterr().out


def test_cluster_up_with_a_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "kind.yaml"
    bad.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: boss\n")
    code, _, err = run_cli("cluster", "up", "--config", str(bad))
    assert code == 2
    assert f"{bad}: nodes[0].role: must be one of control-plane, worker" in err
    assert "Traceback" not in err


def test_a_bad_cluster_name_exits_2() -> None:
    code, _, err = run_cli("cluster", "status", "--name", "Not_Valid")
    assert code == 2
    assert "--name 'Not_Valid'" in err


def test_an_unknown_topology_exits_2_listing_the_valid_ones() -> None:
    code, _, err = run_cli("deploy", "--topology", "bank")
    assert code == 2
    assert "unknown topology (valid: ecommerce, ecommerce-ha)" in err
    assert "Traceback" not in err


def test_options_come_from_chaoskit_environment_variables() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chaoskit", "cluster", "status"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CHAOSKIT_CLUSTER_STATUS_NAME": "From_Env"},
    )
    assert proc.returncode == 2
    assert "--name 'From_Env'" in proc.stderr
