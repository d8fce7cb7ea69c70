"""A system of the user's own (issue 16): a folder with chaoskit-system.yaml, deployed by
`chaoskit deploy PATH`: its image built from its Dockerfile and loaded onto the nodes, its
kustomization applied, its workloads waited for, its NodePort reached on 127.0.0.1, and
its own invariant check run against it. And the failures a user meets: a Dockerfile that
does not build (the build's last lines, nothing applied), a workload that never becomes
Ready (its name and its pod's reason)."""

from __future__ import annotations

import re
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

NODE_PORT = 30081  # kind-config.yaml maps it for systems of the user's own

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
