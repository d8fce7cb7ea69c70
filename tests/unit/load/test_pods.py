"""Locust workers as pods: what is checked before anything runs, the master's address, the
in-cluster target, the Job and ConfigMap they are made of, and how a broken pod is told."""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaoskit.cli import main
from chaoskit.errors import InvalidInput
from chaoskit.images.factory import build_env, contexts_dir, load_steps, local_steps
from chaoskit.images.steps import Plan
from chaoskit.load.pods import (
    IN_CLUSTER_SHOP,
    NAMESPACE,
    RUN_LABEL,
    ServiceRef,
    WorkerPlan,
    _api_status,
    config_map,
    gateway_of,
    job_failure,
    k8s_name,
    pod_problem,
    pod_state,
    profile_files,
    run_label,
    service_ref,
    worker_job,
)
from chaoskit.load.runner import LoadSpec, locust_commands, pod_env
from chaoskit.settings import Settings

REPO = Path(__file__).resolve().parents[3]
PROFILE = REPO / "loadprofiles" / "flash_sale.py"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]")


def pods_spec(tmp_path: Path, **changes: Any) -> LoadSpec:
    fields: dict[str, Any] = {
        "profile": PROFILE,
        "host": IN_CLUSTER_SHOP,
        "duration": 30,
        "out_dir": tmp_path / "out",
        "run_id": "run-pods",
        "workers": 2,
        "worker_mode": "pods",
        "cluster": "ck",
    }
    return LoadSpec(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cluster": None}, "needs --cluster"),
        ({"workers": 0}, "needs --workers 1 or more"),
        ({"worker_mode": "threads"}, "must be local or pods"),
    ],
)
def test_pods_without_a_cluster_or_workers_are_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        pods_spec(tmp_path, **changes).validate()


def test_with_pods_only_the_master_runs_here_on_the_given_address(tmp_path: Path) -> None:
    spec = pods_spec(tmp_path)
    spec.validate()
    [(role, argv)] = locust_commands(spec, 5557, "172.18.0.1")
    assert role == "master"
    options = dict(itertools.pairwise(argv))
    assert options["--master-bind-host"] == "172.18.0.1"
    assert options["--master-bind-port"] == "5557"
    assert options["--expect-workers"] == "2"
    # Pods take longer to start than processes; the whole run stays bounded.
    assert options["--expect-workers-max-wait"] == str(spec.startup_allowance)
    assert spec.startup_allowance > pods_spec(tmp_path, worker_mode="local").startup_allowance
    assert spec.deadline_seconds < spec.run_time + 300
    assert options["--host"] == IN_CLUSTER_SHOP


def test_worker_pods_relay_their_records_instead_of_writing_them(tmp_path: Path) -> None:
    env = pod_env(pods_spec(tmp_path, think_time=0.5))
    assert env == {
        "CHAOSKIT_RUN_ID": "run-pods",
        "CHAOSKIT_LOAD_RELAY": "1",
        "CHAOSKIT_REQUEST_TIMEOUT": "10",  # the workers time out as chaoskit expects
        "PYTHONUNBUFFERED": "1",
        "LOCUST_THINK_TIME": "0.5",
    }


def test_the_master_listens_on_the_gateway_of_kinds_network() -> None:
    ipam = [
        {"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"},
        {"Subnet": "172.23.0.0/16", "Gateway": "172.23.0.1"},
    ]
    assert gateway_of(ipam) == "172.23.0.1"
    # Docker leaves the gateway out of some configurations: it is the subnet's first address.
    assert gateway_of([{"Subnet": "172.19.0.0/16"}]) == "172.19.0.1"
    assert gateway_of([{"Subnet": "fc00::/64", "Gateway": "fc00::1"}]) is None
    assert gateway_of([]) is None


