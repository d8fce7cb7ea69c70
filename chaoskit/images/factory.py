"""The image factory: everything a kind cluster needs, built here from package registries.

Where no container registry answers (this project's own machines, air-gapped runners),
chaoskit builds kind, crictl, Kubernetes, etcd, CoreDNS, flannel and local-path-provisioner
from the Go module proxy, a Debian root filesystem with debootstrap, one image per
component under exactly the names kubeadm and kind ask for, and a node image with all of
them preloaded into its containerd. Where a registry answers, kind's own node image is
pulled instead. Every step is cached by a key of its inputs (see ``steps``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from chaoskit import versions
from chaoskit.engine.docker import RUNTIME_NAME, ensure_build_tools, runtime_wrapper_script
from chaoskit.errors import BuildFailed, InvalidInput
from chaoskit.images import catalog
from chaoskit.images.docker import build_image, image_exists, image_key, stage_context
from chaoskit.images.golang import GoProgram, build_program, go_env
from chaoskit.images.steps import (
    BuildEnv,
    Plan,
    Step,
    build_lock,
    hash_tree,
    is_done,
    run_step,
)
from chaoskit.proc import capture, run_logged, run_pipe
from chaoskit.progress import Progress
from chaoskit.settings import Settings

logger = logging.getLogger(__name__)

Source = Literal["auto", "local", "upstream"]
REGISTRY = "registry.k8s.io"

DEBIAN_BASE = f"chaoskit/debian-base:{versions.DEBIAN_SUITE}"
NODE_BASE = f"chaoskit/node-base:{versions.DEBIAN_SUITE}"
NETBASE = f"chaoskit/netbase:{versions.DEBIAN_SUITE}"
NODE_UNLOADED = f"chaoskit/node-unloaded:{versions.KUBERNETES}"
NODE_IMAGE = f"chaoskit/node:{versions.KUBERNETES}"
PAUSE_IMAGE = f"{REGISTRY}/pause:{versions.PAUSE}"
FLANNEL_IMAGE = f"chaoskit/flannel:{versions.FLANNEL}"
PROBE_IMAGE = "chaoskit/probe:1"
"""The test workload; loaded into clusters with ``kind load`` when a test needs it."""

PULL_TIMEOUT_S = 1800.0
"""``docker pull`` of kind's node image (~1 GB): slow links take minutes, never an hour."""
PRELOAD_TIMEOUT_S = 1800.0
"""``docker save | ctr import`` of the component images into the node image (~1 GB)."""

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PRELOADED_COMPONENTS = (
    *CONTROL_PLANE,
    "kube-proxy",
    "etcd",
    "coredns",
    "pause",
    "flannel",
    "local-path-provisioner",
    "local-path-helper",
)
"""Build steps (``image:<name>``) whose images go into the node image's containerd."""


@dataclass(frozen=True)
class ImageSet:
    """What a cluster is created from."""

    node: str
    source: Literal["local", "upstream"]


def parse_source(value: str) -> Source:
    if value not in ("auto", "local", "upstream"):
        raise InvalidInput(f"--source {value!r}: must be auto, local or upstream")
    return value  # type: ignore[return-value]


def contexts_dir() -> Path:
    return Path(str(resources.files("chaoskit.images") / "contexts"))


def build_env(settings: Settings) -> BuildEnv:
    return BuildEnv(cache_dir=settings.cache_dir, contexts_dir=contexts_dir())


def kind_binary(settings: Settings) -> Path:
    return catalog.KIND.out_dir(build_env(settings)) / "kind"


# ---------------------------------------------------------------------------- steps


def _go_step(program: GoProgram) -> Step:
    def build(env: BuildEnv, log: Path, key: str) -> None:
        build_program(env, program, log)

    def present(env: BuildEnv, key: str) -> bool:
        return all(p.is_file() for p in program.outputs(env))

    return Step(
        name=f"go:{program.name}",
        inputs=(program.recipe(),),
        build=build,
        present=present,
        description=f"{program.name} {program.version} (Go)",
    )


def _bin(program: GoProgram, name: str) -> Callable[[BuildEnv], Path]:
    return lambda env: program.out_dir(env) / name


def _runtime_wrapper() -> Path:
    return Path(str(resources.files("chaoskit.engine") / "files" / RUNTIME_NAME))


def _context_file(relative: str) -> Callable[[BuildEnv], Path]:
    return lambda env: env.contexts_dir / relative


