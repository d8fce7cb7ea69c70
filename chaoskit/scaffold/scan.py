"""What ``chaoskit init`` finds in a repository: what deploys it, its images, namespaces,
NodePort Services, a Locust file and a workload to delete Pods of.

What deploys it: the kustomization no other one uses (an overlay rather than its base),
else a Helm chart (``Chart.yaml``), else the first folder holding Kubernetes manifests;
the shallowest first, then in name order. Hidden folders and vendored ones are left out.
The objects that kustomization lists (or that folder holds) give the namespaces, the
NodePort Services and the workload; Dockerfiles anywhere give the images.

Only reads: YAML that does not parse (a Helm template, a file of another tool) is passed
over, never an error. Everything found is relative to the system folder and inside it, and
every name is one the system file accepts (``chaoskit.system.spec``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from chaoskit.documents import PLACEHOLDER
from chaoskit.faults.selector import selector_problem
from chaoskit.system.spec import (
    IMAGE,
    KUSTOMIZATION_FILES,
    LABEL,
    MANIFEST_SUFFIXES,
    NODE_PORTS,
    SERVICE,
)

SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "vendor"})
"""Besides hidden folders (``.git``, ``.venv``, ...): what holds other people's files."""
MAX_FOLDERS = 5000
"""A repository larger than this is looked at in part (the shallowest folders first)."""
MAX_MANIFEST_BYTES = 1 << 20
MAX_KUSTOMIZE_DEPTH = 16
OWN_FILES = frozenset({"chaoskit-system.yaml", "chaoskit-suite.yaml", "chaoskit-kind.yaml"})
"""What ``chaoskit init`` writes: never taken for the repository's manifests."""
NOT_MANIFESTS = ("kind.x-k8s.io/", "kustomize.config.k8s.io/")
"""API groups of files that configure tools, not objects in a cluster."""
IMAGE_TAG = "dev"
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
VICTIM_KINDS = ("Deployment", "StatefulSet")
LOADED_POLICIES = frozenset({"Never", "IfNotPresent"})
"""Pull policies of an image loaded onto the nodes (``kind load``), not pulled each start."""

DeployKind = Literal["kustomize", "helm", "manifests"]
Obj = dict[str, Any]


@dataclass(frozen=True)
class FoundImage:
    tag: str
    context: str
    """Relative to the system folder (``.`` for the folder itself)."""
    dockerfile: str
    from_manifests: bool
    """Whether the manifests use this name (else ``tag`` holds :data:`PLACEHOLDER`)."""


@dataclass(frozen=True)
class FoundPort:
    name: str
    namespace: str
    service: str
    node_port: int


@dataclass(frozen=True)
class Victim:
    """A workload for pod-kill: its namespace, ``kind/name`` and its Pods' selector."""

    namespace: str
    workload: str
    selector: str


@dataclass(frozen=True)
class Findings:
    folder: Path
    """The system folder, resolved."""
    name: str
    deploy: tuple[DeployKind, str] | None
    """How it deploys and the folder (relative to ``folder``), or None if nothing does."""
    namespaces: tuple[str, ...]
    namespaces_found: bool
    """False when the manifests name none: ``namespaces`` is then :data:`PLACEHOLDER` (the
    objects would land in kubectl's current namespace), or the system's name for a Helm
    chart (its release's namespace)."""
    images: tuple[FoundImage, ...] = ()
    publish: tuple[FoundPort, ...] = ()
    locustfile: str | None = None
    victim: Victim | None = None
    notes: tuple[str, ...] = ()
    """What was found but not used, and why."""

    def lines(self) -> list[str]:
        """One line per thing found, for ``chaoskit init`` to print (``notes`` apart)."""
        lines = []
        if self.deploy is not None:
            kind, where = self.deploy
            noun = {"kustomize": "kustomization", "helm": "Helm chart", "manifests": "manifests"}
            lines.append(f"{noun[kind]} in {_shown(where)} -> deploy.{kind}")
        origin = (
            "from the manifests"
            if self.namespaces_found
            else "none found: the system's name"
            if self.deploy is not None and self.deploy[0] == "helm"
            else "none found: a placeholder"
        )
        lines.append(f"namespaces: {', '.join(self.namespaces)} ({origin})")
        for image in self.images:
            named = (
                "the name the manifests use" if image.from_manifests else "a placeholder to name"
            )
            path = _shown(image.context) + image.dockerfile
            lines.append(f"{path} -> image {image.tag} ({named})")
        for port in self.publish:
            lines.append(
                f"NodePort Service {port.namespace}/{port.service} on {port.node_port} "
                f"-> publish {port.name}"
            )
        if self.locustfile is not None:
            lines.append(f"{self.locustfile} -> load.locustfile")
        if self.victim is not None:
            lines.append(
                f"{self.victim.namespace}/{self.victim.workload} -> pod-kill's victims "
                f"({self.victim.selector})"
            )
        return lines


