from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.errors import ChaoskitError, InvalidConfig, InvalidInput, OperationFailed
from chaoskit.settings import Settings


def test_invalid_config_names_file_field_and_reason() -> None:
    err = InvalidConfig("kind-config.yaml", "nodes[2].role", "must be control-plane or worker")
    assert str(err) == "kind-config.yaml: nodes[2].role: must be control-plane or worker"
    assert err.exit_code == 2
    assert isinstance(err, InvalidInput)
    assert isinstance(err, ChaoskitError)


def test_operation_failed_points_at_its_log() -> None:
    err = OperationFailed("kubelet build failed", log=Path("/tmp/x/kubelet.log"))
    assert str(err) == "kubelet build failed (log: /tmp/x/kubelet.log)"
    assert err.exit_code == 1


def test_cache_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", "/somewhere/cache")
    settings = Settings.from_env()
    assert settings.cache_dir == Path("/somewhere/cache")
    assert settings.log_dir == Path("/somewhere/cache/logs")