def _image_present(image: str) -> Callable[[BuildEnv, str], bool]:
    return lambda env, key: image_key(image) == key


def _rootfs_step(name: str, image: str, packages: str, description: str) -> Step:
    """A Debian root filesystem from debootstrap, imported as an image."""

    def build(env: BuildEnv, log: Path, key: str) -> None:
        ensure_build_tools(env.log_dir)
        work = env.work_dir / name.replace(":", "-")
        work.mkdir(parents=True, exist_ok=True)
        tar = work / "rootfs.tar"
        script = env.contexts_dir / "base" / "build-rootfs.sh"
        run_logged(
            ["sh", script, versions.DEBIAN_SUITE, work, tar],
            log=log,
            what=f"debootstrap of {image}",
            error=BuildFailed,
            env={"PACKAGES_FILE": str(env.contexts_dir / "base" / packages)},
            timeout=1800,
        )
        # docker import cannot set STOPSIGNAL and labels need a build: import under a
        # temporary name, then a two-line Dockerfile adds the key label.
        run_logged(
            ["docker", "import", tar, f"{image}-import"],
            log=log,
            what=f"importing {image}",
            error=BuildFailed,
            timeout=1800,
        )
        ctx = work / "ctx"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(f'FROM {image}-import\nCMD ["/bin/bash"]\n')
        build_image(ctx, [image], key=key, log=log)
        capture(["docker", "image", "rm", f"{image}-import"])
        tar.unlink(missing_ok=True)

    return Step(
        name=name,
        inputs=(versions.DEBIAN_SUITE, packages),
        build=build,
        present=_image_present(image),
        context_dirs=("base",),
        description=description,
    )


def _docker_step(
    name: str,
    image: str,
    context: str,
    *,
    needs: tuple[str, ...] = (),
    binaries: dict[str, Callable[[BuildEnv], Path]] | None = None,
    target: str | None = None,
    args: dict[str, str] | None = None,
    also_hash: tuple[str, ...] = (),
    extra_inputs: tuple[str, ...] = (),
    description: str = "",
) -> Step:
    """An image from one of the build contexts, with binaries from the cache added."""

    def build(env: BuildEnv, log: Path, key: str) -> None:
        extra = {dest: source(env) for dest, source in (binaries or {}).items()}
        staged = stage_context(
            env.contexts_dir / context, env.work_dir / "contexts" / name.replace(":", "-"), extra
        )
        fetch_dependencies(env, staged, log)
        build_image(staged, [image], key=key, log=log, build_args=args, target=target)

    return Step(
        name=name,
        inputs=(image, target or "", repr(sorted((args or {}).items())), *extra_inputs),
        build=build,
        present=_image_present(image),
        needs=needs,
        context_dirs=(context, *also_hash),
        description=description or image,
    )


def fetch_dependencies(env: BuildEnv, staged: Path, log: Path) -> None:
    """Fills a staged context from package registries, where its files ask for it.

    ``requirements.txt`` -> ``wheels/``: CPython 3.11 manylinux wheels, downloaded on the host
    (pip inside ``docker build`` cannot verify the registry's TLS here) and installed in the
    image with ``pip install --no-index --find-links wheels``.
    ``pom.xml`` -> ``libs/``: the runtime jars of a Maven project, from Maven Central.
    """
    if (staged / "requirements.txt").is_file():
        run_logged(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--platform",
                "manylinux2014_x86_64",
                "--platform",
                "manylinux_2_17_x86_64",
                "--platform",
                "manylinux_2_28_x86_64",
                "--platform",
                "any",
                "-r",
                staged / "requirements.txt",
                "-d",
                staged / "wheels",
            ],
            log=log,
            what="downloading Python wheels",
            error=BuildFailed,
            env={"PIP_CACHE_DIR": str(env.cache_dir / "pip")},
            timeout=1800,
        )
    if (staged / "pom.xml").is_file():
        run_logged(
            [
                "mvn",
                "--batch-mode",
                "--quiet",
                "-f",
                staged / "pom.xml",
                f"-Dmaven.repo.local={env.cache_dir / 'm2'}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staged / 'libs'}",
            ],
            log=log,
            what="downloading Maven dependencies",
            error=BuildFailed,
            timeout=1800,
        )


