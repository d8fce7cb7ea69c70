"""Load profiles: the Locust files in ``loadprofiles/``, found by name.

A profile is a ``.py`` file in the profiles folder whose name does not start with ``_``
(those are the modules the profiles share). A path to any other locustfile works too.
"""

from __future__ import annotations

from pathlib import Path

from chaoskit.errors import InvalidInput

PROFILES_DIR_NAME = "loadprofiles"
REQUEST_TIMEOUT_S = 10.0
"""Seconds the profiles' client waits for an answer before it gives up (given to Locust as
``CHAOSKIT_REQUEST_TIMEOUT``). A request that times out is a failure recorded at this wait,
so a latency SLO at or above it could never fail: suites must set theirs below."""
REQUEST_TIMEOUT_ENV = "CHAOSKIT_REQUEST_TIMEOUT"


def default_profiles_dir() -> Path:
    """``loadprofiles/`` in the working directory, else the one next to the package."""
    here = Path(PROFILES_DIR_NAME)
    if here.is_dir():
        return here
    beside_package = Path(__file__).resolve().parents[2] / PROFILES_DIR_NAME
    return beside_package if beside_package.is_dir() else here


def list_profiles(profiles_dir: Path) -> list[str]:
    if not profiles_dir.is_dir():
        return []
    return sorted(p.stem for p in profiles_dir.glob("*.py") if not p.name.startswith(("_", ".")))


def find_profile(name: str, profiles_dir: Path | None = None) -> Path:
    """The locustfile of profile ``name`` (or ``name`` itself when it is a .py file)."""
    as_path = Path(name)
    if as_path.suffix == ".py":
        if as_path.is_file():
            return as_path
        raise InvalidInput(f"profile {name!r}: no such file")
    folder = profiles_dir if profiles_dir is not None else default_profiles_dir()
    valid = list_profiles(folder)
    if name in valid:
        return folder / f"{name}.py"
    choices = ", ".join(valid) if valid else f"none: {folder} holds no profiles"
    raise InvalidInput(f"profile {name!r}: unknown profile (valid: {choices})")
