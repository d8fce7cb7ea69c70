"""Finding load profiles by name, and what a user sees for one that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.cli import main
from chaoskit.errors import InvalidInput
from chaoskit.load.profiles import default_profiles_dir, find_profile, list_profiles

REPO_PROFILES = Path(__file__).resolve().parents[3] / "loadprofiles"


def test_the_repo_has_the_three_profiles_and_hides_shared_modules() -> None:
    assert list_profiles(REPO_PROFILES) == ["flash_sale", "ramp", "steady"]


def test_the_default_folder_is_found_from_anywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_profiles_dir().resolve() == REPO_PROFILES


def test_a_profile_is_found_by_name() -> None:
    assert find_profile("flash_sale", REPO_PROFILES) == REPO_PROFILES / "flash_sale.py"


def test_a_locustfile_path_is_taken_as_it_is(tmp_path: Path) -> None:
    own = tmp_path / "mine.py"
    own.write_text("")
    assert find_profile(str(own)) == own
    with pytest.raises(InvalidInput, match="no such file"):
        find_profile(str(tmp_path / "missing.py"))


def test_an_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        find_profile("black_friday", REPO_PROFILES)
    assert caught.value.exit_code == 2
    assert "black_friday" in str(caught.value)
    assert "flash_sale, ramp, steady" in str(caught.value)


def test_an_empty_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="holds no profiles"):
        find_profile("steady", tmp_path)


def test_the_cli_exits_2_with_the_list_for_an_unknown_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["load", "run", "nope", "--host", "http://127.0.0.1:9", "--duration", "5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown profile" in err and "flash_sale" in err
    assert "Traceback" not in err


def test_the_cli_lists_the_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["load", "list", "--profiles", str(REPO_PROFILES)])
    assert exc.value.code == 0
    assert capsys.readouterr().out.split() == ["flash_sale", "ramp", "steady"]