@pytest.mark.parametrize(
    ("url", "ref"),
    [
        (IN_CLUSTER_SHOP, ServiceRef("shop", "traefik:80")),
        ("http://gateway.shop.svc:8080/", ServiceRef("shop", "gateway:8080")),
        ("https://api.web.svc.cluster.local", ServiceRef("web", "https:api:443")),
        ("http://127.0.0.1:8080", None),
        ("http://shop.example.com", None),
        ("http://traefik", None),
    ],
)
def test_in_cluster_urls_name_a_service_for_the_api_servers_proxy(
    url: str, ref: ServiceRef | None
) -> None:
    assert service_ref(url) == ref


def test_only_the_api_servers_own_refusals_mean_unreachable() -> None:
    refusal = '{"kind":"Status","status":"Failure","message":"no endpoints available"}'
    assert _api_status(refusal) == {
        "kind": "Status",
        "status": "Failure",
        "message": "no endpoints available",
    }
    assert _api_status('{"error": "backend_unavailable"}') is None  # the shop's own 503
    assert _api_status("<html>bad gateway</html>") is None
    assert _api_status(None) is None


def test_the_profiles_folder_goes_into_the_configmap(tmp_path: Path) -> None:
    files = profile_files(PROFILE)
    assert {"flash_sale.py", "_shop.py", "_shapes.py"} <= set(files)
    assert all(name.endswith(".py") for name in files)
    assert files["_shop.py"] == (REPO / "loadprofiles" / "_shop.py").read_text()
    recorder = REPO / "chaoskit" / "load" / "recorder.py"
    assert files["chaoskit.load.recorder.py"] == recorder.read_text()
    assert files["chaoskit.__init__.py"] == ""  # the pods need none of the rest of chaoskit

    big = tmp_path / "big.py"
    big.write_text("#" * 600_000)
    with pytest.raises(InvalidInput, match="ConfigMap"):
        profile_files(big)


def _plan(**changes: Any) -> WorkerPlan:
    fields: dict[str, Any] = {
        "run_id": "run-pods",
        "workers": 3,
        "image": "chaoskit/locust:1-abc",
        "profile": "flash_sale.py",
        "master_host": "172.23.0.1",
        "master_port": 40000,
        "env": {"CHAOSKIT_RUN_ID": "run-pods", "CHAOSKIT_LOAD_RELAY": "1"},
        "deadline_seconds": 230.5,
    }
    return WorkerPlan(**{**fields, **changes})


def test_the_workers_are_a_bounded_job_connected_to_the_master() -> None:
    plan = _plan()
    job = worker_job(plan)
    assert job["metadata"] == {
        "name": "locust-run-pods",
        "namespace": NAMESPACE,
        "labels": plan.labels,
    }
    spec = job["spec"]
    assert spec["parallelism"] == spec["completions"] == 3
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 231  # ends the pods should the harness die
    assert spec["ttlSecondsAfterFinished"] > 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert spec["template"]["metadata"]["labels"][RUN_LABEL] == "run-pods"
    [container] = pod["containers"]
    assert container["image"] == "chaoskit/locust:1-abc"
    args = dict(itertools.pairwise(container["args"]))
    assert args["-f"] == "/profiles/flash_sale.py,/chaoskit/chaoskit/load/locust_plugin.py"
    assert args["--master-host"] == "172.23.0.1" and args["--master-port"] == "40000"
    assert "--worker" in container["args"] and "--headless" not in container["args"]
    assert {"name": "CHAOSKIT_LOAD_RELAY", "value": "1"} in container["env"]
    assert pod["volumes"][0] == {"name": "profiles", "configMap": {"name": "locust-run-pods"}}
    assert container["volumeMounts"][0]["mountPath"] == "/profiles"
    # chaoskit's recorder as the package chaoskit.load.recorder, from the same ConfigMap
    recorder = pod["volumes"][1]["configMap"]
    assert recorder["name"] == "locust-run-pods"
    assert {"key": "chaoskit.load.recorder.py", "path": "chaoskit/load/recorder.py"} in (
        recorder["items"]
    )
    assert container["volumeMounts"][1]["mountPath"] == "/chaoskit"
    assert {"name": "PYTHONPATH", "value": "/chaoskit"} in container["env"]

    cm = config_map(plan, {"flash_sale.py": "x"})
    assert cm["metadata"]["name"] == "locust-run-pods" and cm["data"] == {"flash_sale.py": "x"}


