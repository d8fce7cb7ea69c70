"""System files: a folder the user owns, described by ``chaoskit-system.yaml``.

The file says how to deploy the system (kustomize, plain manifests or a Helm chart), which
images to build for it, what to wait for, which Services the host reaches, the load to run
and the invariants that must hold before and after every trial (every field:
``docs/system-file.md``)::

    version: 1
    name: kvstore
    namespaces: [kv]
    deploy: {kustomize: manifests/}
    images: [{tag: example/kv:1, context: images/kv}]
    publish: [{name: entry, service: kv/kv-http, node_port: 30080}]
    load: {locustfile: load/locustfile.py, target: entry}
    invariants:
      - {name: no-lost-writes, command: [python3, checks/lost_writes.py]}

Paths are relative to the folder and must stay inside it. :func:`load_system` checks
everything it can without a cluster and reports the first problem as one line naming the
file, the field and the reason (``InvalidConfig``, exit 2). It runs nothing of the user's.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chaoskit.documents import FieldReader, read_document, refuse_placeholders
from chaoskit.errors import InvalidConfig

SYSTEM_FILE = "chaoskit-system.yaml"
VERSION = 1

SYSTEM_FIELDS = frozenset(
    {
        "version",
        "name",
        "description",
        "namespaces",
        "deploy",
        "images",
        "wait",
        "publish",
        "load",
        "invariants",
    }
)
DEPLOY_FIELDS = frozenset({"kustomize", "manifests", "helm"})
HELM_FIELDS = frozenset({"chart", "release", "namespace", "values"})
IMAGE_FIELDS = frozenset({"tag", "context", "dockerfile"})
WAIT_FIELDS = frozenset({"timeout", "workloads"})
PUBLISH_FIELDS = frozenset({"name", "service", "node_port"})
LOAD_FIELDS = frozenset({"locustfile", "profile", "target", "users", "spawn_rate"})
INVARIANT_FIELDS = frozenset({"name", "command", "python", "timeout"})

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
"""What ``kubectl apply -f FOLDER`` reads of a folder."""
NODE_PORTS = (30000, 32767)
"""Kubernetes' default NodePort range, which kind keeps."""
DEFAULT_WAIT_S = 300.0
DEFAULT_CHECK_TIMEOUT_S = 60.0
MAX_USERS = 10_000

# Kubernetes names: a DNS-1123 label (namespaces, and chaoskit's own names), a DNS-1035
# label (Services), a DNS-1123 subdomain (workloads).
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
SERVICE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SUBLABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
SUBDOMAIN = re.compile(rf"(?=.{{1,253}}$){_SUBLABEL}(?:\.{_SUBLABEL})*")
HELM_RELEASE_MAX = 53
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?"  # a registry host
    rf"{_COMPONENT}(?:/{_COMPONENT})*"  # the repository
    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # the tag
)
PROFILE = re.compile(r"[a-z][a-z0-9_]*")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
PYTHON_REF = re.compile(rf"({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER})")
WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
WORKLOAD_KINDS: dict[str, WorkloadKind] = {
    "deployment": "Deployment",
    "deploy": "Deployment",
    "statefulset": "StatefulSet",
    "sts": "StatefulSet",
    "daemonset": "DaemonSet",
    "ds": "DaemonSet",
}


@dataclass(frozen=True)
class KustomizeDeploy:
    """``kubectl apply -k folder``."""

    folder: Path


@dataclass(frozen=True)
class ManifestsDeploy:
    """``kubectl apply -f`` each path in order: files, or folders of manifests (not their
    subfolders)."""

    paths: tuple[Path, ...]


@dataclass(frozen=True)
class HelmDeploy:
    """``helm upgrade --install release chart -n namespace -f values...``, from a chart in
    the folder."""

    chart: Path
    release: str
    namespace: str
    values: tuple[Path, ...] = ()


Deploy = KustomizeDeploy | ManifestsDeploy | HelmDeploy


@dataclass(frozen=True)
class ImageBuild:
    """An image built from a Dockerfile of the folder, then loaded onto the kind nodes."""

    tag: str
    """The name the manifests use, tag included (never ``latest``)."""
    context: Path
    dockerfile: Path


