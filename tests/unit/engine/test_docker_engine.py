"""The Docker engine bootstrap leaves the host as found unless a cluster needs a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoskit.cluster import lifecycle
from chaoskit.cluster.config import load_config
from chaoskit.engine import docker
from chaoskit.errors import ClusterFailed, EngineFailed
from chaoskit.progress import LogProgress
from chaoskit.settings import Settings

WRAPPER = Path("/usr/local/bin/chaoskit-runc")


def test_merge_keeps_every_user_setting_and_does_not_change_its_input() -> None:
    config: dict[str, object] = {
        "log-driver": "json-file",
        "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}},
    }
    before = json.loads(json.dumps(config))
    merged = docker.merge_daemon_config(config, WRAPPER)
    assert config == before, "the merge is pure"
    assert merged == {
        "log-driver": "json-file",
        "runtimes": {
            "nvidia": {"path": "/usr/bin/nvidia-container-runtime"},
            "chaoskit-runc": {"path": str(WRAPPER)},
        },
        "default-runtime": "chaoskit-runc",
    }
    assert docker.merge_daemon_config(merged, WRAPPER) == merged, "idempotent"


def test_merge_refuses_to_replace_a_default_runtime_the_user_chose() -> None:
    with pytest.raises(EngineFailed, match="'nvidia'"):
        docker.merge_daemon_config({"default-runtime": "nvidia"}, WRAPPER)
    assert docker.merge_daemon_config({"default-runtime": "runc"}, WRAPPER)["default-runtime"] == (
        "chaoskit-runc"
    )


def test_configure_daemon_writes_the_merge_and_leaves_bad_json_alone(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    assert docker.configure_daemon(path, WRAPPER)
    assert json.loads(path.read_text())["debug"] is True
    assert not docker.configure_daemon(path, WRAPPER), "nothing left to change"
    path.write_text("{not json")
    with pytest.raises(EngineFailed, match="not valid JSON"):
        docker.configure_daemon(path, WRAPPER)
    assert path.read_text() == "{not json"


def _status(tmp_path: Path, bounding: int) -> Path:
    status = tmp_path / "status"
    status.write_text(f"Name:\tx\nCapBnd:\t{bounding:016x}\n")
    return status


def test_the_capability_check_reads_the_bounding_set(tmp_path: Path) -> None:
    full = (1 << 41) - 1
    assert not docker.host_lacks_cap_sys_resource(_status(tmp_path, full))
    assert docker.host_lacks_cap_sys_resource(_status(tmp_path, full & ~(1 << 24)))


def test_the_wrapper_is_planned_only_where_the_capability_is_missing() -> None:
    assert not docker.plan_engine(
        answers=False, lacks_cap_sys_resource=False, runs_privileged=False
    ).wrap
    assert docker.plan_engine(
        answers=False, lacks_cap_sys_resource=True, runs_privileged=False
    ).wrap
    with pytest.raises(EngineFailed, match="has CAP_SYS_RESOURCE"):
        docker.plan_engine(answers=True, lacks_cap_sys_resource=False, runs_privileged=False)
    with pytest.raises(EngineFailed, match="already runs privileged containers"):
        docker.plan_engine(answers=True, lacks_cap_sys_resource=True, runs_privileged=True)


class _Touched(Exception):
    pass


def _forbid(name: str) -> object:
    def call(*args: object, **kwargs: object) -> None:
        raise _Touched(name)

    return call


@pytest.fixture
def quiet_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kernel setting, daemon.json or wrapper may be changed in these tests."""
    for name in ("apply_host_sysctls", "configure_daemon", "install_runtime_wrapper"):
        monkeypatch.setattr(docker, name, _forbid(name))


@pytest.mark.usefixtures("quiet_host")
def test_a_working_engine_is_left_alone_and_no_sysctl_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docker, "engine_answers", lambda: True)
    monkeypatch.setattr(docker, "privileged_container_starts", lambda: True)
    docker.ensure_engine(tmp_path)


@pytest.mark.usefixtures("quiet_host")
def test_a_daemon_with_privileged_containers_never_gets_the_wrapper_as_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docker, "engine_answers", lambda: True)
    monkeypatch.setattr(docker, "privileged_container_starts", lambda: False)
    monkeypatch.setattr(docker, "host_lacks_cap_sys_resource", lambda: True)
    monkeypatch.setattr(docker, "daemon_runs_privileged_containers", lambda: True)
    monkeypatch.setattr(docker.os, "geteuid", lambda: 0)
    with pytest.raises(EngineFailed, match="will not make chaoskit-runc its default"):
        docker.ensure_engine(tmp_path)


@pytest.mark.usefixtures("quiet_host")
def test_a_host_with_the_capability_gets_no_wrapper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docker, "engine_answers", lambda: True)
    monkeypatch.setattr(docker, "privileged_container_starts", lambda: False)
    monkeypatch.setattr(docker, "host_lacks_cap_sys_resource", lambda: False)
    monkeypatch.setattr(docker, "daemon_runs_privileged_containers", lambda: False)
    monkeypatch.setattr(docker.os, "geteuid", lambda: 0)
    with pytest.raises(EngineFailed, match="has CAP_SYS_RESOURCE"):
        docker.ensure_engine(tmp_path)


def test_sysctls_are_raised_never_lowered(tmp_path: Path) -> None:
    (tmp_path / "fs" / "inotify").mkdir(parents=True)
    low = tmp_path / "fs" / "inotify" / "max_user_instances"
    high = tmp_path / "fs" / "inotify" / "max_user_watches"
    low.write_text("128\n")
    high.write_text("9999999\n")
    docker.apply_host_sysctls(
        {"fs.inotify.max_user_instances": 512, "fs.inotify.max_user_watches": 524288},
        root=tmp_path,
    )
    assert low.read_text() == "512\n"
    assert high.read_text() == "9999999\n"


class _Kind:
    def clusters(self) -> list[str]:
        return []

    def create(self, name: str, **kwargs: object) -> None:
        raise ClusterFailed("kind create failed")

    def delete(self, name: str, **kwargs: object) -> None:
        pass


def test_cluster_up_is_what_raises_the_sysctls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    raised: list[bool] = []
    monkeypatch.setattr(lifecycle, "apply_host_sysctls", lambda: raised.append(True))
    config = load_config(Path(__file__).parents[3] / "kind-config.quick.yaml")
    with pytest.raises(ClusterFailed):
        lifecycle.up(
            Settings(cache_dir=tmp_path),
            _Kind(),  # type: ignore[arg-type]
            config,
            name="c",
            image="node:1",
            progress=LogProgress(),
        )
    assert raised == [True]