def _pause_step() -> Step:
    def build(env: BuildEnv, log: Path, key: str) -> None:
        staged = stage_context(env.contexts_dir / "pause", env.work_dir / "contexts" / "pause")
        run_logged(
            ["gcc", "-Os", "-static", "-o", staged / "pause", staged / "pause.c"],
            log=log,
            what="compiling pause",
            error=BuildFailed,
        )
        run_logged(["strip", staged / "pause"], log=log, what="strip pause", error=BuildFailed)
        build_image(staged, [PAUSE_IMAGE], key=key, log=log)

    return Step(
        name="image:pause",
        inputs=(PAUSE_IMAGE,),
        build=build,
        present=_image_present(PAUSE_IMAGE),
        context_dirs=("pause",),
        description=PAUSE_IMAGE,
    )


def _probe_step() -> Step:
    """chaoskit's own test workload: a static Go HTTP server and client (contexts/probe)."""

    def build(env: BuildEnv, log: Path, key: str) -> None:
        staged = stage_context(env.contexts_dir / "probe", env.work_dir / "contexts" / "probe")
        run_logged(
            ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "probe", "."],
            log=log,
            what="building the probe workload",
            error=BuildFailed,
            env=go_env(env),
            cwd=staged,
        )
        build_image(staged, [PROBE_IMAGE], key=key, log=log)

    return Step(
        name="image:probe",
        inputs=(PROBE_IMAGE,),
        build=build,
        present=_image_present(PROBE_IMAGE),
        context_dirs=("probe",),
        description=PROBE_IMAGE,
    )


def component_images() -> list[str]:
    """Every image preloaded into the node image (kubeadm's list, the CNI, storage)."""
    return [
        *(f"{REGISTRY}/{c}:{versions.KUBERNETES}" for c in (*CONTROL_PLANE, "kube-proxy")),
        f"{REGISTRY}/coredns/coredns:{versions.COREDNS}",
        PAUSE_IMAGE,
        f"{REGISTRY}/etcd:{versions.ETCD_IMAGE_TAG}",
        FLANNEL_IMAGE,
        versions.LOCAL_PATH_PROVISIONER_IMAGE,
        versions.LOCAL_PATH_HELPER_IMAGE,
    ]


def _preload_step(needs: tuple[str, ...]) -> Step:
    """The node image with every component image imported into its containerd."""

    def build(env: BuildEnv, log: Path, key: str) -> None:
        preload_images(NODE_UNLOADED, NODE_IMAGE, component_images(), key=key, log=log)

    return Step(
        name="image:node",
        inputs=(NODE_IMAGE, *component_images()),
        build=build,
        present=_image_present(NODE_IMAGE),
        needs=needs,
        description=f"{NODE_IMAGE} (component images preloaded)",
    )


def preload_images(base: str, target: str, images: list[str], *, key: str, log: Path) -> None:
    """Imports ``images`` into the containerd of a container of ``base``; commits ``target``.

    containerd runs as the container's only process (no systemd), the images are streamed
    in with ``docker save | ctr import``, pinned so that kubelet's image GC keeps them.
    """
    name = f"chaoskit-preload-{key}"
    capture(["docker", "rm", "-f", name])
    run_logged(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--privileged",
            "--entrypoint",
            "/usr/bin/containerd",
            base,
        ],
        log=log,
        what="starting containerd in the node image",
        error=BuildFailed,
    )
    try:
        run_logged(
            [
                "docker",
                "exec",
                name,
                "sh",
                "-c",
                "for i in $(seq 60); do ctr version && exit 0; sleep 0.5; done; exit 1",
            ],
            log=log,
            what="waiting for containerd",
            error=BuildFailed,
        )
        run_pipe(
            ["docker", "save", *images],
            [
                "docker",
                "exec",
                "-i",
                name,
                "ctr",
                "-n",
                "k8s.io",
                "images",
                "import",
                "--label=io.cri-containerd.pinned=pinned",
                "--all-platforms",
                "--no-unpack",
                "--digests",
                "-",
            ],
            log=log,
            what="importing component images into the node image (docker save | ctr import)",
            error=BuildFailed,
            timeout=PRELOAD_TIMEOUT_S,
        )
        run_logged(
            ["docker", "exec", name, "ctr", "-n", "k8s.io", "images", "list", "-q"],
            log=log,
            what="listing preloaded images",
            error=BuildFailed,
        )
        # SIGTERM, not the image's stop signal (SIGRTMIN+3 is for systemd): containerd
        # closes its database cleanly before the container is committed.
        run_logged(
            ["docker", "kill", "--signal", "TERM", name],
            log=log,
            what="stopping containerd",
            error=BuildFailed,
        )
        run_logged(["docker", "wait", name], log=log, what="stopping containerd", error=BuildFailed)
        entrypoint = '["/usr/local/bin/entrypoint", "/sbin/init"]'
        run_logged(
            [
                "docker",
                "commit",
                "--change",
                f"ENTRYPOINT {entrypoint}",
                "--change",
                "CMD []",
                "--change",
                f"LABEL io.chaoskit.build-key={key}",
                name,
                target,
            ],
            log=log,
            what=f"committing {target}",
            error=BuildFailed,
        )
    finally:
        capture(["docker", "rm", "-f", name])


