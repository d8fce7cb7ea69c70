"""The files ``chaoskit init`` writes into a repository, all of them or none.

Into the system folder (the repository's top unless ``--folder`` names one inside it, so
that every path the system file names stays inside its folder): ``chaoskit-system.yaml``,
``chaoskit-suite.yaml`` (the suite, on that system, with three of chaoskit's own
experiments), ``chaoskit-kind.yaml`` (its cluster, mapping the published NodePorts) and
``chaoskit-checks/example_check.py`` (an invariant). At the repository's top:
``.github/workflows/chaoskit.yml``. Nothing is overwritten unless ``force``; each file is
written under a temporary name first and only moved in place once all are written and
the system file is one chaoskit accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from chaoskit.documents import PLACEHOLDER
from chaoskit.errors import InvalidConfig, InvalidInput, OperationFailed
from chaoskit.scaffold.scan import Findings, label, scan
from chaoskit.system.spec import SYSTEM_FILE, load_system

SUITE_FILE = "chaoskit-suite.yaml"
KIND_FILE = "chaoskit-kind.yaml"
CHECK_FILE = "chaoskit-checks/example_check.py"
LOAD_FILE = "chaoskit-load/locustfile.py"
"""A starter Locust file, written when the repository has none and publishes a Service."""
WORKFLOW_FILE = ".github/workflows/chaoskit.yml"
REPORT_DIR = "chaoskit-report"
KIND_NAME_MAX = 50
"""kind makes container and DNS names of a cluster's name."""
PLACEHOLDER_SELECTOR = f"app={PLACEHOLDER}"


@dataclass(frozen=True)
class InitResult:
    findings: Findings
    written: tuple[Path, ...]
    """Each file written, as the directory given joined with its path in it."""
    system: Path
    suite: Path


def init_repository(directory: Path, *, folder: str = ".", force: bool = False) -> InitResult:
    """Looks at the repository ``directory`` and writes chaoskit's starter files into it.

    Raises InvalidInput when ``directory`` or ``folder`` is not a folder, when nothing in
    it deploys a system, or (without ``force``) when one of the files is already there."""
    root = _folder(directory, "")
    system_folder = _system_folder(directory, root, folder)
    try:
        findings = scan(system_folder, label(root.name))
    except OSError as e:
        raise InvalidInput(f"{directory / folder}: cannot be read: {e}") from None
    if findings.deploy is None:
        also = (
            f" ({len(findings.images)} Dockerfile(s), but nothing that deploys them)"
            if findings.images
            else ""
        )
        raise InvalidInput(
            f"{directory / folder}: found no kustomization, Helm chart (Chart.yaml) or "
            f"Kubernetes manifests{also}: a system file says how to deploy the system, so "
            "chaoskit init needs one of them (see docs/system-file.md in chaoskit)"
        )
    inside = PurePosixPath(system_folder.relative_to(root).as_posix())
    suite = inside / SUITE_FILE
    texts = {
        inside / SYSTEM_FILE: system_text(findings, suite),
        suite: suite_text(findings, suite),
        inside / KIND_FILE: kind_text(findings),
        inside / CHECK_FILE: CHECK_TEXT,
    }
    if writes_load(findings):
        texts[inside / LOAD_FILE] = LOAD_TEXT
    texts[PurePosixPath(WORKFLOW_FILE)] = workflow_text(suite)
    _write_all(root, directory, texts, check=inside / SYSTEM_FILE, force=force)
    return InitResult(
        findings=findings,
        written=tuple(directory / p for p in texts),
        system=directory / inside / SYSTEM_FILE,
        suite=directory / suite,
    )


def _folder(path: Path, option: str) -> Path:
    given = f"{option} {path}" if option else str(path)
    try:
        exists, is_folder = path.exists(), path.is_dir()
    except (OSError, ValueError) as e:
        raise InvalidInput(f"{given}: cannot be read: {e}") from None
    if not exists:
        raise InvalidInput(f"{given}: no such directory")
    if not is_folder:
        raise InvalidInput(f"{given}: not a directory")
    return path.resolve()


def _system_folder(directory: Path, root: Path, folder: str) -> Path:
    if Path(folder).is_absolute():
        raise InvalidInput(f"--folder {folder}: give a folder relative to {directory}")
    resolved = _folder(directory / folder, "--folder")
    if not resolved.is_relative_to(root):
        raise InvalidInput(f"--folder {folder}: leads outside {directory}")
    return resolved


# --------------------------------------------------------------------------- writing