def scan(folder: Path, name: str) -> Findings:
    """What the system folder ``folder`` holds; ``name`` is the system's name (a label)."""
    folder = folder.resolve()
    listing = _listing(folder)
    deploy, objects, own_namespace, notes = _deploy(folder, listing)
    namespaces = _namespaces(objects, own_namespace)
    found_namespaces = bool(namespaces)
    if not namespaces:
        namespaces = [name]
        if deploy is not None and deploy[0] != "helm":
            namespaces = [PLACEHOLDER]
            notes.append(
                f"the manifests set no namespace: kubectl would put them in its current one; "
                f"give them one (metadata.namespace, or kustomize's namespace:) and put it "
                f"where {PLACEHOLDER} stands"
            )
    default_namespace = own_namespace or namespaces[0]
    images, image_notes = _images(folder, listing, objects, name)
    publish, port_notes = _publish(objects, default_namespace, namespaces)
    locustfiles = [d / "locustfile.py" for d, files in listing if "locustfile.py" in files]
    victim = _victim(objects, default_namespace, namespaces)
    if victim is None and deploy is not None:
        notes.append(
            "no Deployment or StatefulSet with matchLabels found: pod-kill's selector in the "
            "suite is a placeholder to adapt"
        )
    return Findings(
        folder=folder,
        name=name,
        deploy=deploy,
        namespaces=tuple(namespaces),
        namespaces_found=found_namespaces,
        images=images,
        publish=publish,
        locustfile=_relative(folder, locustfiles[0]) if locustfiles else None,
        victim=victim,
        notes=tuple(notes + image_notes + port_notes),
    )


def _deploy(
    folder: Path, listing: list[tuple[Path, frozenset[str]]]
) -> tuple[tuple[DeployKind, str] | None, list[Obj], str | None, list[str]]:
    """What deploys the system, the objects it applies, the namespace its kustomization
    sets, and notes."""
    kustomizations = [d for d, files in listing if any(k in files for k in KUSTOMIZATION_FILES)]
    if kustomizations:
        where = _top_kustomization(folder, kustomizations)
        objects = _kustomize_objects(folder, where, set(), 0)
        return ("kustomize", _relative(folder, where)), objects, _kustomize_namespace(where), []
    charts = [d for d, files in listing if "Chart.yaml" in files]
    if charts:
        note = (
            "the chart's templates are not rendered: its namespaces, Services and workloads "
            "are not known; adapt namespaces, publish and pod-kill's selector"
        )
        return ("helm", _relative(folder, charts[0])), [], None, [note]
    for where, files in listing:
        objects = [o for f in sorted(files - OWN_FILES) for o in _objects(where / f)]
        if objects:
            return ("manifests", _relative(folder, where)), objects, None, []
    return None, [], None, []


