"""``chaoskit init`` in scratch repositories: what it finds, files that the suite and system
loaders accept, nothing overwritten, all files or none, one line and exit 2 for bad input."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from chaoskit.cli import cli
from chaoskit.cluster.config import load_config
from chaoskit.errors import InvalidConfig, OperationFailed
from chaoskit.load.runner import LoadRun, LoadSpec
from chaoskit.scaffold import files
from chaoskit.scaffold.files import init_repository, scalar
from chaoskit.suite.runner import check_suite
from chaoskit.suite.spec import load_suite
from chaoskit.system.invariants import parse_result
from chaoskit.system.spec import CommandCheck, KustomizeDeploy, load_system
from tests.unit.cli_run import invoke

REPO = Path(__file__).resolve().parents[3]
WRITTEN = (
    "chaoskit-system.yaml",
    "chaoskit-suite.yaml",
    "chaoskit-kind.yaml",
    "chaoskit-checks/example_check.py",
    ".github/workflows/chaoskit.yml",
)

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: store
resources: [app.yaml, ../base]
"""
APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api, tier: web}}
  template:
    metadata: {labels: {app: api, tier: web}}
    spec:
      containers: [{name: api, image: acme/api:1.2}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  type: NodePort
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
"""
BASE = """\
apiVersion: v1
kind: Service
metadata: {name: admin}
spec:
  type: NodePort
  ports: [{name: http, port: 80, nodePort: 30081}, {name: metrics, port: 9090}]
"""


def write_tree(root: Path, tree: dict[str, str]) -> Path:
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A scratch repository: a kustomization (with a base of its own), a Dockerfile the
    manifests run, one they do not, a NodePort Service, a Locust file, and things init
    must not take (a hidden folder, node_modules)."""
    return write_tree(
        tmp_path / "Store_Front",
        {
            "deploy/kustomization.yaml": KUSTOMIZATION,
            "deploy/app.yaml": APP,
            "base/kustomization.yaml": "resources: [admin.yaml]\n",
            "base/admin.yaml": BASE,
            "api/Dockerfile": "FROM scratch\n",
            "worker/Dockerfile": "FROM scratch\n",
            "tests/load/locustfile.py": "from locust import HttpUser\n",
            "node_modules/x/Dockerfile": "FROM scratch\n",
            ".hidden/kustomization.yaml": KUSTOMIZATION,
        },
    )


def fill(path: Path, value: str) -> None:
    """What a user does with init's placeholders: puts ``value`` where each stands."""
    path.write_text(path.read_text().replace("CHANGE-ME", value))


def run_init(*args: str) -> tuple[int, str, str]:
    return invoke("init", *args)


def listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_init_writes_files_that_validate(shop: Path) -> None:
    code, out, err = run_init(str(shop))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "found: kustomization in deploy/ -> deploy.kustomize" in lines
    assert "found: namespaces: store (from the manifests)" in lines
    assert "found: api/Dockerfile -> image acme/api:1.2 (the name the manifests use)" in lines
    assert "found: worker/Dockerfile -> image CHANGE-ME/worker:dev (a placeholder to name)" in lines
    assert "found: NodePort Service store/api on 30080 -> publish api" in lines
    assert "found: NodePort Service store/admin on 30081 -> publish admin-http" in lines
    assert "found: tests/load/locustfile.py -> load.locustfile" in lines
    assert "found: store/deployment/api -> pod-kill's victims (app=api,tier=web)" in lines
    assert [line for line in lines if line.startswith("wrote: ")] == [
        f"wrote: {shop / name}" for name in WRITTEN
    ]
    suite_path = shop / "chaoskit-suite.yaml"
    assert lines[-1] == (
        f"next: edit {shlex.quote(str(shop / 'chaoskit-system.yaml'))}, then: chaoskit suite "
        f"validate {shlex.quote(str(suite_path))}"
    )

    # No image of the manifests matches worker/: validate names the placeholder left there.
    code, out, err = invoke("suite", "validate", str(suite_path))
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1
    assert (
        f"{shop / 'chaoskit-system.yaml'}: images[1].tag: 'CHANGE-ME/worker:dev' is a "
        "placeholder chaoskit init wrote where it could not tell what goes here"
    ) in err
    system_file = shop / "chaoskit-system.yaml"
    text = system_file.read_text()
    assert "tag: CHANGE-ME/worker:dev # CHANGE-ME: the name:tag the manifests run for " in text
    system_file.write_text(text.replace("CHANGE-ME", "store-front"))  # the user's edit

    suite = load_suite(suite_path)
    check_suite(suite)
    system = suite.system
    assert system is not None and system.name == "store-front"
    assert system.namespaces == ("store",) and suite.namespaces == ("store",)
    assert system.deploy == KustomizeDeploy((shop / "deploy").resolve())
    assert [(i.tag, i.context.name) for i in system.images] == [
        ("acme/api:1.2", "api"),
        ("store-front/worker:dev", "worker"),
    ]
    assert [(p.name, p.namespace, p.service, p.node_port) for p in system.publish] == [
        ("api", "store", "api", 30080),
        ("admin-http", "store", "admin", 30081),
    ]
    assert system.load is not None and system.load.target == "api"
    assert suite.load is not None and suite.load.profile.endswith("tests/load/locustfile.py")
    assert [e.name for e in suite.experiments] == ["pod-kill", "node-stop", "kube-apiserver-kill"]
    assert suite.experiments[0].variables == {"namespace": "store", "selector": "app=api,tier=web"}
    assert {s["kind"] for s in suite.slos} == {"recovery_s", "error_rate"}
    kind = load_config(suite.cluster_config)
    assert (kind.control_planes, kind.workers) == (1, 2)
    ports = [m["containerPort"] for m in kind.document["nodes"][0]["extraPortMappings"]]
    assert ports == [30080, 30081]
    # What init printed is what a user then runs.
    code, out, _ = invoke("suite", "validate", str(suite_path))
    assert code == 0 and "system 'store-front': ok" in out


def test_the_example_check_answers_as_the_interface_says(shop: Path) -> None:
    run_init(str(shop))
    fill(shop / "chaoskit-system.yaml", "store-front")
    system = load_system(shop)
    (invariant,) = system.invariants
    assert isinstance(invariant.check, CommandCheck)
    argv = [sys.executable, *invariant.check.argv[1:]]
    given = {"phase": "before", "published": {"dead": "http://127.0.0.1:9"}}
    proc = subprocess.run(
        argv,
        cwd=shop,
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = parse_result(invariant.name, proc.stdout)
    assert result.checked == 1 and len(result.violations) == 1
    assert "dead (http://127.0.0.1:9) does not answer" in result.violations[0]["what"]


def test_the_workflow_runs_the_suite_and_gates_on_its_exit_code(shop: Path) -> None:
    run_init(str(shop), "--folder", "deploy")
    workflow = yaml.safe_load((shop / ".github/workflows/chaoskit.yml").read_text())
    job = workflow["jobs"]["resilience"]
    assert job["env"]["SUITE"] == "deploy/chaoskit-suite.yaml"
    assert (shop / job["env"]["SUITE"]).is_file()
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    assert "pip install -e ./.chaoskit-src" in steps["Install chaoskit"]["run"]
    upload = steps["Upload the report"]
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ env.REPORT }}"
    assert 'test "$code" = 0' in steps["Gate on the suite's exit code"]["run"]
    calls = []
    for step in job["steps"]:
        for line in str(step.get("run", "")).replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "chaoskit" in words:
                calls.append(words[words.index("chaoskit") + 1 :])
    assert [c[:2] for c in calls] == [["suite", "validate"], ["suite", "run"]]
    for call in calls:
        command: click.Command = cli
        rest = list(call)
        while isinstance(command, click.Group) and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        known = {opt for param in command.params for opt in param.opts}
        assert {w for w in rest if w.startswith("--")} <= known