@dataclass(frozen=True)
class Workload:
    namespace: str
    kind: WorkloadKind
    name: str

    @property
    def ref(self) -> str:
        """``kind/name`` as kubectl takes it."""
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class WaitSpec:
    timeout: float = DEFAULT_WAIT_S
    """Seconds the workloads have to become ready after a deploy."""
    workloads: tuple[Workload, ...] | None = None
    """What must be ready; None: every Deployment, StatefulSet and DaemonSet in the
    system's namespaces."""


@dataclass(frozen=True)
class Published:
    """A Service the host reaches through the cluster's kind port mapping of its NodePort."""

    name: str
    namespace: str
    service: str
    node_port: int


@dataclass(frozen=True)
class LoadSpec:
    """The load a suite runs through every trial, sent to one published Service."""

    target: str
    """The name of a :class:`Published`."""
    locustfile: Path | None = None
    """The system's own Locust file; None when ``profile`` names one of chaoskit's."""
    profile: str | None = None
    users: int | None = None
    """None: whoever runs the load decides (the suite, the command line)."""
    spawn_rate: float | None = None


@dataclass(frozen=True)
class CommandCheck:
    """A program run in the system folder: input as JSON on stdin, result on stdout."""

    argv: tuple[str, ...]


@dataclass(frozen=True)
class PythonCheck:
    """A function ``module:function`` imported from the system folder, called with keyword
    arguments, returning the result mapping."""

    module: str
    function: str
    file: Path
    """The module's source in the folder (``a/b.py`` or ``a/b/__init__.py``)."""


@dataclass(frozen=True)
class Invariant:
    name: str
    check: CommandCheck | PythonCheck
    timeout: float = DEFAULT_CHECK_TIMEOUT_S


@dataclass(frozen=True)
class SystemSpec:
    path: Path
    """The system file."""
    folder: Path
    """The system folder; every path below is inside it (resolved)."""
    name: str
    description: str
    namespaces: tuple[str, ...]
    deploy: Deploy
    images: tuple[ImageBuild, ...] = ()
    wait: WaitSpec = WaitSpec()
    publish: tuple[Published, ...] = ()
    load: LoadSpec | None = None
    invariants: tuple[Invariant, ...] = ()

    def published(self, name: str) -> Published:
        """The published Service called ``name`` (KeyError if none is)."""
        for item in self.publish:
            if item.name == name:
                return item
        raise KeyError(name)


def is_system_path(topology: str) -> bool:
    """Whether ``topology`` names a system folder (a path) rather than one of chaoskit's
    topologies (a name)."""
    return topology in (".", "..") or topology.startswith(("./", "../", "/")) or "/" in topology


def system_file(path: Path) -> Path:
    """The system file of ``path``: the folder's ``chaoskit-system.yaml``, or ``path`` itself
    when it is a file."""
    try:
        is_folder, is_file = path.is_dir(), path.is_file()
        has_file = is_folder and (path / SYSTEM_FILE).is_file()
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InvalidConfig(path, "", f"cannot be read: {reason}") from None
    if is_folder:
        if not has_file:
            raise InvalidConfig(
                path, "", f"no {SYSTEM_FILE} in this folder (it describes a system under test)"
            )
        return path / SYSTEM_FILE
    if not is_file:
        raise InvalidConfig(path, "", "no such file or folder")
    return path