def label(text: str, fallback: str = "app") -> str:
    """``text`` made a Kubernetes DNS label (lowercase letters, digits, ``-``)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].rstrip("-")
    return cleaned or fallback


# --------------------------------------------------------------------------- files


def _listing(folder: Path) -> list[tuple[Path, frozenset[str]]]:
    """Every folder under ``folder`` (hidden and vendored ones left out) with the names of
    its regular files, the shallowest first, then in name order."""
    listing: list[tuple[Path, frozenset[str]]] = []
    for current, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d not in SKIPPED_FOLDERS
        )
        here = Path(current)
        regular = frozenset(f for f in files if not (here / f).is_symlink())
        listing.append((here, regular))
        if len(listing) >= MAX_FOLDERS:
            break
    listing.sort(key=lambda item: (len(item[0].relative_to(folder).parts), item[0].as_posix()))
    return listing


def _relative(folder: Path, path: Path) -> str:
    """``path`` relative to ``folder`` (``.`` for the folder itself), with ``/``."""
    return path.relative_to(folder).as_posix()


def _shown(relative: str) -> str:
    """A folder as the lines show it: ``k8s/``, or ``./`` for the system folder itself."""
    return "./" if relative == "." else f"{relative}/"


def _documents(path: Path) -> list[Any]:
    """The YAML (or JSON) documents of ``path``; none when it cannot be read or parsed."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return []
        return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, yaml.YAMLError):
        return []


def _objects(path: Path) -> list[Obj]:
    """The Kubernetes objects of the manifest ``path`` (a ``List``'s items included)."""
    if path.suffix not in MANIFEST_SUFFIXES:
        return []
    objects: list[Obj] = []
    for doc in _documents(path):
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        objects.extend(o for o in items or [] if _is_object(o))
    return objects


def _is_object(doc: object) -> bool:
    if not isinstance(doc, dict):
        return False
    api, kind = doc.get("apiVersion"), doc.get("kind")
    return (
        isinstance(api, str)
        and isinstance(kind, str)
        and not api.startswith(NOT_MANIFESTS)
        and isinstance(doc.get("metadata"), dict)
    )


def _kustomization(folder: Path) -> Obj:
    for name in KUSTOMIZATION_FILES:
        docs = _documents(folder / name) if (folder / name).is_file() else []
        if docs and isinstance(docs[0], dict):
            return docs[0]
    return {}


def _kustomize_namespace(folder: Path) -> str | None:
    namespace = _kustomization(folder).get("namespace")
    return namespace if isinstance(namespace, str) and LABEL.fullmatch(namespace) else None


def _kustomize_objects(root: Path, folder: Path, seen: set[Path], depth: int) -> list[Obj]:
    """The objects a kustomization lists in ``resources`` (its own files and the
    kustomizations of its folders, inside ``root``), with its namespace and name prefix
    and suffix applied. Remote resources are passed over."""
    if folder in seen or depth > MAX_KUSTOMIZE_DEPTH:
        return []
    seen.add(folder)
    doc = _kustomization(folder)
    entries = [*_strings(doc.get("resources")), *_strings(doc.get("bases"))]
    objects: list[Obj] = []
    for entry in entries:
        if "://" in entry or entry.startswith("git@"):
            continue
        try:
            path = (folder / entry).resolve()
        except (OSError, RuntimeError):  # a symbolic link loop
            continue
        if not path.is_relative_to(root):
            continue
        if path.is_dir():
            objects.extend(_kustomize_objects(root, path, seen, depth + 1))
        elif path.is_file():
            objects.extend(_objects(path))
    namespace = _kustomize_namespace(folder)
    prefix, suffix = doc.get("namePrefix"), doc.get("nameSuffix")
    for obj in objects:
        metadata = obj["metadata"]
        if obj.get("kind") == "Namespace":
            continue
        if namespace is not None:
            metadata["namespace"] = namespace
        name = metadata.get("name")
        if isinstance(name, str):
            prefixed = f"{prefix if isinstance(prefix, str) else ''}{name}"
            metadata["name"] = f"{prefixed}{suffix if isinstance(suffix, str) else ''}"
    return objects