def test_a_system_folder_inside_the_repository(shop: Path) -> None:
    """--folder: only what is inside it is looked at, and the files go there."""
    code, out, _ = run_init(str(shop), "--folder", "deploy")
    assert code == 0
    assert "found: kustomization in ./ -> deploy.kustomize" in out
    assert "Dockerfile" not in out  # outside the system folder
    suite = load_suite(shop / "deploy" / "chaoskit-suite.yaml")
    assert suite.system is not None and suite.system.folder == (shop / "deploy").resolve()
    assert suite.system.images == ()
    assert (shop / ".github/workflows/chaoskit.yml").is_file()


def test_init_refuses_to_overwrite_and_force_replaces(shop: Path) -> None:
    (shop / "chaoskit-suite.yaml").write_text("mine\n")
    before = listing(shop)
    code, out, err = run_init(str(shop))
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert f"{shop / 'chaoskit-suite.yaml'}: already there" in err
    assert "--force replaces it" in err
    assert listing(shop) == before and (shop / "chaoskit-suite.yaml").read_text() == "mine\n"
    code, _, _ = run_init(str(shop), "--force")
    assert code == 0
    fill(shop / "chaoskit-system.yaml", "store-front")
    assert load_suite(shop / "chaoskit-suite.yaml").system is not None
    assert not [p for p in listing(shop) if ".tmp" in p]