def load_system(path: Path) -> SystemSpec:
    """The checked system of the folder (or system file) ``path``; raises InvalidConfig
    naming the file, the field and the reason."""
    file = system_file(path).resolve()
    doc = read_document(file)
    r = _SystemReader(file)
    if doc is None:
        raise r.fail("", f"is empty (a system file starts with 'version: {VERSION}')")
    if not isinstance(doc, dict):
        raise r.fail("", f"must be a mapping of fields, not {type(doc).__name__}")
    # The version first: a file of a later version may hold fields this one does not know.
    if "version" not in doc:
        raise r.fail("version", f"is required (this chaoskit reads version {VERSION})")
    version = doc["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != VERSION:
        raise r.fail("version", f"unsupported version {_shown(version)} (supported: {VERSION})")
    refuse_placeholders(file, doc)
    doc = r.mapping("", doc, SYSTEM_FIELDS)
    for required in ("name", "namespaces", "deploy"):
        if required not in doc:
            raise r.fail(required, "is required")
    name = r.label("name", doc["name"])
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise r.fail("description", f"must be a string, not {type(description).__name__}")
    namespaces = tuple(r.label(w, v) for w, v in r.unique_list("namespaces", doc["namespaces"]))
    if not namespaces:
        raise r.fail("namespaces", "must name at least one namespace")
    # In the file's order, so that the first problem reported is the first one written.
    deploy = _deploy(r, doc["deploy"], namespaces, name)
    images = _images(r, doc.get("images"))
    wait = _wait(r, doc.get("wait"), namespaces)
    publish = _publish(r, doc.get("publish"), namespaces)
    load = _load(r, doc["load"], publish) if doc.get("load") is not None else None
    return SystemSpec(
        path=file,
        folder=r.folder,
        name=name,
        description=(description or "").strip(),
        namespaces=namespaces,
        deploy=deploy,
        images=images,
        wait=wait,
        publish=publish,
        load=load,
        invariants=_invariants(r, doc.get("invariants")),
    )


class _SystemReader(FieldReader):
    """The shared field reads, and those of a system file: names, lists, finite numbers,
    paths inside the system folder."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.folder = path.parent

    def label(self, where: str, value: Any, *, pattern: re.Pattern[str] = LABEL) -> str:
        text = self.text(where, value)
        if not pattern.fullmatch(text):
            ends = (
                "start with a letter and end with a letter or digit"
                if pattern is SERVICE
                else "start and end with a letter or digit"
            )
            raise self.fail(
                where,
                f"{_shown(text)} must be lowercase letters, digits and '-', {ends}, at most 63 "
                "characters",
            )
        return text

    def items(self, where: str, value: Any) -> list[tuple[str, Any]]:
        """``(field, item)`` for each item of the list ``value`` (None: no items)."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, not {type(value).__name__}")
        return [(f"{where}[{i}]", item) for i, item in enumerate(value)]

    def unique_list(self, where: str, value: Any) -> list[tuple[str, Any]]:
        items = self.items(where, value)
        seen: set[str] = set()
        for field, item in items:
            if isinstance(item, str) and item in seen:
                raise self.fail(field, f"{_shown(item)} is given twice")
            seen.add(str(item))
        return items

    def positive(self, where: str, value: Any) -> float:
        number = self.number(where, value, positive=True)
        if not math.isfinite(number):
            raise self.fail(where, "must be a finite number")
        return number

    def inside(
        self,
        where: str,
        value: Any,
        want: Literal["file", "folder", "any"],
        *,
        base: Path | None = None,
    ) -> Path:
        """The path ``value`` names, relative to ``base`` (default: the system folder):
        existing, inside the system folder (symbolic links followed)."""
        text = self.text(where, value)
        base = base or self.folder
        within = (
            "the system folder"
            if base == self.folder
            else f"{base.relative_to(self.folder).as_posix()}/"
        )
        shown = _shown(text)
        if Path(text).is_absolute():
            raise self.fail(where, f"{shown} is absolute: give a path relative to {within}")
        noun = {"file": "file", "folder": "folder", "any": "file or folder"}[want]
        with self.reading(where, text):
            resolved = (base / text).resolve()
            if not resolved.is_relative_to(self.folder):
                raise self.fail(where, f"{shown} leads outside the system folder")
            if not resolved.exists():
                raise self.fail(where, f"no such {noun} in {within}: {shown}")
            if (want == "file" and not resolved.is_file()) or (
                want == "folder" and not resolved.is_dir()
            ):
                raise self.fail(where, f"{shown} is not a {noun}")
        return resolved

    @contextmanager
    def reading(self, where: str, text: str) -> Iterator[None]:
        """Looks at the files ``text`` names; what the system cannot answer (a name too
        long, a NUL byte, a folder it may not read) is InvalidConfig for ``where``."""
        try:
            yield
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise self.fail(where, f"{_shown(text)} cannot be read: {reason}") from None