def _top_kustomization(root: Path, found: list[Path]) -> Path:
    """The first kustomization no other one uses (an overlay, not its base)."""
    used: set[Path] = set()
    for folder in found:
        doc = _kustomization(folder)
        for entry in [*_strings(doc.get("resources")), *_strings(doc.get("bases"))]:
            try:
                used.add((folder / entry).resolve())
            except (OSError, RuntimeError):
                continue
    return next((f for f in found if f.resolve() not in used), found[0])


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# --------------------------------------------------------------------------- objects


def _text(obj: Obj, *keys: str) -> str | None:
    """The string at ``obj[k1][k2]...``, or None."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _namespaces(objects: list[Obj], own: str | None) -> list[str]:
    """The namespaces the objects live in or create, in the order met."""
    found: list[str] = [own] if own else []
    for obj in objects:
        names = [_text(obj, "metadata", "namespace")]
        if obj.get("kind") == "Namespace":
            names.append(_text(obj, "metadata", "name"))
        for name in names:
            if name and LABEL.fullmatch(name) and name not in found and not _kubernetes(name):
                found.append(name)
    return found


def _kubernetes(namespace: str) -> bool:
    """Kubernetes' own namespaces (``kube-system``, ...): never the system's."""
    return namespace.startswith("kube-")


def _namespace_of(obj: Obj, default: str, namespaces: list[str]) -> str:
    """The object's namespace when it is one of the system's, else ``default``."""
    namespace = _text(obj, "metadata", "namespace")
    return namespace if namespace in namespaces else default


def _pod_spec(obj: Obj) -> Obj | None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    kind = obj.get("kind")
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        job = spec.get("jobTemplate")
        spec = job.get("spec") if isinstance(job, dict) else None
        if not isinstance(spec, dict):
            return None
    elif kind not in POD_TEMPLATE_KINDS:
        return None
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else None


def _container_images(objects: list[Obj]) -> dict[str, set[str | None]]:
    """Each image the objects' containers run (in the order met), with the
    ``imagePullPolicy`` values its containers give (None where one gives none)."""
    images: dict[str, set[str | None]] = {}
    for obj in objects:
        pod = _pod_spec(obj) or {}
        for key in ("initContainers", "containers"):
            containers = pod.get(key)
            for container in containers if isinstance(containers, list) else []:
                if not isinstance(container, dict):
                    continue
                image, policy = container.get("image"), container.get("imagePullPolicy")
                if isinstance(image, str):
                    images.setdefault(image, set()).add(policy if isinstance(policy, str) else None)
    return images


def _repository_name(image: str) -> str:
    """The last path part of an image's repository: ``api`` of ``example/api:1``."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return repository.split(":", 1)[0]


def _usable_tag(image: str) -> bool:
    """Whether a built image can be loaded under ``image`` (a tag, not ``latest``)."""
    last = image.rsplit("/", 1)[-1]
    return (
        "@" not in image
        and ":" in last
        and not last.endswith(":latest")
        and IMAGE.fullmatch(image) is not None
    )