def local_steps() -> list[Step]:
    """The whole build graph for a registry-less machine."""
    k8s = catalog.KUBERNETES
    steps: list[Step] = [_go_step(p) for p in catalog.PROGRAMS]
    steps += [
        _rootfs_step("image:debian-base", DEBIAN_BASE, "packages-minimal.txt", DEBIAN_BASE),
        _rootfs_step("image:node-base", NODE_BASE, "packages.txt", NODE_BASE),
        _pause_step(),
        _probe_step(),
    ]
    for component in CONTROL_PLANE:
        steps.append(
            _docker_step(
                f"image:{component}",
                f"{REGISTRY}/{component}:{versions.KUBERNETES}",
                "component",
                needs=("go:kubernetes",),
                binaries={f"bin/{component}": _bin(k8s, component)},
                target="component",
                args={"VERSION": versions.KUBERNETES},
            )
        )
    steps += [
        _docker_step(
            "image:etcd",
            f"{REGISTRY}/etcd:{versions.ETCD_IMAGE_TAG}",
            "component",
            needs=("go:etcd",),
            binaries={f"bin/{b}": _bin(catalog.ETCD, b) for b in ("etcd", "etcdctl", "etcdutl")},
            target="component",
            args={"VERSION": versions.ETCD},
        ),
        _docker_step(
            "image:coredns",
            f"{REGISTRY}/coredns/coredns:{versions.COREDNS}",
            "component",
            needs=("go:coredns",),
            binaries={"bin/coredns": _bin(catalog.COREDNS, "coredns")},
            target="coredns",
            args={"VERSION": versions.COREDNS, "BIN_DIR": "/"},
        ),
        _docker_step(
            "image:netbase",
            NETBASE,
            "kube-proxy",
            needs=("image:debian-base",),
            target="netbase",
            args={"BASE": DEBIAN_BASE},
        ),
        _docker_step(
            "image:kube-proxy",
            f"{REGISTRY}/kube-proxy:{versions.KUBERNETES}",
            "kube-proxy",
            needs=("image:debian-base", "go:kubernetes"),
            binaries={"kube-proxy": _bin(k8s, "kube-proxy")},
            target="kube-proxy",
            args={"BASE": DEBIAN_BASE, "VERSION": versions.KUBERNETES},
        ),
        _docker_step(
            "image:flannel",
            FLANNEL_IMAGE,
            "cni",
            needs=("image:netbase", "go:flannel"),
            binaries={"flanneld": _bin(catalog.FLANNEL, "flanneld")},
            args={"BASE": NETBASE, "VERSION": versions.FLANNEL},
        ),
        _docker_step(
            "image:local-path-provisioner",
            versions.LOCAL_PATH_PROVISIONER_IMAGE,
            "local-path",
            needs=("go:local-path-provisioner",),
            binaries={
                "local-path-provisioner": _bin(
                    catalog.LOCAL_PATH_PROVISIONER, "local-path-provisioner"
                )
            },
            target="provisioner",
            args={"VERSION": versions.LOCAL_PATH_PROVISIONER},
        ),
        _docker_step(
            "image:local-path-helper",
            versions.LOCAL_PATH_HELPER_IMAGE,
            "local-path",
            needs=("image:debian-base",),
            target="helper",
            args={"BASE": DEBIAN_BASE},
        ),
        _docker_step(
            "image:haproxy",
            versions.KIND_HAPROXY_IMAGE,
            "haproxy",
            needs=("image:debian-base",),
            args={"BASE": DEBIAN_BASE},
        ),
        _docker_step(
            "image:node-unloaded",
            NODE_UNLOADED,
            "node",
            needs=("image:node-base", "go:kubernetes", "go:crictl"),
            binaries={
                **{f"bin/{b}": _bin(k8s, b) for b in ("kubelet", "kubeadm", "kubectl")},
                "bin/crictl": _bin(catalog.CRICTL, "crictl"),
                "files/kind/manifests/default-cni.yaml": _context_file("cni/default-cni.yaml"),
                "files/kind/manifests/default-storage.yaml": _context_file(
                    "local-path/default-storage.yaml"
                ),
                f"files/usr/local/bin/{RUNTIME_NAME}": lambda env: _runtime_wrapper(),
            },
            also_hash=("cni", "local-path"),
            extra_inputs=(hashlib.sha256(runtime_wrapper_script()).hexdigest(),),
            args={
                "BASE_IMAGE": NODE_BASE,
                "KUBERNETES_VERSION": versions.KUBERNETES,
                "PAUSE_IMAGE": PAUSE_IMAGE,
            },
        ),
    ]
    preloaded = ("image:node-unloaded", *(f"image:{c}" for c in PRELOADED_COMPONENTS))
    steps.append(_preload_step(preloaded))
    return steps


