"""System files: a valid one loads with every path resolved inside its folder; anything wrong
is one InvalidConfig naming the file, the field and the reason."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaoskit.errors import InvalidConfig
from chaoskit.system.spec import (
    SYSTEM_FILE,
    CommandCheck,
    HelmDeploy,
    ImageBuild,
    Invariant,
    KustomizeDeploy,
    LoadSpec,
    ManifestsDeploy,
    Published,
    PythonCheck,
    WaitSpec,
    Workload,
    load_system,
)

FIXTURE = Path(__file__).parent / "fixtures" / "kvstore"
Doc = dict[str, Any]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the fixture system to change."""
    copied = tmp_path / "kvstore"
    shutil.copytree(FIXTURE, copied)
    return copied.resolve()


def example() -> Doc:
    doc = yaml.safe_load((FIXTURE / SYSTEM_FILE).read_text())
    assert isinstance(doc, dict)
    return doc


def write(folder: Path, doc: object) -> Path:
    path = folder / SYSTEM_FILE
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def minimal() -> Doc:
    return {
        "version": 1,
        "name": "kvstore",
        "namespaces": ["kv"],
        "deploy": {"kustomize": "manifests"},
    }


def test_the_example_loads_with_paths_resolved() -> None:
    spec = load_system(FIXTURE)
    root = FIXTURE.resolve()
    assert spec.path == root / SYSTEM_FILE and spec.folder == root
    assert (spec.name, spec.namespaces) == ("kvstore", ("kv",))
    assert spec.description == "a replicated key-value service with a write log"
    assert spec.deploy == KustomizeDeploy(root / "manifests")
    assert spec.images == (
        ImageBuild("example/kv:1", root / "images/kv", root / "images/kv/Dockerfile"),
    )
    assert spec.wait == WaitSpec(
        timeout=120.0,
        workloads=(
            Workload("kv", "StatefulSet", "kv"),
            Workload("kv", "Deployment", "kv-http"),
        ),
    )
    assert spec.wait.workloads is not None and spec.wait.workloads[0].ref == "statefulset/kv"
    assert spec.publish == (Published("entry", "kv", "kv-http", 30080),)
    assert spec.published("entry").node_port == 30080
    assert spec.load == LoadSpec(
        target="entry", locustfile=root / "load/locustfile.py", users=20, spawn_rate=5.0
    )
    assert spec.invariants == (
        Invariant("no-lost-writes", CommandCheck(("python3", "checks/lost_writes.py"))),
        Invariant(
            "balances",
            PythonCheck("checks.balances", "check", root / "checks/balances.py"),
            timeout=30.0,
        ),
    )