def _images(
    folder: Path, listing: list[tuple[Path, frozenset[str]]], objects: list[Obj], name: str
) -> tuple[tuple[FoundImage, ...], list[str]]:
    """An image per Dockerfile, named as the manifests' one image of the same repository
    name (``api`` of ``acme/api:1``) when it has a tag; else, when one Dockerfile and one
    image the manifests load onto the nodes (``imagePullPolicy`` Never or IfNotPresent) are
    left, that image; else a :data:`PLACEHOLDER` name, which the system file refuses until
    it is replaced."""
    used = _container_images(objects)
    found: list[tuple[str, str, str | None]] = []  # (context, component, image)
    notes: list[str] = []
    for where, files in listing:
        if "Dockerfile" not in files:
            continue
        context = _relative(folder, where)
        component = label(where.name if context != "." else name, fallback=name)
        matching = [i for i in used if _repository_name(i) == component]
        image = matching[0] if len(matching) == 1 and _usable_tag(matching[0]) else None
        if len(matching) == 1 and image is None:
            notes.append(
                f"the manifests run {matching[0]!r}, which a built image cannot be loaded as "
                f"(no tag, or :latest): give it a tag there, and put it where {PLACEHOLDER} "
                "stands"
            )
        found.append((context, component, image))
    taken = {image for _, _, image in found if image is not None}
    unnamed = [i for i, (_, _, image) in enumerate(found) if image is None]
    loaded = [
        i
        for i, policies in used.items()
        if i not in taken and _usable_tag(i) and policies <= LOADED_POLICIES
    ]
    if len(unnamed) == 1 and len(loaded) == 1:
        context, component, _ = found[unnamed[0]]
        found[unnamed[0]] = (context, component, loaded[0])
    images: list[FoundImage] = []
    for context, component, image in found:
        if image is not None and all(i.tag != image for i in images):
            images.append(FoundImage(image, context, "Dockerfile", from_manifests=True))
            continue
        tag, count = f"{PLACEHOLDER}/{component}:{IMAGE_TAG}", 2
        while any(i.tag == tag for i in images):
            tag, count = f"{PLACEHOLDER}/{component}-{count}:{IMAGE_TAG}", count + 1
        images.append(FoundImage(tag, context, "Dockerfile", from_manifests=False))
    return tuple(images), notes


def _publish(
    objects: list[Obj], default: str, namespaces: list[str]
) -> tuple[tuple[FoundPort, ...], list[str]]:
    """A ``publish`` entry per port of a NodePort Service with a fixed ``nodePort``."""
    published: list[FoundPort] = []
    notes: list[str] = []
    low, high = NODE_PORTS
    for obj in objects:
        service = _text(obj, "metadata", "name")
        spec = obj.get("spec")
        if obj.get("kind") != "Service" or not isinstance(spec, dict) or service is None:
            continue
        if spec.get("type") != "NodePort" or not SERVICE.fullmatch(service):
            continue
        namespace = _namespace_of(obj, default, namespaces)
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        for port in ports:
            node_port = port.get("nodePort")
            if isinstance(node_port, bool) or not isinstance(node_port, int):
                notes.append(
                    f"NodePort Service {namespace}/{service} has no fixed nodePort: not "
                    f"published (give it one in {low}-{high} to reach it from the host)"
                )
                continue
            if not low <= node_port <= high or any(p.node_port == node_port for p in published):
                continue
            suffix = str(port.get("name") or port.get("port") or node_port)
            name = label(service if len(ports) == 1 else f"{service}-{suffix}")
            while any(p.name == name for p in published):
                name = label(f"{name[:57]}-{node_port}")
            published.append(FoundPort(name, namespace, service, node_port))
    return tuple(published), notes


def _victim(objects: list[Obj], default: str, namespaces: list[str]) -> Victim | None:
    """The first Deployment (else StatefulSet) whose Pods a label selector picks."""
    for kind in VICTIM_KINDS:
        for obj in objects:
            name = _text(obj, "metadata", "name")
            spec = obj.get("spec")
            if obj.get("kind") != kind or name is None or not isinstance(spec, dict):
                continue
            chosen = spec.get("selector")
            labels = chosen.get("matchLabels") if isinstance(chosen, dict) else None
            if not isinstance(labels, dict) or not labels:
                continue
            if not all(isinstance(v, str) for v in labels.values()):
                continue
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            if not selector_problem(selector):
                namespace = _namespace_of(obj, default, namespaces)
                return Victim(namespace, f"{kind.lower()}/{name}", selector)
    return None