LOCAL_TARGETS = ("image:node", "image:haproxy", "image:probe", "go:kind", "go:kubectl")
UPSTREAM_TARGETS = ("image:probe", "go:kind", "go:kubectl")


# ---------------------------------------------------------------------------- topology

SHOP_IMAGE = "chaoskit/shop:1"
KAFKA_IMAGE = f"chaoskit/kafka:{versions.KAFKA}"
MARIADB_IMAGE = f"chaoskit/mariadb:{versions.MARIADB}"
GALERA_IMAGE = f"chaoskit/mariadb-galera:{versions.MARIADB}"
TRAEFIK_IMAGE = f"chaoskit/traefik:{versions.TRAEFIK}"
PROMETHEUS_IMAGE = f"chaoskit/prometheus:{versions.PROMETHEUS_IMAGE_TAG}"
KSM_IMAGE = f"chaoskit/kube-state-metrics:{versions.KUBE_STATE_METRICS}"


def _shop_package() -> Path:
    return Path(str(resources.files("chaoskit.topology") / "shop"))


def topology_steps() -> list[Step]:
    """The images of the e-commerce topology (loaded into a cluster by ``chaoskit deploy``)."""
    base = {"BASE": DEBIAN_BASE}
    return [
        _docker_step(
            "image:shop",
            SHOP_IMAGE,
            "shop",
            needs=("image:debian-base",),
            binaries={"shop": lambda env: _shop_package()},
            args=base,
            extra_inputs=(hash_tree(_shop_package()),),
        ),
        _docker_step("image:kafka", KAFKA_IMAGE, "kafka", needs=("image:debian-base",), args=base),
        _docker_step(
            "image:mariadb", MARIADB_IMAGE, "mariadb", needs=("image:debian-base",), args=base
        ),
        _docker_step(
            "image:mariadb-galera",
            GALERA_IMAGE,
            "mariadb-galera",
            needs=("image:debian-base",),
            args=base,
        ),
        _docker_step(
            "image:prometheus",
            PROMETHEUS_IMAGE,
            "prometheus",
            needs=("image:debian-base",),
            args=base,
        ),
        _docker_step(
            "image:traefik",
            TRAEFIK_IMAGE,
            "traefik",
            needs=("go:traefik",),
            binaries={"traefik": _bin(catalog.TRAEFIK, "traefik")},
            args={"VERSION": versions.TRAEFIK},
        ),
        _docker_step(
            "image:kube-state-metrics",
            KSM_IMAGE,
            "kube-state-metrics",
            needs=("go:kube-state-metrics",),
            binaries={"kube-state-metrics": _bin(catalog.KUBE_STATE_METRICS, "kube-state-metrics")},
        ),
    ]


TOPOLOGY_IMAGES = {
    "image:shop": SHOP_IMAGE,
    "image:kafka": KAFKA_IMAGE,
    "image:mariadb": MARIADB_IMAGE,
    "image:mariadb-galera": GALERA_IMAGE,
    "image:prometheus": PROMETHEUS_IMAGE,
    "image:traefik": TRAEFIK_IMAGE,
    "image:kube-state-metrics": KSM_IMAGE,
}

DEFAULT_TOPOLOGY_STEPS = [name for name in TOPOLOGY_IMAGES if name != "image:mariadb-galera"]