def _write_all(
    root: Path,
    directory: Path,
    texts: dict[PurePosixPath, str],
    *,
    check: PurePosixPath,
    force: bool,
) -> None:
    try:
        existing = [p for p in texts if (root / p).exists() or (root / p).is_symlink()]
    except OSError as e:
        raise InvalidInput(f"{directory}: cannot be read: {e}") from None
    if existing and not force:
        names = ", ".join(str(directory / p) for p in existing)
        them = "it" if len(existing) == 1 else "them"
        raise InvalidInput(
            f"{names}: already there; chaoskit init overwrites nothing (--force replaces {them})"
        )
    mode = _file_mode()
    made: list[Path] = []
    staged: dict[Path, Path] = {}
    placed: list[Path] = []
    destination = root
    try:
        for relative, text in texts.items():
            destination = root / relative
            made.extend(_make_folders(destination.parent, root))
            staged[destination] = _stage(destination, text, mode)
        _accepted(root / check, staged)
        for destination, temporary in staged.items():
            temporary.replace(destination)
            placed.append(destination)
    except BaseException as e:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        if not force:
            for path in placed:
                path.unlink(missing_ok=True)
        for folder in reversed(made):
            _remove_empty(folder)
        if isinstance(e, OSError):
            reason = e.strerror or str(e)
            undone = "" if force else "; nothing was written"
            raise OperationFailed(f"{destination}: cannot be written: {reason}{undone}") from e
        raise


def _file_mode() -> int:
    """What a new file gets under this process's umask (a temporary file gets 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _make_folders(folder: Path, root: Path) -> list[Path]:
    """Makes ``folder`` and the folders above it up to ``root``; those it made, topmost
    first."""
    missing: list[Path] = []
    current = folder
    while current != root and not current.exists():
        missing.append(current)
        current = current.parent
    made = []
    for path in reversed(missing):
        path.mkdir()
        made.append(path)
    return made


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: something else is in it now
        folder.rmdir()


def _stage(destination: Path, text: str, mode: int) -> Path:
    """``text`` written to a new temporary file beside ``destination``, with its suffix
    (a system file names a Locust file by its ``.py``)."""
    descriptor, name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=f".tmp{destination.suffix}"
    )
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        temporary.chmod(mode)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _accepted(system: Path, staged: dict[Path, Path]) -> None:
    """The system file init made must load once its placeholders are filled in (with a
    name every field takes); if not, that is chaoskit's bug. It is loaded from a copy
    beside it that names the staged files in place of the files they become."""
    filled = staged[system].read_text(encoding="utf-8").replace(PLACEHOLDER, PLACEHOLDER.lower())
    folder = system.parent
    for destination, temporary in staged.items():
        if destination != system and destination.is_relative_to(folder):
            filled = filled.replace(
                destination.relative_to(folder).as_posix(),
                temporary.relative_to(folder).as_posix(),
            )
    copy = _stage(system, filled, 0o600)
    try:
        load_system(copy)
    except InvalidConfig as e:
        raise OperationFailed(
            f"chaoskit init made a system file it does not accept itself ({e.field}: "
            f"{e.reason}); nothing was written"
        ) from e
    finally:
        copy.unlink(missing_ok=True)


# --------------------------------------------------------------------------- texts

_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:=,-]*")


def scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when YAML reads it back as the same string,
    else double-quoted (JSON's quoting is YAML's)."""
    try:
        plain = _PLAIN.fullmatch(text) is not None and yaml.safe_load(text) == text
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