def _shown(value: object) -> str:
    """``value`` as Python shows it (a string quoted), cut short: an error names a value,
    it does not repeat a page."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _deploy(r: _SystemReader, value: Any, namespaces: tuple[str, ...], name: str) -> Deploy:
    raw = r.mapping("deploy", value, DEPLOY_FIELDS)
    given = sorted(DEPLOY_FIELDS & raw.keys())
    if len(given) != 1:
        also = f" (given: {', '.join(given)})" if given else ""
        raise r.fail("deploy", f"needs exactly one of helm, kustomize, manifests{also}")
    if "kustomize" in raw:
        folder = r.inside("deploy.kustomize", raw["kustomize"], "folder")
        with r.reading("deploy.kustomize", str(raw["kustomize"])):
            found = any((folder / n).is_file() for n in KUSTOMIZATION_FILES)
        if not found:
            raise r.fail(
                "deploy.kustomize",
                f"{_shown(raw['kustomize'])} holds no {' / '.join(KUSTOMIZATION_FILES)}",
            )
        return KustomizeDeploy(folder)
    if "manifests" in raw:
        items = r.items("deploy.manifests", raw["manifests"])
        if not items:
            raise r.fail("deploy.manifests", "must name at least one file or folder")
        return ManifestsDeploy(tuple(_manifests(r, w, v) for w, v in items))
    return _helm(r, raw["helm"], namespaces, name)


def _manifests(r: _SystemReader, where: str, value: Any) -> Path:
    path = r.inside(where, value, "any")
    suffixes = "/".join(f"*{s}" for s in MANIFEST_SUFFIXES)
    if not path.is_dir():
        if path.suffix not in MANIFEST_SUFFIXES:
            raise r.fail(where, f"{_shown(value)} is not a manifest ({suffixes})")
        return path
    with r.reading(where, str(value)):
        found = any(p.is_file() and p.suffix in MANIFEST_SUFFIXES for p in path.iterdir())
    if not found:
        raise r.fail(where, f"{_shown(value)} holds no manifest ({suffixes})")
    return path


def _helm(r: _SystemReader, value: Any, namespaces: tuple[str, ...], name: str) -> HelmDeploy:
    raw = r.mapping("deploy.helm", value, HELM_FIELDS)
    if "chart" not in raw:
        raise r.fail("deploy.helm.chart", "is required")
    chart = r.inside("deploy.helm.chart", raw["chart"], "folder")
    if not (chart / "Chart.yaml").is_file():
        raise r.fail("deploy.helm.chart", f"{_shown(raw['chart'])} holds no Chart.yaml")
    release = r.label("deploy.helm.release", raw.get("release", name))
    if len(release) > HELM_RELEASE_MAX:
        raise r.fail("deploy.helm.release", f"must be at most {HELM_RELEASE_MAX} characters")
    namespace = _owned(r, "deploy.helm.namespace", raw.get("namespace", namespaces[0]), namespaces)
    values = tuple(
        r.inside(w, v, "file") for w, v in r.items("deploy.helm.values", raw.get("values"))
    )
    return HelmDeploy(chart=chart, release=release, namespace=namespace, values=values)


def _owned(r: _SystemReader, where: str, value: Any, namespaces: tuple[str, ...]) -> str:
    namespace = r.label(where, value)
    if namespace not in namespaces:
        raise r.fail(
            where,
            f"namespace {_shown(namespace)} is not one of the system's namespaces "
            f"({', '.join(namespaces)})",
        )
    return namespace


def _images(r: _SystemReader, value: Any) -> tuple[ImageBuild, ...]:
    images: list[ImageBuild] = []
    for where, item in r.items("images", value):
        raw = r.mapping(where, item, IMAGE_FIELDS)
        for required in ("tag", "context"):
            if required not in raw:
                raise r.fail(f"{where}.{required}", "is required")
        tag = _image_tag(r, f"{where}.tag", raw["tag"])
        if any(i.tag == tag for i in images):
            raise r.fail(f"{where}.tag", f"{_shown(tag)} is built twice")
        context = r.inside(f"{where}.context", raw["context"], "folder")
        if "dockerfile" in raw:
            # Relative to the context, as docker build -f takes it; still inside the folder.
            dockerfile = r.inside(f"{where}.dockerfile", raw["dockerfile"], "file", base=context)
        else:
            dockerfile = context / "Dockerfile"
            if not dockerfile.is_file():
                raise r.fail(
                    f"{where}.context",
                    f"{_shown(raw['context'])} holds no Dockerfile (name another with dockerfile)",
                )
        images.append(ImageBuild(tag=tag, context=context, dockerfile=dockerfile))
    return tuple(images)


def _image_tag(r: _SystemReader, where: str, value: Any) -> str:
    tag = r.text(where, value)
    last = tag.rsplit("/", 1)[-1]
    if "@" in tag or ":" not in last:
        raise r.fail(
            where,
            f"{_shown(tag)} must end in a tag (as in example/kv:1): the image is loaded onto the "
            "nodes under exactly that name",
        )
    if last.endswith(":latest"):
        raise r.fail(
            where,
            f"{_shown(tag)}: Kubernetes pulls ':latest' images from their registry on every start, "
            "and a built image is in none; use another tag",
        )
    if not IMAGE.fullmatch(tag):
        raise r.fail(where, f"{_shown(tag)} is not an image name (as in example/kv:1)")
    return tag


def _wait(r: _SystemReader, value: Any, namespaces: tuple[str, ...]) -> WaitSpec:
    if value is None:
        return WaitSpec()
    raw = r.mapping("wait", value, WAIT_FIELDS)
    timeout = r.positive("wait.timeout", raw.get("timeout", DEFAULT_WAIT_S))
    if raw.get("workloads") is None:
        return WaitSpec(timeout=timeout)
    items = r.items("wait.workloads", raw["workloads"])
    if not items:
        raise r.fail(
            "wait.workloads",
            "must name at least one workload (leave it out to wait for every Deployment, "
            "StatefulSet and DaemonSet)",
        )
    workloads: list[Workload] = []
    for where, item in items:
        workload = _workload(r, where, item, namespaces)
        if workload in workloads:
            raise r.fail(where, f"{_shown(item)} is given twice")
        workloads.append(workload)
    return WaitSpec(timeout=timeout, workloads=tuple(workloads))


def _workload(r: _SystemReader, where: str, value: Any, namespaces: tuple[str, ...]) -> Workload:
    text = r.text(where, value)
    parts = text.split("/")
    if len(parts) == 2 and len(namespaces) == 1:
        parts = [namespaces[0], *parts]
    if len(parts) != 3:
        form = "kind/name or namespace/kind/name" if len(namespaces) == 1 else "namespace/kind/name"
        also = "" if len(namespaces) == 1 else " (the system owns several namespaces)"
        raise r.fail(where, f"{_shown(text)} must be {form}{also}")
    namespace, kind, name = parts
    namespace = _owned(r, where, namespace, namespaces)
    canonical = WORKLOAD_KINDS.get(kind.lower())
    if canonical is None:
        raise r.fail(where, f"{_shown(kind)} is not deployment, statefulset or daemonset")
    if not SUBDOMAIN.fullmatch(name):
        raise r.fail(where, f"{_shown(name)} is not a Kubernetes object name")
    return Workload(namespace=namespace, kind=canonical, name=name)


def _publish(r: _SystemReader, value: Any, namespaces: tuple[str, ...]) -> tuple[Published, ...]:
    published: list[Published] = []
    for where, item in r.items("publish", value):
        raw = r.mapping(where, item, PUBLISH_FIELDS)
        for required in ("name", "service", "node_port"):
            if required not in raw:
                raise r.fail(f"{where}.{required}", "is required")
        name = r.label(f"{where}.name", raw["name"])
        if any(p.name == name for p in published):
            raise r.fail(f"{where}.name", f"{_shown(name)} is published twice")
        service = r.text(f"{where}.service", raw["service"])
        namespace, _, service_name = service.partition("/")
        if not service_name or "/" in service_name:
            raise r.fail(f"{where}.service", f"{_shown(service)} must be namespace/name")
        _owned(r, f"{where}.service", namespace, namespaces)
        r.label(f"{where}.service", service_name, pattern=SERVICE)
        low, high = NODE_PORTS
        node_port = r.integer(f"{where}.node_port", raw["node_port"], low=low, high=high)
        for other in published:
            if other.node_port == node_port:
                raise r.fail(
                    f"{where}.node_port",
                    f"{node_port} is already published as {_shown(other.name)}",
                )
        published.append(Published(name, namespace, service_name, node_port))
    return tuple(published)


def _load(r: _SystemReader, value: Any, publish: tuple[Published, ...]) -> LoadSpec:
    raw = r.mapping("load", value, LOAD_FIELDS)
    given = sorted({"locustfile", "profile"} & raw.keys())
    if len(given) != 1:
        raise r.fail(
            "load",
            "needs exactly one of locustfile (the system's own) and profile (one of "
            f"chaoskit's loadprofiles/){' (given both)' if given else ''}",
        )
    locustfile = profile = None
    if "locustfile" in raw:
        locustfile = r.inside("load.locustfile", raw["locustfile"], "file")
        if locustfile.suffix != ".py":
            raise r.fail("load.locustfile", f"{_shown(raw['locustfile'])} is not a Python file")
    else:
        profile = r.text("load.profile", raw["profile"])
        if not PROFILE.fullmatch(profile):
            raise r.fail(
                "load.profile",
                f"{_shown(profile)} is not a profile name (as in flash_sale); a Locust file of the "
                "system's own is load.locustfile",
            )
    if "target" not in raw:
        raise r.fail("load.target", "is required")
    target = r.text("load.target", raw["target"])
    names = [p.name for p in publish]
    if target not in names:
        raise r.fail(
            "load.target",
            f"{_shown(target)} is not a publish name (published: {', '.join(names) or 'none'})",
        )
    users = raw.get("users")
    spawn_rate = raw.get("spawn_rate")
    return LoadSpec(
        target=target,
        locustfile=locustfile,
        profile=profile,
        users=r.integer("load.users", users, low=1, high=MAX_USERS) if users is not None else None,
        spawn_rate=r.positive("load.spawn_rate", spawn_rate) if spawn_rate is not None else None,
    )


def _invariants(r: _SystemReader, value: Any) -> tuple[Invariant, ...]:
    invariants: list[Invariant] = []
    for where, item in r.items("invariants", value):
        raw = r.mapping(where, item, INVARIANT_FIELDS)
        if "name" not in raw:
            raise r.fail(f"{where}.name", "is required")
        name = r.label(f"{where}.name", raw["name"])
        if any(i.name == name for i in invariants):
            raise r.fail(f"{where}.name", f"{_shown(name)} is given twice")
        given = sorted({"command", "python"} & raw.keys())
        if len(given) != 1:
            raise r.fail(
                where,
                "needs exactly one of command (a program) and python (module:function)"
                + (" (given both)" if given else ""),
            )
        check: CommandCheck | PythonCheck
        if "command" in raw:
            check = _command(r, f"{where}.command", raw["command"])
        else:
            check = _python(r, f"{where}.python", raw["python"])
        timeout = r.positive(f"{where}.timeout", raw.get("timeout", DEFAULT_CHECK_TIMEOUT_S))
        invariants.append(Invariant(name=name, check=check, timeout=timeout))
    return tuple(invariants)


def _command(r: _SystemReader, where: str, value: Any) -> CommandCheck:
    if isinstance(value, str):
        raise r.fail(
            where, "must be a list of arguments (as in [python3, checks/x.py]): no shell runs it"
        )
    items = r.items(where, value)
    if not items:
        raise r.fail(where, "must name a program")
    argv = tuple(r.text(w, v) for w, v in items)
    program = argv[0]
    # A program of the folder (a path with a slash) must be there; a bare name is looked up
    # on PATH when the check runs, from the system folder.
    if "/" in program and not Path(program).is_absolute():
        path = r.inside(f"{where}[0]", program, "file")
        if not os.access(path, os.X_OK):
            raise r.fail(
                f"{where}[0]",
                f"{_shown(program)} is not executable (chmod +x it, or name its interpreter first)",
            )
    return CommandCheck(argv)


def _python(r: _SystemReader, where: str, value: Any) -> PythonCheck:
    text = r.text(where, value)
    match = PYTHON_REF.fullmatch(text)
    if match is None:
        raise r.fail(where, f"{_shown(text)} must be module:function (as in checks.balances:check)")
    module, function = match.groups()
    relative = Path(*module.split("."))
    for candidate in (relative.with_suffix(".py"), relative / "__init__.py"):
        with r.reading(where, text):
            found = (r.folder / candidate).is_file()
        if found:
            return PythonCheck(module, function, r.inside(where, str(candidate), "file"))
    raise r.fail(
        where,
        f"no module {_shown(module)} in the system folder ({relative.with_suffix('.py')} or "
        f"{relative / '__init__.py'})",
    )