@pytest.mark.parametrize("run_id", ["run-ABC", "R" * 64, "a-" * 32, "run-1"])
def test_any_run_id_makes_valid_names_and_labels(run_id: str) -> None:
    assert DNS_LABEL.fullmatch(k8s_name(run_id))
    assert len(k8s_name(run_id)) <= 57  # room for the Job's pod suffix
    assert LABEL_VALUE.fullmatch(run_label(run_id))


def _pod(phase: str, **state: Any) -> client.V1Pod:
    status = client.V1ContainerStatus(
        name="locust",
        image="chaoskit/locust:1",
        image_id="",
        ready=False,
        restart_count=0,
        state=client.V1ContainerState(**state),
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="locust-run-pods-x1"),
        status=client.V1PodStatus(phase=phase, container_statuses=[status]),
    )


def test_a_pod_that_failed_or_cannot_start_is_told_apart_from_one_on_its_way() -> None:
    never = _pod(
        "Pending",
        waiting=client.V1ContainerStateWaiting(reason="ErrImageNeverPull", message="not there"),
    )
    assert pod_problem(never) == "pod locust-run-pods-x1: ErrImageNeverPull not there"
    crashed = _pod("Failed", terminated=client.V1ContainerStateTerminated(exit_code=1))
    assert pod_problem(crashed) == "pod locust-run-pods-x1: exit 1 (Error)"

    starting = _pod("Pending", waiting=client.V1ContainerStateWaiting(reason="ContainerCreating"))
    assert pod_problem(starting) is None
    assert pod_state(starting) == "locust-run-pods-x1 Pending: ContainerCreating"
    done = _pod("Succeeded", terminated=client.V1ContainerStateTerminated(exit_code=0))
    assert pod_problem(done) is None


def test_a_job_that_lost_a_worker_is_a_failure() -> None:
    def job(**status: Any) -> client.V1Job:
        return client.V1Job(status=client.V1JobStatus(**status))

    assert job_failure(job(active=2)) is None
    assert job_failure(job(succeeded=2)) is None
    assert job_failure(job(active=1, failed=1)) == "1 worker pod(s) failed or were deleted"
    limit = client.V1JobCondition(
        type="Failed", status="True", reason="BackoffLimitExceeded", message="Job has reached"
    )
    assert job_failure(job(conditions=[limit])) == "BackoffLimitExceeded: Job has reached"


def test_the_worker_image_builds_on_debian_base_with_the_same_locust_as_the_master() -> None:
    plan = Plan.resolve([*local_steps(), *load_steps()], build_env(Settings()), ["image:locust"])
    assert [s.name for s in plan.steps][-2:] == ["image:debian-base", "image:locust"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    [pinned] = [d for d in pyproject["project"]["dependencies"] if d.startswith("locust==")]
    requirements = (contexts_dir() / "locust" / "requirements.txt").read_text().splitlines()
    assert pinned in requirements


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worker-mode", "pods", "--workers", "2"], "--worker-mode pods: needs --cluster"),
        (["--worker-mode", "pods", "--cluster", "ck"], "needs --workers 1 or more"),
        ([], "--host: give the shop's URL, or --cluster"),
        (["--worker-mode", "pods", "--workers", "2", "--cluster", "nope"], "no chaoskit cluster"),
    ],
)
def test_the_cli_refuses_bad_input_in_one_line_with_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["load", "run", "steady", "--duration", "5", "--out", str(out), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
