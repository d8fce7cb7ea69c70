"""Make sure a Docker engine answers and can run the privileged containers kind needs.

A user's working daemon is left alone: if ``docker info`` answers and a privileged
container starts, nothing changes. Otherwise, on Debian-like hosts, chaoskit installs
Debian's ``docker.io`` and starts ``dockerd`` in the background. Only where the capability
bounding set lacks CAP_SYS_RESOURCE (every ``docker run --privileged`` fails there) does it
register its runtime wrapper (``chaoskit-runc``, see ``files/chaoskit-runc``) as the
daemon's default runtime, and never on a daemon that already runs privileged containers.

Images are built with the legacy builder (``DOCKER_BUILDKIT=0``). BuildKit needs the
buildx plugin, which neither Debian's docker.io nor a bare docker client ships; without
it a 28.x client falls back to the legacy builder anyway (with a deprecation banner), and
with ``DOCKER_BUILDKIT=1`` it refuses to build. Saying so explicitly keeps every build
the same wherever chaoskit runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from chaoskit.errors import BuildFailed, EngineFailed
from chaoskit.proc import process_alive

logger = logging.getLogger(__name__)

HOST_PACKAGES: Final = ("docker.io", "jq", "debootstrap", "debian-archive-keyring")
"""What chaoskit installs with apt-get when no engine answers (``jq`` for the runtime
wrapper, ``debootstrap`` for the node image's base root filesystem)."""

RUNTIME_NAME: Final = "chaoskit-runc"
"""Name of the wrapper in daemon.json's ``runtimes`` and of the installed script."""
RUNTIME_PATH: Final = Path("/usr/local/bin") / RUNTIME_NAME
DAEMON_JSON: Final = Path("/etc/docker/daemon.json")
DOCKERD_PIDFILE: Final = Path("/var/run/docker.pid")

HOST_SYSCTLS: Final[Mapping[str, int]] = {
    # Every node runs systemd, containerd and kubelet, each with inotify instances;
    # the kernel default of 128 is exhausted by a few nodes (kind's known-issues page).
    "fs.inotify.max_user_instances": 512,
    "fs.inotify.max_user_watches": 524288,
    # Routing between the kind network and the host; dockerd sets it too, this only
    # makes it independent of dockerd's --ip-forward default.
    "net.ipv4.ip_forward": 1,
}
"""Kernel settings kind clusters need; only ever raised, never lowered."""

LEGACY_BUILDER_ENV: Final[Mapping[str, str]] = {"DOCKER_BUILDKIT": "0"}
"""Add to the environment of every ``docker build`` (see the module docstring)."""

PROBE_IMAGE: Final = "chaoskit/engine-probe:1"
"""A tiny local image (the host's ``true`` and its libraries) used to test privileged runs."""

_HOST_COMMANDS: Final = ("dockerd", "jq", "debootstrap")
"""Commands the packages in ``HOST_PACKAGES`` provide; any missing triggers an install."""
_CAP_SYS_RESOURCE: Final = 24
_ANSWER_TIMEOUT_S: Final = 60.0
_COMMAND_TIMEOUT_S: Final = 60.0
_INSTALL_TIMEOUT_S: Final = 900.0


def ensure_engine(log_dir: Path) -> None:
    """Leave a working engine alone, or install, configure and start one.

    Idempotent and cheap when the engine already works (two docker calls). Raises
    :class:`EngineFailed` with the relevant log when the engine cannot be brought up.
    Kernel settings are not touched here: ``cluster up`` raises those a cluster needs.
    """
    answers = engine_answers()
    if answers and privileged_container_starts():
        logger.debug("docker engine answers and runs privileged containers; leaving it alone")
        return
    plan = plan_engine(
        answers=answers,
        lacks_cap_sys_resource=host_lacks_cap_sys_resource(),
        runs_privileged=answers and daemon_runs_privileged_containers(),
    )

    log_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise EngineFailed(
            "no Docker engine that can run privileged containers answers, and setting one "
            "up needs root; start Docker yourself (kind needs privileged containers)"
        )
    install_log = log_dir / "engine-install.log"
    if any(shutil.which(command) is None for command in _HOST_COMMANDS):
        install_host_packages(install_log)
    if plan.wrap:
        install_runtime_wrapper()
        configure_daemon(DAEMON_JSON)

    dockerd_log = log_dir / "dockerd.log"
    running = _dockerd_pid()
    if running is not None and engine_answers():
        if plan.wrap:
            # Our configuration is reloadable: SIGHUP makes dockerd re-read daemon.json
            # (runtimes, default-runtime) without stopping a single container.
            logger.info("reloading dockerd (pid %d) with runtime %s", running, RUNTIME_NAME)
            os.kill(running, signal.SIGHUP)
            time.sleep(1.0)
    else:
        if running is not None:
            # Started but not answering yet: give it the usual time before starting another.
            with contextlib.suppress(EngineFailed):
                _wait_until_answers(dockerd_log, lambda: _alive(running))
        if not engine_answers() and _host_runs_systemd():
            # Unverified here (the measured host has no systemd): let the unit own dockerd.
            _run_logged_to(["systemctl", "start", "docker"], install_log)
            _wait_until_answers(install_log, lambda: True)
        elif not engine_answers():
            process = start_dockerd(dockerd_log)
            _wait_until_answers(dockerd_log, lambda: process.poll() is None)

    if not privileged_container_starts():
        hint = (
            f"{DAEMON_JSON} names {RUNTIME_NAME} as the default runtime now: reload or "
            "restart the daemon that answers"
            if plan.wrap
            else "see 'docker run --privileged' on this host"
        )
        raise EngineFailed(
            f"a Docker engine answers but a privileged container still cannot start; {hint}",
            log=dockerd_log,
        )
    logger.info("docker engine ready (%s)", _server_version())


@dataclass(frozen=True)
class EnginePlan:
    """What :func:`ensure_engine` does to a host whose engine does not work yet."""

    wrap: bool
    """Install chaoskit-runc and make it the daemon's default runtime."""


def plan_engine(
    *, answers: bool, lacks_cap_sys_resource: bool, runs_privileged: bool
) -> EnginePlan:
    """Decide what to change on a host whose engine cannot run a privileged container yet.

    The runtime wrapper fixes one thing only, a capability bounding set without
    CAP_SYS_RESOURCE; anywhere else it would be a change to the host that helps nothing.
    A daemon that already runs privileged containers keeps its default runtime: swapping
    it under them is not chaoskit's call.
    """
    if answers and not lacks_cap_sys_resource:
        raise EngineFailed(
            "a Docker engine answers but a privileged container does not start, and this "
            "host has CAP_SYS_RESOURCE (the only thing chaoskit's runtime wrapper works "
            "around); see why 'docker run --privileged' fails here"
        )
    if answers and runs_privileged:
        raise EngineFailed(
            "a Docker engine answers but a privileged container does not start here (the "
            "host lacks CAP_SYS_RESOURCE), and the daemon already runs privileged "
            f"containers: chaoskit will not make {RUNTIME_NAME} its default runtime; add "
            f"it yourself ({RUNTIME_PATH}, see docs/machine.md) or use another daemon"
        )
    return EnginePlan(wrap=lacks_cap_sys_resource)


def daemon_runs_privileged_containers() -> bool:
    """True when a running container of the daemon that answers is privileged.

    Unknown (docker does not answer the question) counts as yes: the safe side.
    """
    listed = _docker(["ps", "-q"])
    if listed is None or listed.returncode != 0:
        return True
    ids = listed.stdout.split()
    if not ids:
        return False
    inspected = _docker(["inspect", "--format", "{{.HostConfig.Privileged}}", *ids])
    if inspected is None or inspected.returncode != 0:
        return True
    return "true" in inspected.stdout.split()


def ensure_build_tools(log_dir: Path) -> None:
    """Install what building the node image needs on the host (debootstrap, jq).

    Separate from :func:`ensure_engine` because a user's working engine is left alone
    and may come without them. Raises :class:`BuildFailed` when they cannot be installed.
    """
    missing = [command for command in ("debootstrap", "jq") if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise BuildFailed(f"building the node image needs {', '.join(missing)}; install them")
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        install_host_packages(log_dir / "engine-install.log", ("debootstrap", "jq"))
    except EngineFailed as e:
        raise BuildFailed(e.message, log=e.log) from e


def engine_answers() -> bool:
    """True when ``docker info`` reaches a daemon."""
    result = _docker(["info", "--format", "{{.ServerVersion}}"], timeout=_COMMAND_TIMEOUT_S)
    return result is not None and result.returncode == 0 and bool(result.stdout.strip())


def privileged_container_starts() -> bool:
    """True when ``docker run --privileged`` of a tiny local image exits 0."""
    if not _ensure_probe_image():
        return False
    result = _docker(
        ["run", "--rm", "--privileged", "--network", "none", PROBE_IMAGE, "/bin/true"],
        timeout=_COMMAND_TIMEOUT_S,
    )
    if result is None:
        return False
    if result.returncode != 0:
        logger.debug("privileged probe failed: %s", result.stderr.strip())
    return result.returncode == 0


def host_lacks_cap_sys_resource(status: Path = Path("/proc/self/status")) -> bool:
    """True when this process's capability bounding set lacks CAP_SYS_RESOURCE."""
    for line in status.read_text().splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> _CAP_SYS_RESOURCE) & 1
    return False


def apply_host_sysctls(
    settings: Mapping[str, int] = HOST_SYSCTLS, root: Path = Path("/proc/sys")
) -> None:
    """Raise each kernel setting to at least its value; warn where that is not allowed.

    Called when a cluster is created, not for every engine check; a value already at or
    above the wanted one is left as it is.
    """
    for key, wanted in settings.items():
        path = root / key.replace(".", "/")
        try:
            current = int(path.read_text().split()[0])
            if current < wanted:
                path.write_text(f"{wanted}\n")
                logger.info("sysctl %s: %d -> %d", key, current, wanted)
        except (OSError, ValueError) as e:
            logger.warning(
                "cannot set sysctl %s=%d (%s); multi-node clusters may fail", key, wanted, e
            )


def install_host_packages(log: Path, packages: Sequence[str] = HOST_PACKAGES) -> None:
    """apt-get install ``packages``, refreshing the package lists once if that fails."""
    if shutil.which("apt-get") is None:
        raise EngineFailed(
            "no Docker engine answers and this host has no apt-get; install and start "
            "Docker yourself"
        )
    logger.info("installing %s with apt-get (log: %s)", " ".join(packages), log)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    with log.open("a") as out:
        if _run_logged(install, out, env) == 0:
            return
        if (
            _run_logged(["apt-get", "update"], out, env) == 0
            and _run_logged(install, out, env) == 0
        ):
            return
    raise EngineFailed(f"apt-get install {' '.join(packages)} failed", log=log)


def install_runtime_wrapper(target: Path = RUNTIME_PATH) -> None:
    """Install ``chaoskit-runc`` at ``target`` unless the same script is already there."""
    script = runtime_wrapper_script()
    if target.exists() and target.read_bytes() == script:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(script)
    tmp.chmod(0o755)
    tmp.replace(target)
    logger.info("installed runtime wrapper %s", target)


def runtime_wrapper_script() -> bytes:
    """The wrapper script shipped with chaoskit (also copied into node images)."""
    return resources.files("chaoskit.engine").joinpath("files", RUNTIME_NAME).read_bytes()


def configure_daemon(path: Path = DAEMON_JSON, runtime_path: Path = RUNTIME_PATH) -> bool:
    """Merge chaoskit's runtime into daemon.json; return True when the file changed.

    Only ``runtimes.chaoskit-runc`` and ``default-runtime`` are touched; everything else a
    user put there stays. A file that is not valid JSON is an error, not overwritten.
    """
    config: dict[str, object] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as e:
            raise EngineFailed(f"{path} is not valid JSON ({e}); fix or remove it") from e
        if not isinstance(loaded, dict):
            raise EngineFailed(f"{path} must hold a JSON object")
        config = loaded
    merged = merge_daemon_config(config, runtime_path, path=path)
    if merged == config and path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    tmp.replace(path)
    logger.info("registered %s as default runtime in %s", RUNTIME_NAME, path)
    return True


def merge_daemon_config(
    config: Mapping[str, object], runtime_path: Path, *, path: Path = DAEMON_JSON
) -> dict[str, object]:
    """Return a copy of ``config`` with chaoskit's runtime added and made the default.

    Pure: ``config`` is not changed. Every other key and runtime stays; a default runtime
    the user chose (other than runc or chaoskit's) is an error, not replaced.
    """
    current = config.get("default-runtime")
    if current not in (None, "runc", RUNTIME_NAME):
        raise EngineFailed(
            f"{path} makes {current!r} the default runtime; chaoskit will not replace it "
            f"with {RUNTIME_NAME}: set it yourself if this host needs the wrapper"
        )
    merged = dict(config)
    runtimes = merged.get("runtimes")
    runtimes = dict(runtimes) if isinstance(runtimes, dict) else {}
    runtimes[RUNTIME_NAME] = {"path": str(runtime_path)}
    merged["runtimes"] = runtimes
    merged["default-runtime"] = RUNTIME_NAME
    return merged


def start_dockerd(log: Path) -> subprocess.Popen[bytes]:
    """Start dockerd in its own session, detached from chaoskit."""
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    stale = _read_pidfile()
    if stale is not None and not _alive(stale):
        DOCKERD_PIDFILE.unlink(missing_ok=True)
    # dockerd runs its own containerd and calls runc, iptables and friends from sbin.
    path = os.environ.get("PATH", "")
    env = {
        **os.environ,
        "PATH": f"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{path}",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [dockerd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    logger.info("started dockerd (pid %d, log: %s)", process.pid, log)
    return process


def _wait_until_answers(
    log: Path, still_running: Callable[[], bool], timeout: float = _ANSWER_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_answers():
            return
        if not still_running():
            raise EngineFailed("dockerd exited during startup", log=log)
        time.sleep(0.5)
    raise EngineFailed(f"dockerd did not answer within {timeout:.0f} s", log=log)


def _server_version() -> str:
    result = _docker(
        ["version", "--format", "client {{.Client.Version}}, server {{.Server.Version}}"]
    )
    return result.stdout.strip() if result is not None and result.returncode == 0 else "unknown"


def _ensure_probe_image() -> bool:
    """Import the probe image once: the host's ``true`` plus the libraries it loads."""
    present = _docker(["image", "inspect", "--format", "{{.Id}}", PROBE_IMAGE])
    if present is not None and present.returncode == 0:
        return True
    try:
        archive = _probe_rootfs_tar()
    except (OSError, subprocess.SubprocessError) as e:
        logger.warning("cannot assemble the privileged probe image: %s", e)
        return False
    result = _docker(["import", "-", PROBE_IMAGE], stdin=archive)
    if result is None or result.returncode != 0:
        logger.debug("docker import of the probe image failed: %s", result and result.stderr)
        return False
    return True


def _probe_rootfs_tar() -> bytes:
    true_bin = Path(shutil.which("true") or "/bin/true")
    ldd = subprocess.run(
        ["ldd", str(true_bin)], capture_output=True, text=True, check=False, timeout=30
    )
    files = [true_bin]
    for line in ldd.stdout.splitlines():
        # "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        words = [w for w in line.split() if w.startswith("/")]
        if words:
            files.append(Path(words[0]))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for file in files:
            info = tar.gettarinfo(str(file.resolve()), arcname=str(file).lstrip("/"))
            with file.resolve().open("rb") as content:
                tar.addfile(info, content)
        # The probe runs /bin/true whatever the host's path to it is.
        if str(true_bin) != "/bin/true":
            info = tar.gettarinfo(str(true_bin.resolve()), arcname="bin/true")
            with true_bin.resolve().open("rb") as content:
                tar.addfile(info, content)
    return buffer.getvalue()


def _docker(
    args: Sequence[str], timeout: float = _COMMAND_TIMEOUT_S, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str] | None:
    """Run the docker client; None when it is missing or does not return in time."""
    if shutil.which("docker") is None:
        return None
    try:
        result = subprocess.run(
            ["docker", *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        logger.debug("docker %s timed out after %.0f s", " ".join(args), timeout)
        return None
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def _run_logged(command: Sequence[str], out: io.TextIOWrapper, env: Mapping[str, str]) -> int:
    out.write(f"$ {' '.join(command)}\n")
    out.flush()
    try:
        return subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
            timeout=_INSTALL_TIMEOUT_S,
        ).returncode
    except subprocess.TimeoutExpired:
        out.write(f"timed out after {_INSTALL_TIMEOUT_S:.0f} s\n")
        return 1


def _run_logged_to(command: Sequence[str], log: Path) -> int:
    with log.open("a") as out:
        return _run_logged(command, out, os.environ)


def _host_runs_systemd() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _read_pidfile() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(DOCKERD_PIDFILE.read_text().strip())
    return None


def _alive(pid: int) -> bool:
    return process_alive(pid)


def _dockerd_pid() -> int | None:
    """The pid of a running dockerd according to its pid file, if any."""
    pid = _read_pidfile()
    return pid if pid is not None and _alive(pid) else None
