"""A system of the user's own (issue 16): a folder with chaoskit-system.yaml, deployed by
`chaoskit deploy PATH`: its image built from its Dockerfile and loaded onto the nodes, its
kustomization applied, its workloads waited for, its NodePort reached on 127.0.0.1, and
its own invariant check run against it. And the failures a user meets: a Dockerfile that
does not build (the build's last lines, nothing applied), a workload that never becomes
Ready (its name and its pod's reason). And `chaoskit init` in a repository of such an app:
its files validate, and its suite runs on the cluster as written."""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from chaoskit.system.checks import run_checks, verdict
from chaoskit.system.invariants import InvariantInput, Window
from chaoskit.system.spec import load_system
from tests.e2e.harness import Cluster, chaoskit, delete_namespace

NODE_PORT = 30081  # kind-config.yaml maps 30081-30083 for systems of the user's own
INIT_NODE_PORT = 30082  # the init test's: a kept cluster may still run another's on 30081

CHECK = """\
import json, sys, urllib.request
given = json.load(sys.stdin)
url = given["published"]["web"]
answers = [urllib.request.urlopen(url, timeout=5).read().decode().strip() for _ in range(4)]
broken = [a for a in answers if not a.startswith("web-")]
print(json.dumps({"checked": len(answers),
                  "violations": [{"what": f"answered {a!r}"} for a in broken],
                  "details": {"pods": sorted(set(answers))}}))
"""


def write_repository(
    folder: Path, namespace: str, *, dockerfile: str, image: str, node_port: int = NODE_PORT
) -> Path:
    """A web app's repository as chaoskit finds it: its Dockerfile in app/, a kustomization
    in deploy/ (a Deployment of 2 and a NodePort Service), nothing of chaoskit's."""
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "Dockerfile").write_text(dockerfile)
    (folder / "deploy").mkdir()
    (folder / "deploy" / "kustomization.yaml").write_text(
        f"namespace: {namespace}\nresources: [web.yaml]\n"
    )
    (folder / "deploy" / "web.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              terminationGracePeriodSeconds: 2
              containers:
                - name: web
                  image: {image}
                  imagePullPolicy: Never
                  args: [serve]
                  readinessProbe:
                    httpGet: {{path: /healthz, port: 8080}}
                    periodSeconds: 1
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web}}
        spec:
          type: NodePort
          selector: {{app: web}}
          ports: [{{port: 8080, nodePort: {node_port}}}]
        """)
    )
    return folder


def write_system(
    folder: Path,
    namespace: str,
    *,
    dockerfile: str,
    image: str,
    wait: int = 180,
    name: str = "web-demo",
    tag: str = "e2e-system/web:1",
    node_port: int = NODE_PORT,
) -> Path:
    """A system folder: ``image`` (built as ``tag`` from ``dockerfile``) serving on
    ``node_port``, with an invariant check that every answer comes from one of its pods."""
    write_repository(folder, namespace, dockerfile=dockerfile, image=image, node_port=node_port)
    (folder / "checks").mkdir()
    (folder / "checks" / "answers.py").write_text(CHECK)
    (folder / "chaoskit-system.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        name: {name}
        namespaces: [{namespace}]
        deploy: {{kustomize: deploy}}
        images:
          - {{tag: "{tag}", context: app}}
        wait: {{timeout: {wait}}}
        publish:
          - {{name: web, service: {namespace}/web, node_port: {node_port}}}
        invariants:
          - {{name: every-answer-from-a-web-pod, command: [python3, checks/answers.py]}}
        """)
    )
    return folder


@pytest.fixture
def system_namespace(cluster: Cluster) -> Iterator[str]:
    """The namespace the system's file names (chaoskit makes it); deleted on teardown."""
    name = f"e2e-sys-{uuid.uuid4().hex[:6]}"
    yield name
    delete_namespace(cluster.core, name, timeout=180)