def test_a_folder_or_its_file_or_any_file_name(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_folder = load_system(folder)
    assert load_system(folder / SYSTEM_FILE) == by_folder
    monkeypatch.chdir(folder.parent)
    assert load_system(Path("kvstore")) == by_folder
    renamed = folder / "staging.yaml"
    (folder / SYSTEM_FILE).rename(renamed)
    assert load_system(renamed).path == renamed


def test_defaults(folder: Path) -> None:
    spec = load_system(write(folder, minimal()))
    assert spec.deploy == KustomizeDeploy(folder / "manifests")
    assert spec.description == ""
    assert (spec.images, spec.publish, spec.invariants, spec.load) == ((), (), (), None)
    assert spec.wait == WaitSpec(timeout=300.0, workloads=None)


def test_plain_manifests_and_helm(folder: Path) -> None:
    (folder / "chart" / "templates").mkdir(parents=True)
    (folder / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: kv\nversion: 1.0.0\n")
    (folder / "values.yaml").write_text("replicas: 3\n")
    manifests = {**minimal(), "deploy": {"manifests": ["manifests/kv.yaml", "manifests"]}}
    spec = load_system(write(folder, manifests))
    assert spec.deploy == ManifestsDeploy((folder / "manifests/kv.yaml", folder / "manifests"))
    helm = {**minimal(), "deploy": {"helm": {"chart": "chart", "values": ["values.yaml"]}}}
    spec = load_system(write(folder, helm))
    assert spec.deploy == HelmDeploy(
        chart=folder / "chart", release="kvstore", namespace="kv", values=(folder / "values.yaml",)
    )


def test_a_profile_instead_of_a_locustfile_and_extension_fields(folder: Path) -> None:
    doc = example()
    doc["load"] = {"profile": "steady", "target": "entry"}
    doc["x-defaults"] = {"timeout": 5}
    spec = load_system(write(folder, doc))
    assert spec.load == LoadSpec(target="entry", profile="steady")


def test_several_namespaces_take_namespace_kind_name(folder: Path) -> None:
    doc = example()
    doc["namespaces"] = ["kv", "kv-log"]
    doc["wait"]["workloads"] = ["kv-log/ds/shipper", "kv/Deployment/kv-http"]
    spec = load_system(write(folder, doc))
    assert spec.wait.workloads == (
        Workload("kv-log", "DaemonSet", "shipper"),
        Workload("kv", "Deployment", "kv-http"),
    )


def _set(path: str, value: object) -> Callable[[Doc, Path], None]:
    """A change setting the dotted ``path`` (list items by index) of the document."""

    def change(doc: Doc, _folder: Path) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _drop(path: str) -> Callable[[Doc, Path], None]:
    def change(doc: Doc, _folder: Path) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return change


def _append(path: str, value: object) -> Callable[[Doc, Path], None]:
    def change(doc: Doc, _folder: Path) -> None:
        target: Any = doc
        for part in path.split("."):
            target = target[part]
        target.append(copy.deepcopy(value))

    return change


def _not_executable(doc: Doc, folder: Path) -> None:
    (folder / "checks/lost_writes.py").chmod(0o644)
    doc["invariants"][0]["command"] = ["checks/lost_writes.py"]


def _two_namespaces(doc: Doc, _folder: Path) -> None:
    doc["namespaces"] = ["kv", "kv-log"]


def _helm_chart(doc: Doc, folder: Path) -> None:
    (folder / "chart").mkdir()
    (folder / "chart/Chart.yaml").write_text("apiVersion: v2\nname: kv\nversion: 1.0.0\n")
    doc["deploy"] = {"helm": {"chart": "chart", "namespace": "default"}}


BAD: list[tuple[str, Callable[[Doc, Path], None], str, str]] = [
    # (id, change, field, reason)
    ("no-version", _drop("version"), "version", "is required"),
    ("version-2", _set("version", 2), "version", "unsupported version 2 (supported: 1)"),
    ("version-text", _set("version", "1"), "version", "unsupported version '1'"),
    ("version-float", _set("version", 1.0), "version", "unsupported version 1.0"),
    ("unknown", _set("colour", "red"), "colour", "unknown field (known: deploy, description"),
    ("unknown-nested", _set("deploy.kustomise", "x"), "deploy.kustomise", "known: helm,"),
    ("unknown-image", _set("images.0.tags", "x"), "images[0].tags", "known: context,"),
    ("no-name", _drop("name"), "name", "is required"),
    ("bad-name", _set("name", "Bad_Name"), "name", "must be lowercase letters, digits and '-'"),
    ("description", _set("description", ["a"]), "description", "must be a string, not list"),
    ("no-namespaces", _drop("namespaces"), "namespaces", "is required"),
    ("namespaces-empty", _set("namespaces", []), "namespaces", "at least one namespace"),
    ("namespaces-text", _set("namespaces", "kv"), "namespaces", "must be a list, not str"),
    ("namespace-twice", _set("namespaces", ["kv", "kv"]), "namespaces[1]", "given twice"),
    ("namespace-bad", _set("namespaces", ["kv_1"]), "namespaces[0]", "lowercase letters"),
    ("no-deploy", _drop("deploy"), "deploy", "is required"),
    ("deploy-none", _set("deploy", {}), "deploy", "needs exactly one of helm, kustomize"),
    (
        "deploy-two",
        _set("deploy.manifests", ["manifests"]),
        "deploy",
        "(given: kustomize, manifests)",
    ),
    ("deploy-text", _set("deploy", "manifests/"), "deploy", "must be a mapping, not str"),
    ("kustomize-missing", _set("deploy.kustomize", "nope/"), "deploy.kustomize", "no such folder"),
    (
        "kustomize-absolute",
        _set("deploy.kustomize", "/etc"),
        "deploy.kustomize",
        "'/etc' is absolute: give a path relative to the system folder",
    ),
    (
        "kustomize-escapes",
        _set("deploy.kustomize", "manifests/../.."),
        "deploy.kustomize",
        "leads outside the system folder",
    ),
    (
        "kustomize-no-kustomization",
        _set("deploy.kustomize", "images/kv"),
        "deploy.kustomize",
        "holds no kustomization.yaml / kustomization.yml / Kustomization",
    ),
    (
        "kustomize-file",
        _set("deploy.kustomize", "manifests/kv.yaml"),
        "deploy.kustomize",
        "is not a folder",
    ),
    (
        "path-nul",
        _set("deploy.kustomize", "a\x00b"),
        "deploy.kustomize",
        "'a\\x00b' cannot be read: embedded null byte",
    ),
    (
        "path-too-long",
        _set("deploy.kustomize", "k" * 300),
        "deploy.kustomize",
        "kkk... cannot be read: File name too long",
    ),
    ("manifests-empty", _set("deploy", {"manifests": []}), "deploy.manifests", "at least one"),
    (
        "manifests-not-yaml",
        _set("deploy", {"manifests": ["images/kv/Dockerfile"]}),
        "deploy.manifests[0]",
        "is not a manifest (*.yaml/*.yml/*.json)",
    ),
    (
        "manifests-empty-folder",
        _set("deploy", {"manifests": ["manifests", "images"]}),
        "deploy.manifests[1]",
        "'images' holds no manifest",
    ),
    ("helm-no-chart", _set("deploy", {"helm": {}}), "deploy.helm.chart", "is required"),
    (
        "helm-not-a-chart",
        _set("deploy", {"helm": {"chart": "manifests"}}),
        "deploy.helm.chart",
        "holds no Chart.yaml",
    ),
    ("helm-namespace", _helm_chart, "deploy.helm.namespace", "not one of the system's"),
    ("images-text", _set("images", "example/kv:1"), "images", "must be a list, not str"),
    ("image-no-tag", _drop("images.0.tag"), "images[0].tag", "is required"),
    ("image-no-context", _drop("images.0.context"), "images[0].context", "is required"),
    ("image-untagged", _set("images.0.tag", "example/kv"), "images[0].tag", "must end in a tag"),
    (
        "image-registry-port-untagged",
        _set("images.0.tag", "localhost:5000/kv"),
        "images[0].tag",
        "must end in a tag",
    ),
    ("image-latest", _set("images.0.tag", "example/kv:latest"), "images[0].tag", "':latest'"),
    ("image-name", _set("images.0.tag", "Example/KV:1"), "images[0].tag", "not an image name"),
    (
        "image-twice",
        _append("images", {"tag": "example/kv:1", "context": "images/kv"}),
        "images[1].tag",
        "'example/kv:1' is built twice",
    ),
    (
        "context-missing",
        _set("images.0.context", "images/nope"),
        "images[0].context",
        "no such folder in the system folder: 'images/nope'",
    ),
    ("context-escapes", _set("images.0.context", ".."), "images[0].context", "leads outside"),
    (
        "dockerfile-missing",
        _set("images.0.dockerfile", "Dockerfile.dev"),
        "images[0].dockerfile",
        "no such file in images/kv/: 'Dockerfile.dev'",
    ),
    (
        "dockerfile-escapes",
        _set("images.0.dockerfile", "../../../Dockerfile"),
        "images[0].dockerfile",
        "leads outside the system folder",
    ),
    (
        "dockerfile-absolute",
        _set("images.0.dockerfile", "/Dockerfile"),
        "images[0].dockerfile",
        "is absolute: give a path relative to images/kv/",
    ),
    (
        "no-default-dockerfile",
        _set("images.0", {"tag": "example/kv:1", "context": "manifests"}),
        "images[0].context",
        "'manifests' holds no Dockerfile",
    ),
    ("wait-unknown", _set("wait.retries", 3), "wait.retries", "unknown field"),
    ("wait-zero", _set("wait.timeout", 0), "wait.timeout", "must be positive"),
    ("wait-inf", _set("wait.timeout", float("inf")), "wait.timeout", "must be a finite number"),
    ("wait-text", _set("wait.timeout", "5m"), "wait.timeout", "must be a number, not '5m'"),
    ("workloads-empty", _set("wait.workloads", []), "wait.workloads", "at least one workload"),
    (
        "workload-form",
        _set("wait.workloads", ["kv"]),
        "wait.workloads[0]",
        "'kv' must be kind/name or namespace/kind/name",
    ),
    (
        "workload-kind",
        _set("wait.workloads", ["job/kv"]),
        "wait.workloads[0]",
        "'job' is not deployment, statefulset or daemonset",
    ),
    (
        "workload-namespace",
        _set("wait.workloads", ["other/deployment/kv"]),
        "wait.workloads[0]",
        "namespace 'other' is not one of the system's namespaces (kv)",
    ),
    (
        "workload-name",
        _set("wait.workloads", ["deployment/KV"]),
        "wait.workloads[0]",
        "'KV' is not a Kubernetes object name",
    ),
    (
        "workload-twice",
        _set("wait.workloads", ["sts/kv", "statefulset/kv"]),
        "wait.workloads[1]",
        "given twice",
    ),
    (
        "workload-ambiguous",
        _two_namespaces,
        "wait.workloads[0]",
        "must be namespace/kind/name (the system owns several namespaces)",
    ),
    (
        "publish-twice",
        _append("publish", {"name": "entry", "service": "kv/kv", "node_port": 30081}),
        "publish[1].name",
        "'entry' is published twice",
    ),
    ("publish-no-port", _drop("publish.0.node_port"), "publish[0].node_port", "is required"),
    (
        "service-form",
        _set("publish.0.service", "kv-http"),
        "publish[0].service",
        "'kv-http' must be namespace/name",
    ),
    (
        "service-namespace",
        _set("publish.0.service", "shop/kv-http"),
        "publish[0].service",
        "namespace 'shop' is not one of",
    ),
    (
        "service-name",
        _set("publish.0.service", "kv/1kv"),
        "publish[0].service",
        "start with a letter",
    ),
    (
        "node-port-low",
        _set("publish.0.node_port", 80),
        "publish[0].node_port",
        "must be between 30000 and 32767, not 80",
    ),
    (
        "node-port-text",
        _set("publish.0.node_port", "30080"),
        "publish[0].node_port",
        "must be an integer",
    ),
    (
        "node-port-twice",
        _append("publish", {"name": "other", "service": "kv/kv", "node_port": 30080}),
        "publish[1].node_port",
        "30080 is already published as 'entry'",
    ),
    ("load-both", _set("load.profile", "steady"), "load", "exactly one of locustfile"),
    ("load-neither", _drop("load.locustfile"), "load", "exactly one of locustfile"),
    (
        "locustfile-missing",
        _set("load.locustfile", "load/nope.py"),
        "load.locustfile",
        "no such file",
    ),
    (
        "locustfile-not-python",
        _set("load.locustfile", "manifests/kv.yaml"),
        "load.locustfile",
        "is not a Python file",
    ),
    (
        "profile-a-path",
        _set("load", {"profile": "flash_sale.py", "target": "entry"}),
        "load.profile",
        "is not a profile name",
    ),
    ("no-target", _drop("load.target"), "load.target", "is required"),
    (
        "target-unknown",
        _set("load.target", "exit"),
        "load.target",
        "'exit' is not a publish name (published: entry)",
    ),
    (
        "target-nothing-published",
        _drop("publish"),
        "load.target",
        "(published: none)",
    ),
    ("users-zero", _set("load.users", 0), "load.users", "must be between 1 and 10000, not 0"),
    ("spawn-rate", _set("load.spawn_rate", -1), "load.spawn_rate", "must be positive"),
    ("invariants-map", _set("invariants", {"a": 1}), "invariants", "must be a list"),
    ("invariant-text", _set("invariants.0", "check"), "invariants[0]", "must be a mapping"),
    ("invariant-no-name", _drop("invariants.0.name"), "invariants[0].name", "is required"),
    (
        "invariant-twice",
        _set("invariants.1.name", "no-lost-writes"),
        "invariants[1].name",
        "'no-lost-writes' is given twice",
    ),
    (
        "invariant-both",
        _set("invariants.0.python", "checks.balances:check"),
        "invariants[0]",
        "needs exactly one of command (a program) and python (module:function) (given both)",
    ),
    ("invariant-neither", _drop("invariants.0.command"), "invariants[0]", "exactly one of"),
    (
        "command-text",
        _set("invariants.0.command", "python3 checks/lost_writes.py"),
        "invariants[0].command",
        "must be a list of arguments",
    ),
    ("command-empty", _set("invariants.0.command", []), "invariants[0].command", "a program"),
    (
        "command-arg",
        _set("invariants.0.command", ["python3", None]),
        "invariants[0].command[1]",
        "must be a non-empty string",
    ),
    (
        "command-missing",
        _set("invariants.0.command", ["checks/nope.py"]),
        "invariants[0].command[0]",
        "no such file in the system folder: 'checks/nope.py'",
    ),
    ("command-not-executable", _not_executable, "invariants[0].command[0]", "not executable"),
    (
        "python-form",
        _set("invariants.1.python", "checks.balances"),
        "invariants[1].python",
        "must be module:function",
    ),
    (
        "python-missing",
        _set("invariants.1.python", "checks.nope:check"),
        "invariants[1].python",
        "no module 'checks.nope' in the system folder (checks/nope.py or checks/nope/__init__",
    ),
    ("check-timeout", _set("invariants.1.timeout", 0), "invariants[1].timeout", "positive"),
]


@pytest.mark.parametrize(
    ("change", "field", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_what_is_wrong_is_named(
    folder: Path, change: Callable[[Doc, Path], None], field: str, reason: str
) -> None:
    doc = example()
    change(doc, folder)
    path = write(folder, doc)
    with pytest.raises(InvalidConfig) as caught:
        load_system(folder)
    assert (caught.value.file, caught.value.field) == (str(path), field)
    assert reason in caught.value.reason
    assert "\n" not in str(caught.value)


def test_a_symbolic_link_out_of_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "kustomization.yaml").write_text("resources: []\n")
    (folder / "linked").symlink_to(outside)
    doc = example()
    doc["deploy"]["kustomize"] = "linked"
    write(folder, doc)
    with pytest.raises(InvalidConfig, match=r"deploy.kustomize: 'linked' leads outside"):
        load_system(folder)


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("version: [1\n", "line 2", "not valid YAML"),
        ("- version: 1\n", "", "must be a mapping of fields, not list"),
        ("", "", "is empty (a system file starts with 'version: 1')"),
        ("version: 1\nversion: 1\n", "line 2", "key 'version' is given twice"),
    ],
    ids=["not-yaml", "a-list", "empty", "key-twice"],
)
def test_a_file_that_is_not_a_mapping(folder: Path, text: str, field: str, reason: str) -> None:
    path = write(folder, text)
    with pytest.raises(InvalidConfig) as caught:
        load_system(path)
    assert (caught.value.file, caught.value.field) == (str(path), field)
    assert reason in caught.value.reason


def test_a_folder_without_the_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as caught:
        load_system(tmp_path)
    assert caught.value.file == str(tmp_path)
    assert (
        caught.value.reason == f"no {SYSTEM_FILE} in this folder (it describes a system under test)"
    )
    with pytest.raises(InvalidConfig, match="no such file or folder"):
        load_system(tmp_path / "nowhere")
    with pytest.raises(InvalidConfig, match="cannot be read: File name too long"):
        load_system(tmp_path / ("n" * 300))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["..", "/", "manifests", "kv/kv", "a:b", "x/y/z", "30080", "entry"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "version",
    "name",
    "description",
    "namespaces",
    "deploy",
    "deploy.kustomize",
    "images",
    "images.0",
    "images.0.tag",
    "images.0.context",
    "images.0.dockerfile",
    "wait",
    "wait.timeout",
    "wait.workloads",
    "publish",
    "publish.0",
    "publish.0.service",
    "publish.0.node_port",
    "load",
    "load.target",
    "load.users",
    "load.spawn_rate",
    "invariants",
    "invariants.0",
    "invariants.0.command",
    "invariants.1.python",
    "invariants.1.timeout",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(where=st.sampled_from(FIELDS), value=values)
def test_any_value_anywhere_is_loaded_or_named(folder: Path, where: str, value: object) -> None:
    """Never a traceback: a random value at any field loads, or is one InvalidConfig line."""
    doc = example()
    _set(where, value)(doc, folder)
    write(folder, doc)
    try:
        load_system(folder)
    except InvalidConfig as e:
        assert e.field and "\n" not in str(e)