def _flow(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(scalar(i) if "," not in i else json.dumps(i) for i in items) + "]"


def writes_load(f: Findings) -> bool:
    """Whether init writes its starter Locust file: none found, and a Service to load."""
    return f.locustfile is None and bool(f.publish)


def _locustfile(f: Findings) -> str | None:
    return f.locustfile if f.locustfile is not None else LOAD_FILE if writes_load(f) else None


def system_text(f: Findings, suite: PurePosixPath) -> str:
    """The system file: what was found, and commented examples for what was not."""
    kind, where = f.deploy or ("manifests", ".")
    folder_path = where if where == "." else f"{where}/"
    deploy = {
        "kustomize": f"  kustomize: {scalar(folder_path)}",
        "manifests": f"  manifests: {_flow([folder_path])}",
        "helm": f"  helm:\n    chart: {scalar(folder_path)}",
    }[kind]
    lines = [
        "# The system under test, for chaoskit: written by `chaoskit init` from what it found",
        "# here, to adapt. Paths are relative to this file's folder and stay inside it. Every",
        "# field: docs/system-file.md in chaoskit. Check it, with its suite:",
        f"#   chaoskit suite validate {suite}",
        "version: 1",
        f"name: {scalar(f.name)}",
        "# The namespaces the system owns: chaoskit checks their desired state and acts there.",
        f"namespaces: {_flow(f.namespaces)}{_namespace_hint(f)}",
        "deploy:",
        deploy,
    ]
    lines += _images_text(f)
    lines += [
        "wait:",
        "  timeout: 300 # seconds for every Deployment, StatefulSet and DaemonSet to be Ready",
    ]
    lines += _publish_text(f)
    lines += _load_text(f)
    lines += [
        "# Checks of your own, run before and after every trial: one JSON object in on stdin,",
        '# one out on stdout (docs/system-file.md, "Invariants"). This example checks that',
        "# every published Service answers; replace it with what your system promises (no",
        "# acknowledged write lost, balances that add up, ...).",
        "invariants:",
        "  - name: published-services-answer",
        f"    command: {_flow(['python3', CHECK_FILE])}",
        "    timeout: 30",
    ]
    return "\n".join(lines) + "\n"


def _namespace_hint(f: Findings) -> str:
    if PLACEHOLDER not in f.namespaces:
        return ""
    return (
        f" # {PLACEHOLDER}: the manifests set none; give them one (kustomize's namespace:, "
        "or metadata.namespace) and name it here"
    )


def _images_text(f: Findings) -> list[str]:
    if not f.images:
        return [
            "# Images built from Dockerfiles here and loaded onto the kind nodes (none found):",
            "# images:",
            f"#   - tag: {f.name}/app:dev # the image name the manifests use, never :latest",
            "#     context: app",
        ]
    lines = [
        "# Built from the Dockerfiles found here and loaded onto the kind nodes; a tag is the",
        "# image name the manifests must use (never :latest).",
        "images:",
    ]
    for image in f.images:
        dockerfile = f"{'' if image.context == '.' else image.context + '/'}{image.dockerfile}"
        adapt = (
            ""
            if image.from_manifests
            else f" # {PLACEHOLDER}: the name:tag the manifests run for {dockerfile}, or "
            "remove this entry"
        )
        lines += [f"  - tag: {scalar(image.tag)}{adapt}", f"    context: {scalar(image.context)}"]
    return lines


def _publish_text(f: Findings) -> list[str]:
    lines = [
        "# Services the host reaches on 127.0.0.1: NodePort Services whose node_port",
        f"# {KIND_FILE} maps (extraPortMappings).",
    ]
    if not f.publish:
        return [
            *lines,
            "# None found (a NodePort Service with a fixed nodePort); for example:",
            "# publish:",
            "#   - name: entry",
            f"#     service: {f.namespaces[0]}/SERVICE",
            "#     node_port: 30080",
        ]
    lines.append("publish:")
    for port in f.publish:
        lines += [
            f"  - name: {scalar(port.name)}",
            f"    service: {scalar(f'{port.namespace}/{port.service}')}",
            f"    node_port: {port.node_port}",
        ]
    return lines


def _load_text(f: Findings) -> list[str]:
    locustfile = _locustfile(f)
    if locustfile is not None and f.publish:
        starter = (
            [f"# {LOAD_FILE} is a starter (GET / of target): make it your users' traffic."]
            if writes_load(f)
            else []
        )
        return [
            "# The traffic a suite runs through every trial: this Locust file, sent to target.",
            *starter,
            "load:",
            f"  locustfile: {scalar(locustfile)}",
            f"  target: {scalar(f.publish[0].name)}",
            "  users: 10",
            "  spawn_rate: 5",
        ]
    why = "no publish entry to send it to" if f.locustfile else "no locustfile.py found"
    return [
        f"# The traffic a suite runs through every trial ({why}); for example:",
        "# load:",
        f"#   locustfile: {f.locustfile or 'load/locustfile.py'}",
        "#   target: entry # a publish name",
        "#   users: 10",
    ]


def suite_text(f: Findings, suite: PurePosixPath) -> str:
    """The suite: the system under its load (if any), a Pod, a node and a control-plane
    fault from chaoskit's own experiments."""
    has_load = _locustfile(f) is not None and bool(f.publish)
    victim = f.victim
    namespace = victim.namespace if victim else f.namespaces[0]
    selector = victim.selector if victim else PLACEHOLDER_SELECTOR
    about = f"Pods of {victim.workload}" if victim else "adapt: a label selector of your Pods"
    lines = [
        f"# A chaoskit suite for {f.name}, written by `chaoskit init`: a Pod, a node and a",
        "# control-plane fault on a kind cluster, with the system's load and invariants. Every",
        "# field: experiments/suites/README.md in chaoskit.",
        f"#   chaoskit suite validate {suite}",
        f"#   chaoskit suite run {suite} --fresh-cluster",
        f"name: {scalar(f.name)}",
        f"description: {json.dumps(f'{f.name} under Pod, node and control-plane faults')}",
        "seed: 1",
        "trials: 1",
        "cluster:",
        f"  config: {KIND_FILE}",
        f"  name: {scalar(label(f.name)[:KIND_NAME_MAX].rstrip('-'))}",
        f"topology: ./{SYSTEM_FILE}",
        "# namespaces: the system's (chaoskit-system.yaml), unless given here.",
    ]
    if has_load:
        lines += [
            "# The system file's load (its Locust file, users, target); fields given here take",
            "# precedence over its own.",
            "load:",
            "  warmup: 10 # seconds of traffic before each experiment",
            "  cooldown: 5 # and after it",
        ]
    lines += [
        "slos:",
        "  - name: recovery",
        "    kind: recovery_s",
        "    threshold: 180",
    ]
    if has_load:
        lines += [
            "  - name: error rate during the fault # percent; measure a first run, then adapt",
            "    kind: error_rate",
            "    threshold: 10",
        ]
    lines += [
        "# chaoskit:NAME is chaoskit's own experiments/NAME.yaml; a path is one of yours.",
        "experiments:",
        "  - file: chaoskit:pod-kill",
        "    vars:",
        f"      namespace: {scalar(namespace)}",
        f"      selector: {scalar(selector)} # {about}",
        "  - file: chaoskit:node-stop # a worker stopped for 30 s",
        "    vars:",
        "      hold: 30",
        "    requires:",
        "      workers: 2",
        "  - file: chaoskit:kube-apiserver-kill",
    ]
    return "\n".join(lines) + "\n"


def kind_text(f: Findings) -> str:
    """A kind cluster of one control plane and two workers (a node fault needs a worker
    to lose and one to move to), publishing the system's NodePorts on 127.0.0.1."""
    lines = [
        f"# The kind cluster of {f.name}'s chaoskit suite, written by `chaoskit init`: one",
        "# control plane and two workers.",
        "kind: Cluster",
        "apiVersion: kind.x-k8s.io/v1alpha4",
        "# Faults that wait on Kubernetes timers are quick: a silent node is NotReady after",
        "# 20 s (default 50 s) and its Pods are evicted 10 s later (default 300 s).",
        "kubeadmConfigPatches:",
        "  - |",
        "    kind: ClusterConfiguration",
        "    apiServer:",
        "      extraArgs:",
        '        default-not-ready-toleration-seconds: "10"',
        '        default-unreachable-toleration-seconds: "10"',
        "    controllerManager:",
        "      extraArgs:",
        '        node-monitor-period: "2s"',
        '        node-monitor-grace-period: "20s"',
        "  - |",
        "    kind: KubeletConfiguration",
        "    nodeStatusUpdateFrequency: 5s",
        "    nodeLeaseDurationSeconds: 20",
        "networking:",
        '  apiServerAddress: "127.0.0.1"',
        "nodes:",
        "  - role: control-plane",
    ]
    if f.publish:
        lines += [
            f"    # the system's published NodePorts ({SYSTEM_FILE} publish), on 127.0.0.1",
            "    extraPortMappings:",
        ]
        for port in f.publish:
            lines += [
                f"      - containerPort: {port.node_port}",
                '        listenAddress: "127.0.0.1"',
            ]
    lines += ["  - role: worker", "  - role: worker"]
    return "\n".join(lines) + "\n"


CHECK_TEXT = '''\
"""An invariant check for chaoskit, written by `chaoskit init`: every published Service
answers HTTP (any status counts; a refused or timed-out connection does not).

chaoskit runs it before and after every trial, in the system folder, with one JSON object
on stdin (phase, window, acknowledged, published, kubeconfig) and reads one JSON object
from stdout: {"checked": N, "violations": [{"what": "..."}, ...]}. Replace it with what
your system promises (docs/system-file.md in chaoskit, "Invariants")."""

import json
import sys
import urllib.error
import urllib.request

given = json.load(sys.stdin)
published = given.get("published") or {}
violations = []
for name, url in sorted(published.items()):
    try:
        with urllib.request.urlopen(url, timeout=5):
            pass
    except urllib.error.HTTPError:
        pass  # it answered, with an error status: it still serves
    except (OSError, ValueError) as e:
        violations.append({"what": f"{name} ({url}) does not answer: {e}", "published": name})
print(json.dumps({"checked": len(published), "violations": violations}))
'''


LOAD_TEXT = '''\
"""A starter load for chaoskit, written by `chaoskit init`: users fetch / of the published
Service the system file's load.target names. A connection that fails or a 5xx answer is a
failed request; any other answer counts as served (a 404 still shows the Service serves).

Make it your users' traffic, and call chaoskit.load.recorder.acknowledge(**fields) for each
operation the system said it kept, for your invariants to check (docs/system-file.md in
chaoskit). It runs under plain Locust too:
    locust -f chaoskit-load/locustfile.py --headless -u 10 -r 5 -t 30s --host URL
"""

from locust import HttpUser, between, task


class Visitor(HttpUser):
    wait_time = between(0.2, 1.0)

    @task
    def front_page(self) -> None:
        with self.client.get("/", catch_response=True) as answer:
            if answer.status_code == 0 or answer.status_code >= 500:
                answer.failure(f"answered {answer.status_code or answer.error}")
            else:
                answer.success()
'''


def workflow_text(suite: PurePosixPath) -> str:
    """A GitHub Actions workflow: chaoskit from its source tree, the suite on a fresh
    cluster, the report uploaded, the job failed when the suite failed."""
    return _WORKFLOW.replace("@SUITE@", str(suite)).replace("@REPORT@", REPORT_DIR)


_WORKFLOW = """\
# chaoskit in GitHub Actions, written by `chaoskit init`: runs the suite on a fresh kind
# cluster, uploads its report whatever happens, and fails the job when a trial failed.
# Adapt the lines marked `adapt`.
name: chaoskit

on:
  pull_request:
  push:
    branches: [main]
  workflow_dispatch:

permissions:
  contents: read

concurrency:
  group: chaoskit-${{ github.ref }}
  cancel-in-progress: true

jobs:
  resilience:
    runs-on: ubuntu-24.04 # a Linux VM with Docker and passwordless sudo
    timeout-minutes: 90
    env:
      SUITE: @SUITE@
      REPORT: @REPORT@
      CHAOSKIT_CACHE_DIR: ${{ github.workspace }}/.chaoskit-cache
      CHAOSKIT_REPOSITORY: OWNER/chaoskit # adapt: the repository chaoskit is installed from
      CHAOSKIT_REF: main # adapt: a tag or commit of it
    defaults:
      run:
        shell: bash
    steps:
      - uses: actions/checkout@v4

      # chaoskit from its source tree: the suite names chaoskit's own experiments
      # (chaoskit:pod-kill), which are its experiments/ folder beside the package.
      - uses: actions/checkout@v4
        with:
          repository: ${{ env.CHAOSKIT_REPOSITORY }}
          ref: ${{ env.CHAOSKIT_REF }}
          path: .chaoskit-src

      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"

      # kind and kubectl are built with Go (pinned in chaoskit/versions.py).
      - uses: actions/setup-go@v5
        with:
          go-version: "1.24.x"
          cache: false

      - name: Install chaoskit
        run: |
          python -m venv .venv
          .venv/bin/python -m pip install -e ./.chaoskit-src
          echo "$PWD/.venv/bin" >> "$GITHUB_PATH"

      - name: Check the suite and the system file
        run: chaoskit suite validate "$SUITE"

      - name: Host settings kind recommends for multi-node clusters
        run: sudo sysctl -w fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288

      # Root builds the images and installs what is missing with apt-get. The suite exits
      # 1 when a trial failed: the exit code is kept for the last step.
      - name: Run the suite
        id: suite
        run: |
          set +e
          sudo --preserve-env=CHAOSKIT_CACHE_DIR env "PATH=$PATH" \\
            chaoskit suite run "$SUITE" --fresh-cluster --out "$REPORT"
          echo "exit=$?" >> "$GITHUB_OUTPUT"

      - name: Job summary
        if: always()
        run: |
          if [ -f "$REPORT/report.md" ]; then
            cat "$REPORT/report.md" >> "$GITHUB_STEP_SUMMARY"
          else
            echo "No report (suite exit ${{ steps.suite.outputs.exit }})" >> "$GITHUB_STEP_SUMMARY"
          fi

      - name: Upload the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: chaoskit-report
          path: ${{ env.REPORT }}
          if-no-files-found: warn

      - name: Gate on the suite's exit code
        run: |
          code="${{ steps.suite.outputs.exit }}"
          echo "chaoskit suite run exited with ${code:-nothing}"
          test "$code" = 0
"""