@pytest.mark.usefixtures("probe_loaded")
def test_a_system_folder_deploys_serves_on_loopback_and_its_check_judges_it(
    cluster: Cluster, system_namespace: str, tmp_path: Path
) -> None:
    folder = write_system(
        tmp_path / "web-demo",
        system_namespace,
        dockerfile="FROM chaoskit/probe:1\nLABEL io.chaoskit.example=web-demo\n",
        image="e2e-system/web:1",
    )
    proc = chaoskit("deploy", str(folder), "--name", cluster.name, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r"web: (http://127\.0\.0\.1:\d+)", proc.stdout)
    assert found, proc.stdout
    url = found.group(1)
    answer = urllib.request.urlopen(url, timeout=10).read().decode()
    assert answer.startswith("web-"), answer
    labels = cluster.core.read_namespace(system_namespace).metadata.labels
    assert labels["chaoskit.io/topology"] == "web-demo"
    spec = load_system(folder)
    now = time.time()
    given = InvariantInput(
        phase="after", window=Window(now - 1, now), published={"web": url}, acknowledged=None,
        kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    (outcome,) = run_checks(spec.invariants, given, folder=spec.folder)
    assert verdict([outcome]) == "passed", outcome.summary()
    assert outcome.result is not None and outcome.result.checked == 4
    # The same deployment checked again: Ready, nothing applied.
    again = chaoskit("deploy", str(folder), "--name", cluster.name, "--check")
    assert again.returncode == 0 and url in again.stdout, again.stderr[-2000:]
    print(f"system web-demo: deployed, {url} answers from {outcome.result.details['pods']}")


def test_a_dockerfile_that_does_not_build_fails_with_its_last_lines_and_applies_nothing(
    cluster: Cluster, system_namespace: str, tmp_path: Path
) -> None:
    folder = write_system(
        tmp_path / "broken",
        system_namespace,
        dockerfile="FROM chaoskit/probe:1\nRUN echo chaoskit-e2e-build-breaks && false\n",
        image="e2e-system/web:1",
    )
    proc = chaoskit("deploy", str(folder), "--name", cluster.name, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "building image e2e-system/web:1 failed" in line, line
    with pytest.raises(client.ApiException) as missing:
        cluster.core.read_namespace(system_namespace)
    assert missing.value.status == 404, "a namespace was made before the image built"


@pytest.mark.usefixtures("probe_loaded")
def test_a_workload_that_never_gets_ready_is_named_with_its_pods_reason(
    cluster: Cluster, system_namespace: str, tmp_path: Path
) -> None:
    folder = write_system(
        tmp_path / "unready",
        system_namespace,
        dockerfile="FROM chaoskit/probe:1\n",
        image="e2e-system/not-loaded:1",  # no such image on the nodes, never pulled
        wait=20,
    )
    proc = chaoskit("deploy", str(folder), "--name", cluster.name, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{system_namespace}/deployment/web not Ready after 20 s" in line, line
    assert "ErrImageNeverPull" in line, line


INIT_WRITES = [
    ".github/workflows/chaoskit.yml",
    "chaoskit-checks/example_check.py",
    "chaoskit-kind.yaml",
    "chaoskit-load/locustfile.py",
    "chaoskit-suite.yaml",
    "chaoskit-system.yaml",
]


@pytest.mark.usefixtures("probe_loaded")
def test_chaoskit_init_writes_a_suite_that_validates_and_runs_unedited(
    cluster: Cluster, system_namespace: str, tmp_path: Path
) -> None:
    repo = write_repository(
        tmp_path / "webshop",
        system_namespace,
        dockerfile="FROM chaoskit/probe:1\nLABEL io.chaoskit.example=init\n",
        image="e2e-init/web:1",
        node_port=INIT_NODE_PORT,
    )
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    before = {p for p in repo.rglob("*") if ".git" not in p.parts}

    init = chaoskit("init", str(repo))
    assert init.returncode == 0, init.stderr[-2000:]
    found = [line for line in init.stdout.splitlines() if line.startswith("found: ")]
    assert found == [
        "found: kustomization in deploy/ -> deploy.kustomize",
        f"found: namespaces: {system_namespace} (from the manifests)",
        "found: app/Dockerfile -> image e2e-init/web:1 (the name the manifests use)",
        f"found: NodePort Service {system_namespace}/web on {INIT_NODE_PORT} -> publish web",
        f"found: {system_namespace}/deployment/web -> pod-kill's victims (app=web)",
    ], init.stdout
    written = {p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts} - before
    assert sorted(p.relative_to(repo).as_posix() for p in written) == INIT_WRITES
    assert not [p for p in written if "CHANGE-ME" in p.read_text()], "a placeholder was left"
    spec = load_system(repo)
    assert [(i.tag, i.context.name) for i in spec.images] == [("e2e-init/web:1", "app")]
    assert spec.load is not None and spec.load.locustfile == repo / "chaoskit-load/locustfile.py"

    suite = repo / "chaoskit-suite.yaml"
    validate = chaoskit("suite", "validate", str(suite))
    assert validate.returncode == 0, validate.stderr[-2000:]
    assert "system 'webshop': ok" in validate.stdout, validate.stdout

    # The suite as written, on the session's cluster (it maps the NodePort as the written
    # kind config does); one experiment of its three: the other faults are CI-tested elsewhere.
    out = tmp_path / "report"
    run = chaoskit(
        "suite", "run", str(suite), "--cluster", cluster.name, "--out", str(out),
        "--only", "pod-kill", timeout=900,
    )  # fmt: skip
    print(run.stdout[-4000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    labels = cluster.core.read_namespace(system_namespace).metadata.labels
    assert labels["chaoskit.io/topology"] == "webshop"  # deployed by the suite run
    (trial_file,) = out.glob("trials/*/*/trial.json")
    trial = json.loads(trial_file.read_text())
    assert (trial["experiment"], trial["status"]) == ("pod-kill", "passed"), trial["reasons"]
    assert trial["fault"]["injected_at"] and trial["fault"]["recovery_s"] is not None
    # The Locust file init wrote ran: its one endpoint, GET /, under the fault.
    assert trial["load"]["requests"] > 0
    assert [e["endpoint"] for e in trial["load"]["endpoints"]] == ["GET /", "Aggregated"]
    assert {(e["phase"], e["name"], e["ok"], e["checked"]) for e in trial["invariants"]} == {
        ("before", "published-services-answer", True, 1),
        ("after", "published-services-answer", True, 1),
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "pass"
    assert (out / "report.html").is_file()
    assert "Invariant checks: 2 held, 0 found violations, 0 errored." in (
        (out / "report.md").read_text()
    )