def test_nothing_is_half_written(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = listing(shop)
    real = files._stage
    calls: list[Path] = []

    def failing(destination: Path, text: str, mode: int) -> Path:
        calls.append(destination)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(destination, text, mode)

    monkeypatch.setattr(files, "_stage", failing)
    with pytest.raises(OperationFailed, match="No space left on device; nothing was written"):
        init_repository(shop)
    assert listing(shop) == before  # no file, no temporary, no .github/ folder


def test_a_system_file_init_would_not_accept_is_not_written(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = listing(shop)
    monkeypatch.setattr(files, "system_text", lambda *_: "version: 1\nname: Bad\n")
    with pytest.raises(OperationFailed, match="does not accept itself"):
        init_repository(shop)
    assert listing(shop) == before


def test_an_empty_repository_is_refused_in_one_line(tmp_path: Path) -> None:
    write_tree(tmp_path / "empty", {"README.md": "hello\n", "app/Dockerfile": "FROM scratch\n"})
    code, out, err = run_init(str(tmp_path / "empty"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "found no kustomization, Helm chart (Chart.yaml) or Kubernetes manifests" in err
    assert "1 Dockerfile(s), but nothing that deploys them" in err
    assert listing(tmp_path / "empty") == ["README.md", "app", "app/Dockerfile"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{tmp}/absent",), "{tmp}/absent: no such directory"),
        (("{tmp}/file",), "{tmp}/file: not a directory"),
        (("{tmp}", "--folder", "absent"), "--folder {tmp}/absent: no such directory"),
        (("{tmp}", "--folder", ".."), "--folder ..: leads outside {tmp}"),
        (("{tmp}", "--folder", "/etc"), "--folder /etc: give a folder relative to {tmp}"),
    ],
)
def test_bad_directories_are_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "file").write_text("x\n")
    code, _, err = run_init(*(a.format(tmp=tmp_path) for a in args))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message.format(tmp=tmp_path) in err


def test_init_defaults_to_the_current_directory(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shop)
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    assert "wrote: chaoskit-system.yaml" in result.output
    assert "next: edit chaoskit-system.yaml, then: chaoskit suite validate chaoskit-suite.yaml" in (
        result.output
    )
    fill(shop / "chaoskit-system.yaml", "store-front")
    assert load_suite(shop / "chaoskit-suite.yaml").system is not None


def test_a_helm_chart_and_no_namespace(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "charted",
        {
            "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            "charts/app/templates/deployment.yaml": "{{- if .Values.x }}\nkind: [\n",
            "Dockerfile": "FROM scratch\n",
        },
    )
    code, out, _ = run_init(str(repo))
    assert code == 0
    assert "found: Helm chart in charts/app/ -> deploy.helm" in out
    assert "found: namespaces: charted (none found: the system's name)" in out
    assert "note: the chart's templates are not rendered" in out
    assert "pod-kill's selector in the suite is a placeholder" in out
    assert "found: ./Dockerfile -> image CHANGE-ME/charted:dev (a placeholder to name)" in out
    fill(repo / "chaoskit-system.yaml", "acme")
    with pytest.raises(InvalidConfig) as left:  # the suite's own placeholder
        load_suite(repo / "chaoskit-suite.yaml")
    assert left.value.file == str(repo / "chaoskit-suite.yaml")
    assert (left.value.field, left.value.reason.split(" is ")[0]) == (
        "experiments[0].vars.selector",
        "'app=CHANGE-ME'",
    )
    fill(repo / "chaoskit-suite.yaml", "web")
    suite = load_suite(repo / "chaoskit-suite.yaml")
    assert suite.system is not None
    assert [i.tag for i in suite.system.images] == ["acme/charted:dev"]
    assert suite.system.publish == () and suite.system.load is None and suite.load is None
    assert suite.experiments[0].variables["selector"] == "app=web"
    assert {s["kind"] for s in suite.slos} == {"recovery_s"}  # no load, no error rate
    check_suite(suite)


def test_a_folder_of_manifests_that_names_no_namespace(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "plain",
        {
            "README.md": "no manifests here\n",
            "k8s/web.yaml": APP.replace("acme/api:1.2", "plain/web:latest"),
            "k8s/kind.yaml": "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n",
            "web/Dockerfile": "FROM scratch\n",
        },
    )
    code, out, _ = run_init(str(repo))
    assert code == 0
    assert "found: manifests in k8s/ -> deploy.manifests" in out
    assert "found: namespaces: CHANGE-ME (none found: a placeholder)" in out
    assert "note: the manifests set no namespace" in out
    assert "note: the manifests run 'plain/web:latest', which a built image cannot be" in out
    code, _, err = invoke("suite", "validate", str(repo / "chaoskit-suite.yaml"))
    assert code == 2 and f"{repo / 'chaoskit-system.yaml'}: namespaces[0]: 'CHANGE-ME'" in err
    fill(repo / "chaoskit-system.yaml", "plain")
    fill(repo / "chaoskit-suite.yaml", "plain")
    system = load_system(repo)
    assert system.namespaces == ("plain",)
    assert [i.tag for i in system.images] == ["plain/web:dev"]
    assert [(p.namespace, p.service) for p in system.publish] == [("plain", "api")]
    assert load_suite(repo / "chaoskit-suite.yaml").experiments[0].variables["namespace"] == (
        "plain"
    )


def test_kubernetes_own_namespaces_are_not_the_systems(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "r",
        {
            "m/a.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\n"
                "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n"
            ),
        },
    )
    assert run_init(str(repo))[0] == 0
    assert load_system(repo).namespaces == ("app",)


@pytest.mark.parametrize("text", ["k8s/", ".", "yes", "on", "123", "a b", "x: y", "#c", "..."])
def test_scalars_read_back_as_the_same_string(text: str) -> None:
    assert yaml.safe_load(f"key: {scalar(text)}") == {"key": text}


def _web_and_cache(policy: str) -> dict[str, str]:
    """A repository whose Dockerfile's folder (app/) is not named as its image (web)."""
    pull = f", imagePullPolicy: {policy}" if policy else ""
    return {
        "app/Dockerfile": "FROM scratch\n",
        "deploy/kustomization.yaml": "namespace: shop\nresources: [web.yaml]\n",
        "deploy/web.yaml": APP.replace(
            "containers: [{name: api, image: acme/api:1.2}]",
            f"containers: [{{name: web, image: acme/web:1{pull}}}, "
            "{name: cache, image: redis:7}]",
        ),
    }


@pytest.mark.parametrize("policy", ["Never", "IfNotPresent"])
def test_one_dockerfile_builds_the_one_image_the_manifests_load_onto_the_nodes(
    tmp_path: Path, policy: str
) -> None:
    repo = write_tree(tmp_path / "r", _web_and_cache(policy))
    code, out, _ = run_init(str(repo))
    assert code == 0
    assert "found: app/Dockerfile -> image acme/web:1 (the name the manifests use)" in out
    assert [(i.tag, i.context.name) for i in load_system(repo).images] == [("acme/web:1", "app")]


def test_an_image_pulled_from_a_registry_is_not_taken_for_the_dockerfiles(tmp_path: Path) -> None:
    repo = write_tree(tmp_path / "r", _web_and_cache(""))
    code, out, _ = run_init(str(repo))
    assert code == 0
    assert "found: app/Dockerfile -> image CHANGE-ME/app:dev (a placeholder to name)" in out
    code, _, err = invoke("suite", "validate", str(repo / "chaoskit-suite.yaml"))
    assert code == 2 and ": images[0].tag: 'CHANGE-ME/app:dev' is a placeholder" in err


class _Site(ThreadingHTTPServer):
    """Answers every GET with ``status``."""

    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _SiteHandler)
        self.status = status
        self.paths: list[str] = []


class _SiteHandler(BaseHTTPRequestHandler):
    server: _Site
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.parametrize(("status", "fails"), [(200, False), (404, False), (503, True)])
def test_the_starter_load_init_writes_runs_and_fails_only_on_errors(
    shop: Path, tmp_path: Path, status: int, fails: bool
) -> None:
    """Without a locustfile.py and with a published Service, init writes its own: it runs
    headless under chaoskit's runner (its recorder beside it) against a real server."""
    (shop / "tests/load/locustfile.py").unlink()
    code, out, _ = run_init(str(shop))
    assert code == 0 and f"wrote: {shop / 'chaoskit-load/locustfile.py'}" in out
    fill(shop / "chaoskit-system.yaml", "store-front")
    system = load_system(shop)
    assert system.load is not None and system.load.locustfile is not None
    assert system.load.locustfile == (shop / "chaoskit-load/locustfile.py").resolve()
    site = _Site(status)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        spec = LoadSpec(
            profile=system.load.locustfile,
            host=f"http://127.0.0.1:{site.server_address[1]}",
            duration=2, out_dir=tmp_path / "out", users=2, spawn_rate=2, run_id="starter",
        )  # fmt: skip
        result = LoadRun(spec).start().wait()
    finally:
        site.shutdown()
        site.server_close()
    total = result.stats.total
    # Each request the load made is a GET /, besides the runner's reachability check.
    assert total.requests > 0 and site.paths.count("/products") == 1
    assert {p for p in site.paths if p != "/products"} == {"/"}
    assert (total.failures == total.requests) if fails else total.failures == 0


def test_no_starter_load_without_a_published_service(tmp_path: Path) -> None:
    repo = write_tree(
        tmp_path / "r", {"k8s/app.yaml": APP.replace("type: NodePort", "type: ClusterIP")}
    )
    assert run_init(str(repo))[0] == 0
    assert not (repo / "chaoskit-load").exists()
    assert "# The traffic a suite runs through every trial (no locustfile.py found)" in (
        (repo / "chaoskit-system.yaml").read_text()
    )