def build_topology_images(
    settings: Settings, progress: Progress, steps: Iterable[str] | None = None
) -> list[str]:
    """Builds (or finds cached) the images of a topology (``steps``: names in
    TOPOLOGY_IMAGES, default the e-commerce topology's); returns their names."""
    wanted = list(steps) if steps is not None else DEFAULT_TOPOLOGY_STEPS
    unknown = [name for name in wanted if name not in TOPOLOGY_IMAGES]
    if unknown:
        raise ValueError(f"not a topology image: {', '.join(unknown)}")
    env = build_env(settings)
    _run_plan(env, [*local_steps(), *topology_steps()], wanted, progress)
    return [TOPOLOGY_IMAGES[name] for name in wanted]


LOCUST_IMAGE = "chaoskit/locust:1"
"""Locust workers as pods (``chaoskit load run --worker-mode pods``); profiles not included."""


def load_steps() -> list[Step]:
    """The image of Locust workers that run inside a cluster."""
    return [
        _docker_step(
            "image:locust",
            LOCUST_IMAGE,
            "locust",
            needs=("image:debian-base",),
            args={"BASE": DEBIAN_BASE},
        )
    ]


def build_load_image(settings: Settings, progress: Progress) -> str:
    """Builds (or finds cached) the Locust worker image; returns its name."""
    env = build_env(settings)
    _run_plan(env, [*local_steps(), *load_steps()], ("image:locust",), progress)
    return LOCUST_IMAGE


AGENT_IMAGE = "chaoskit/agent:1"
"""chaoskit's node agent (chaoskit/agent): a DaemonSet installed by ``chaoskit agent install``."""


def _agent_package() -> Path:
    return Path(str(resources.files("chaoskit.agent") / "nodeagent"))


def agent_steps() -> list[Step]:
    """The node agent's image: Debian's python3 and the agent's own package, no wheels."""
    return [
        _docker_step(
            "image:agent",
            AGENT_IMAGE,
            "agent",
            needs=("image:debian-base",),
            binaries={"nodeagent": lambda env: _agent_package()},
            args={"BASE": DEBIAN_BASE},
            extra_inputs=(hash_tree(_agent_package()),),
        )
    ]


def build_agent_image(settings: Settings, progress: Progress) -> str:
    """Builds (or finds cached) the node agent's image; returns its name."""
    env = build_env(settings)
    _run_plan(env, [*local_steps(), *agent_steps()], ("image:agent",), progress)
    return AGENT_IMAGE


def _run_plan(env: BuildEnv, steps: list[Step], targets: Iterable[str], progress: Progress) -> None:
    plan = Plan.resolve(steps, env, targets)
    with build_lock(env, progress):
        for step in plan.steps:
            key = plan.keys[step.name]
            if is_done(env, step, key):
                continue
            with progress.task(f"building {step.description or step.name}"):
                run_step(env, step, key)


# ---------------------------------------------------------------------------- entry


def build_all(settings: Settings, *, source: Source, progress: Progress) -> ImageSet:
    """Makes sure everything a cluster needs is built; returns the node image to use."""
    env = build_env(settings)
    steps = local_steps()
    if source == "auto":
        source = _detect_source(env, steps)
        progress.note(f"image source: {source}")
    _run_plan(env, steps, LOCAL_TARGETS if source == "local" else UPSTREAM_TARGETS, progress)
    if source == "upstream":
        image = versions.UPSTREAM_NODE_IMAGE
        if not image_exists(image):
            with progress.task(f"pulling {image}"):
                run_logged(
                    ["docker", "pull", image],
                    log=env.log("pull-node"),
                    what=f"pulling {image}",
                    error=BuildFailed,
                    timeout=PULL_TIMEOUT_S,
                )
        return ImageSet(node=image, source="upstream")
    return ImageSet(node=NODE_IMAGE, source="local")


def _detect_source(env: BuildEnv, steps: list[Step]) -> Literal["local", "upstream"]:
    """Upstream where kind's image is here or a registry answers; otherwise build here."""
    if image_exists(versions.UPSTREAM_NODE_IMAGE):
        return "upstream"
    plan = Plan.resolve(steps, env, ("image:node",))
    node = plan.steps[-1]
    if is_done(env, node, plan.keys[node.name]):
        return "local"
    pull = capture(["docker", "pull", versions.UPSTREAM_NODE_IMAGE], timeout=300)
    if pull.returncode == 0:
        return "upstream"
    logger.info("no container registry answers (%s): building images here", pull.stderr.strip())
    return "local"
