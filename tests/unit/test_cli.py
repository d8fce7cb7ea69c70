from __future__ import annotations

import subprocess
import sys

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
