"""chaoskit as a pytest plugin: Chaos Toolkit experiment files are test items.

``pytest experiments/`` collects every YAML or JSON file that is an experiment (a mapping
with ``title`` and ``method``; files under a ``suites`` folder are suite files, not
experiments) as one test item, and runs it with chaoskit's control, timeline and
desired-state oracle against one cluster per session. An item passes when the run
completed and the steady state did not deviate; a failure shows the oracle's problems and
the failed activities, not a traceback. A file that is meant as an experiment but is
invalid is a collection error naming the file, the field and the reason.

The session's cluster and topology are fixtures that users' own tests may ask for too:
``chaoskit_cluster`` (reused with ``--chaoskit-cluster NAME``, else created from
``--chaoskit-config`` and deleted at the end unless ``--chaoskit-keep``) and
``chaoskit_topology`` (deployed unless ``--no-chaoskit-deploy``). ``--chaoskit-topology``
may name a system folder instead of a topology (``./my-system``, with its
``chaoskit-system.yaml``, as a suite's ``topology:`` does): the session keeps it when it is
Ready and serving, deploys it otherwise, runs experiments in its namespaces unless
``--chaoskit-namespace`` says otherwise, and gives tests the fixture ``chaoskit_system``
(published URLs, namespaces, its invariant checks). Cluster and deployment go through
:mod:`chaoskit.provision`, as ``chaoskit cluster up``/``deploy`` and ``suite run`` do.
All are made on first use only: a run that collects no experiment and asks for no fixture
loads nothing of chaoskit beyond this module and changes nothing.

Every option has an ini key of the same name with underscores (``chaoskit_cluster``, ...,
``chaoskit_vars`` and ``chaoskit_namespaces`` as space-separated lists); a command-line
option wins over the ini key. The exceptions are ``--chaoskit-kubeconfig``,
``--chaoskit-context`` and ``--chaoskit-allow-context`` (or ``CHAOSKIT_KUBECONFIG``,
``CHAOSKIT_CONTEXT``, ``CHAOSKIT_ALLOW_CONTEXT``): they point the session at a cluster
chaoskit may not have made, which only the person running pytest decides, never a shared
ini file (as ``chaoskit run``: :mod:`chaoskit.ctk.operator`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from chaoskit.errors import ChaoskitError, InvalidConfig, InvalidInput

if TYPE_CHECKING:
    # Type-only: the names pytest's own signatures use for Item.repr_failure.
    from _pytest._code.code import TerminalRepr, TracebackStyle
    from kubernetes.client import ApiClient

    from chaoskit.ctk.experiment import RunOutcome
    from chaoskit.settings import Settings
    from chaoskit.system.checks import CheckOutcome
    from chaoskit.system.invariants import Phase
    from chaoskit.system.spec import SystemSpec
    from chaoskit.topology.catalog import Topology

logger = logging.getLogger(__name__)

T = TypeVar("T")

SUFFIXES = frozenset({".yaml", ".yml", ".json"})
"""Files that may hold an experiment (Chaos Toolkit reads YAML and JSON)."""
SUITES_DIR = "suites"
"""Folders of this name hold suite files (``chaoskit suite run``), never experiments."""
SESSION_CLUSTER = "chaoskit-pytest"
"""The name of the cluster a session makes when no ``--chaoskit-cluster`` is given."""
DEFAULT_CONFIG = "kind-config.yaml"
DEFAULT_TOPOLOGY = "ecommerce"
TIMEOUT = 600.0
"""Seconds that cluster creation and the topology's deploy may each take."""

# Top-level keys as they appear in a file's text: a file whose document cannot be parsed
# still counts as meant to be an experiment (and gets a collection error) when it has both.
_YAML_KEYS = re.compile(r"^(title|method)\s*:", re.MULTILINE)
_JSON_KEYS = re.compile(r'"(title|method)"\s*:')


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    """The plugin's settings: command line over ini, checked before anything runs."""

    cluster: str | None
    """Reuse this chaoskit cluster; None: the session makes one from ``config``."""
    config: Path
    """kind config of the cluster the session makes."""
    keep: bool
    """Keep the cluster the session made (it is deleted at the end otherwise)."""
    seed: str | None
    """Seed of every run's victim choice; None: random, recorded in each result."""
    namespaces: tuple[str, ...]
    """Allowlisted namespaces; empty: each experiment's own ``chaoskit_namespaces``."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Configuration keys set in every experiment that has them."""
    deploy: bool = True
    """Deploy the topology (or system) before the first experiment (and for the fixtures
    ``chaoskit_topology`` and ``chaoskit_system``)."""
    topology: str = DEFAULT_TOPOLOGY
    """A topology's name, or the path of a system folder as given."""
    system: Path | None = None
    """The system folder (or file) ``topology`` names, resolved; None: a topology's name."""
    topology_option: str = "--chaoskit-topology"
    """Where ``topology`` was given: the option or the ini key, for error messages."""
    out: Path | None = None
    """Folder of the result files; None: ``chaoskit`` under pytest's base temp folder."""
    kubeconfig: Path | None = None
    """Reach the cluster through this kubeconfig (command line or environment only)."""
    context: str | None = None
    """The kubeconfig's context to use (default: its current one)."""
    allow_context: str | None = None
    """A context chaoskit did not make that the session may act on."""

    @property
    def elsewhere(self) -> bool:
        """True if the cluster is named by a kubeconfig or context, not by chaoskit's name."""
        return self.kubeconfig is not None or self.context is not None


def _key_values(values: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"--chaoskit-var {item!r}: not KEY=VALUE")
        result[key.strip()] = value
    return result


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    paths: list[Path] = config.getini(name)
    return paths[0] if paths else None


def _cli_path(config: pytest.Config, value: str | None) -> Path | None:
    return None if value is None else config.invocation_params.dir / value


def _topology(config: pytest.Config) -> tuple[str, str, Path | None]:
    """(the topology as given, where it was given, the system path it names or None). A path
    on the command line is relative to the invocation folder, in the ini file to its folder
    (as ``paths`` ini keys are)."""
    given: str = config.option.chaoskit_topology or ""
    option, base = "--chaoskit-topology", config.invocation_params.dir
    if not given:
        given = config.getini("chaoskit_topology") or ""
        option = "chaoskit_topology (ini)"
        base = config.inipath.parent if config.inipath is not None else config.rootpath
    if not given:
        return DEFAULT_TOPOLOGY, "--chaoskit-topology", None
    from chaoskit.system.spec import is_system_path

    return given, option, base / Path(given).expanduser() if is_system_path(given) else None


def read_options(config: pytest.Config) -> Options:
    """The effective options; a bad value is a usage error (one line, exit 4)."""
    from chaoskit.cluster.config import valid_name

    opt = config.option
    cluster = opt.chaoskit_cluster or config.getini("chaoskit_cluster") or None
    if cluster is not None and not valid_name(cluster):
        raise pytest.UsageError(
            f"--chaoskit-cluster {cluster!r}: cluster names are lower-case letters, digits "
            "and '-' (max 50)"
        )
    kind_config = (
        _cli_path(config, opt.chaoskit_config)
        or _ini_path(config, "chaoskit_config")
        or config.rootpath / DEFAULT_CONFIG
    )
    keep = bool(opt.chaoskit_keep) or bool(config.getini("chaoskit_keep"))
    deploy = opt.chaoskit_deploy
    if deploy is None:
        deploy = bool(config.getini("chaoskit_deploy"))
    namespaces = opt.chaoskit_namespaces or config.getini("chaoskit_namespaces")
    variables = {
        **_key_values(list(config.getini("chaoskit_vars"))),
        **_key_values(list(opt.chaoskit_vars or [])),
    }
    # No ini keys for these: a shared file must not point the session at another cluster.
    kubeconfig_value = opt.chaoskit_kubeconfig or os.environ.get("CHAOSKIT_KUBECONFIG")
    kubeconfig = (
        config.invocation_params.dir / Path(kubeconfig_value).expanduser()
        if kubeconfig_value
        else None
    )
    context = opt.chaoskit_context or os.environ.get("CHAOSKIT_CONTEXT") or None
    if cluster is not None and (kubeconfig is not None or context is not None):
        raise pytest.UsageError(
            "--chaoskit-cluster: give it or --chaoskit-kubeconfig/--chaoskit-context, not both"
        )
    topology, topology_option, system = _topology(config)
    return Options(
        cluster=cluster,
        config=kind_config,
        keep=keep,
        seed=opt.chaoskit_seed or config.getini("chaoskit_seed") or None,
        namespaces=tuple(dict.fromkeys(n.strip() for n in namespaces if n.strip())),
        variables=variables,
        deploy=bool(deploy),
        topology=topology,
        system=system,
        topology_option=topology_option,
        out=_cli_path(config, opt.chaoskit_out) or _ini_path(config, "chaoskit_out"),
        kubeconfig=kubeconfig,
        context=context,
        allow_context=(
            opt.chaoskit_allow_context or os.environ.get("CHAOSKIT_ALLOW_CONTEXT") or None
        ),
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaoskit", "chaoskit (Chaos Toolkit experiment files as tests)")
    group.addoption(
        "--chaoskit-cluster",
        metavar="NAME",
        default=None,
        help="Run against this chaoskit cluster (default: make one from --chaoskit-config "
        f"named {SESSION_CLUSTER!r} and delete it at the end).",
    )
    group.addoption(
        "--chaoskit-config",
        metavar="FILE",
        default=None,
        help=f"kind config of the cluster the session makes (default: {DEFAULT_CONFIG} "
        "in the rootdir).",
    )
    group.addoption(
        "--chaoskit-keep",
        action="store_true",
        default=None,
        help="Keep the cluster the session made (reuse it with --chaoskit-cluster).",
    )
    group.addoption(
        "--chaoskit-seed", metavar="SEED", default=None, help="Seed of the victim choice."
    )
    group.addoption(
        "--chaoskit-namespace",
        dest="chaoskit_namespaces",
        action="append",
        default=None,
        metavar="NS",
        help="Namespace faults and the oracle may touch (repeatable; default: each "
        "experiment's chaoskit_namespaces).",
    )
    group.addoption(
        "--chaoskit-var",
        dest="chaoskit_vars",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="Set a configuration key in every experiment that has it (repeatable).",
    )
    group.addoption(
        "--chaoskit-deploy",
        dest="chaoskit_deploy",
        action="store_true",
        default=None,
        help="Deploy the topology before the first experiment (the default).",
    )
    group.addoption(
        "--no-chaoskit-deploy",
        dest="chaoskit_deploy",
        action="store_false",
        default=None,
        help="Do not deploy: the topology is on the cluster already, or not needed.",
    )
    group.addoption(
        "--chaoskit-topology",
        metavar="NAME|PATH",
        default=None,
        help=f"Topology to deploy (default: {DEFAULT_TOPOLOGY}), or the path of a system "
        "folder (./my-system, with its chaoskit-system.yaml): deployed unless it is Ready "
        "and serving already; fixture chaoskit_system.",
    )
    group.addoption(
        "--chaoskit-out",
        metavar="DIR",
        default=None,
        help="Folder of the result files (default: chaoskit/ under pytest's base temp).",
    )
    group.addoption(
        "--chaoskit-kubeconfig",
        metavar="FILE",
        default=None,
        help="Run against the cluster of this kubeconfig (or CHAOSKIT_KUBECONFIG; no ini "
        "key): chaoskit's kind cluster, or one --chaoskit-allow-context names.",
    )
    group.addoption(
        "--chaoskit-context",
        metavar="NAME",
        default=None,
        help="Kube context to use (or CHAOSKIT_CONTEXT; default: the kubeconfig's current one).",
    )
    group.addoption(
        "--chaoskit-allow-context",
        metavar="NAME",
        default=None,
        help="Act on this kube context although chaoskit did not make it (or "
        "CHAOSKIT_ALLOW_CONTEXT; no ini key). The session deploys nothing there: "
        "give --no-chaoskit-deploy.",
    )
    parser.addini("chaoskit_cluster", "See --chaoskit-cluster.", type="string", default="")
    parser.addini("chaoskit_config", "See --chaoskit-config.", type="paths", default=[])
    parser.addini("chaoskit_keep", "See --chaoskit-keep.", type="bool", default=False)
    parser.addini("chaoskit_seed", "See --chaoskit-seed.", type="string", default="")
    parser.addini("chaoskit_namespaces", "See --chaoskit-namespace.", type="args", default=[])
    parser.addini("chaoskit_vars", "See --chaoskit-var (KEY=VALUE ...).", type="args", default=[])
    parser.addini("chaoskit_deploy", "See --chaoskit-deploy.", type="bool", default=True)
    parser.addini("chaoskit_topology", "See --chaoskit-topology.", type="string", default="")
    parser.addini("chaoskit_out", "See --chaoskit-out.", type="paths", default=[])


# --------------------------------------------------------------------------- what the fixtures give


@dataclass(frozen=True)
class ChaoskitCluster:
    """The session's cluster (fixture ``chaoskit_cluster``)."""

    name: str
    kubeconfig: Path
    created: bool
    """True if this session made it (and deletes it at the end unless --chaoskit-keep)."""
    context: str | None = None
    """The kubeconfig's context; None: its current one."""
    managed: bool = True
    """False for a context chaoskit did not make (--chaoskit-allow-context)."""

    def api(self) -> ApiClient:
        """A Kubernetes API client for the cluster."""
        from chaoskit.cluster.kubeclient import new_client

        return new_client(self.kubeconfig, context=self.context)


@dataclass(frozen=True)
class ChaoskitTopology:
    """The topology on the session's cluster (fixture ``chaoskit_topology``)."""

    name: str
    namespace: str
    cluster: ChaoskitCluster
    ingress: str
    """Base URL of the shop through the ingress, on 127.0.0.1."""
    prometheus: str
    deployed: bool
    """True if this session deployed it; False with --no-chaoskit-deploy."""


@dataclass(frozen=True)
class ChaoskitSystem:
    """The system folder on the session's cluster (fixture ``chaoskit_system``), given as
    ``--chaoskit-topology ./FOLDER``."""

    name: str
    namespaces: tuple[str, ...]
    cluster: ChaoskitCluster
    published: dict[str, str]
    """``http://127.0.0.1:PORT`` of each published Service, by its publish name."""
    spec: SystemSpec
    """The checked system file (``spec.folder``, ``spec.invariants``, ...)."""
    deployed: bool
    """True if this session deployed it; False if it was Ready and serving already, or
    with --no-chaoskit-deploy."""
    since: float = field(default_factory=time.time)
    """When the session had it serving: the default start of the invariants' window."""

    def check_invariants(
        self,
        *,
        phase: Phase = "after",
        since: float | None = None,
        acknowledged: Path | None = None,
    ) -> list[CheckOutcome]:
        """Runs the system file's invariant checks now, as a suite runs them around a trial
        (each in a process of its own, under its timeout), given the published URLs, the
        cluster's kubeconfig and the window from ``since`` (default: :attr:`since`) to now;
        an outcome per check, none raising."""
        from chaoskit.system.checks import run_checks
        from chaoskit.system.invariants import InvariantInput, Window

        now = time.time()
        if phase == "before":  # as around a trial: both ends are its start
            start = now if since is None else since
            window = Window(start, start)
        else:
            window = Window(min(now, self.since if since is None else since), now)
        given = InvariantInput(
            phase=phase,
            window=window,
            published=dict(self.published),
            acknowledged=acknowledged,
            kubeconfig=self.cluster.kubeconfig,
        )
        return run_checks(self.spec.invariants, given, folder=self.spec.folder)

    def assert_invariants(
        self,
        *,
        phase: Phase = "after",
        since: float | None = None,
        acknowledged: Path | None = None,
    ) -> list[CheckOutcome]:
        """:meth:`check_invariants`, failing the test (one line per check that found a
        violation or errored) unless every check passed; the outcomes otherwise."""
        outcomes = self.check_invariants(phase=phase, since=since, acknowledged=acknowledged)
        failed = [o.summary() for o in outcomes if o.errored or o.violated]
        if failed:
            pytest.fail(
                f"system {self.name!r}: invariants ({phase}) did not hold:\n"
                + "\n".join(f"  {line}" for line in failed),
                pytrace=False,
            )
        return outcomes


# --------------------------------------------------------------------------- the session


class _TerminalProgress:
    """chaoskit's Progress as lines on pytest's terminal, also while output is captured."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def _write(self, line: str) -> None:
        reporter: Any = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            logger.info("%s", line)
            return
        capman: Any = self._config.pluginmanager.get_plugin("capturemanager")
        uncaptured: AbstractContextManager[None] = (
            capman.global_and_fixture_disabled() if capman is not None else nullcontext()
        )
        with uncaptured:
            reporter.write_line(f"chaoskit: {line}")

    @contextmanager
    def task(self, description: str) -> Iterator[None]:
        started = time.monotonic()
        self._write(f"{description} ...")
        try:
            yield
        except BaseException:
            self._write(f"{description}: failed")
            raise
        self._write(f"{description}: done ({time.monotonic() - started:.0f} s)")

    def note(self, message: str) -> None:
        self._write(message)


class ChaoskitSession:
    """What one pytest session shares: options, the cluster, the topology, the results."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.progress = _TerminalProgress(config)
        self.collected: list[Path] = []
        self.configuration_keys: set[str] = set()
        self.collection_failed = False
        self.results: list[Path] = []
        self._cluster: ChaoskitCluster | None = None
        self._target: Topology | SystemSpec | None = None
        self._deployment: ChaoskitTopology | ChaoskitSystem | None = None
        self._failures: dict[str, BaseException] = {}
        self._out: Path | None = None

    def cluster(self) -> ChaoskitCluster:
        if self._cluster is None:
            self._cluster = self._once("cluster", self._make_cluster)
        return self._cluster

    def target(self) -> Topology | SystemSpec:
        """The topology, or the checked system file, that ``--chaoskit-topology`` names
        (read before any cluster is made: a bad file costs no cluster)."""
        if self._target is None:
            self._target = self._once("target", self._find_target)
        return self._target

    def deployment(self) -> ChaoskitTopology | ChaoskitSystem:
        """The topology or system on the session's cluster, deployed as the options say."""
        if self._deployment is None:
            target = self.target()
            cluster = self.cluster()
            self._deployment = self._once("deployment", lambda: self._deploy(cluster, target))
        return self._deployment

    def topology(self) -> ChaoskitTopology:
        if self.options.system is not None:
            raise _one_line(
                f"{self.options.topology_option} {self.options.topology}: the session's "
                "topology is a system folder: ask for chaoskit_system, not chaoskit_topology"
            )
        deployment = self.deployment()
        assert isinstance(deployment, ChaoskitTopology)  # a topology's name makes one
        return deployment

    def system(self) -> ChaoskitSystem:
        if self.options.system is None:
            raise _one_line(
                "chaoskit_system: the session has no system folder: give --chaoskit-topology "
                "./FOLDER (or the ini key chaoskit_topology), a folder with chaoskit-system.yaml"
            )
        deployment = self.deployment()
        assert isinstance(deployment, ChaoskitSystem)  # options.system makes one
        return deployment

    def namespaces(self) -> tuple[str, ...]:
        """The namespaces of every run: ``--chaoskit-namespace``, else a system's own, else
        none (each experiment's own ``chaoskit_namespaces``)."""
        from chaoskit.system.spec import SystemSpec

        if self.options.namespaces or self.options.system is None:
            return self.options.namespaces
        target = self.target()
        return target.namespaces if isinstance(target, SystemSpec) else ()

    def _once(self, what: str, make: Callable[[], T]) -> T:
        """``make()``; once it failed, every later call fails the same way without a retry
        (a cluster takes minutes to make). chaoskit's own errors are one line, no traceback."""
        failed = self._failures.get(what)
        if failed is not None:
            raise failed
        try:
            value = make()
        except ChaoskitError as e:
            error: BaseException = pytest.fail.Exception(f"chaoskit: {e}", pytrace=False)
        except Exception as e:
            self._failures[what] = e
            raise
        else:
            return value
        self._failures[what] = error
        raise error  # outside the handler: no chained traceback

    def _make_cluster(self) -> ChaoskitCluster:
        from chaoskit import provision
        from chaoskit.cluster import lifecycle
        from chaoskit.cluster.config import load_config
        from chaoskit.settings import Settings

        settings = Settings.from_env()
        if self.options.elsewhere:
            return self._reach_cluster(settings)
        name = self.options.cluster
        if name is not None:
            info = lifecycle.recorded(settings, name)
            if info is None or not Path(info.kubeconfig).is_file():
                raise InvalidInput(
                    f"--chaoskit-cluster {name!r}: no chaoskit cluster of that name: create "
                    f"it with 'chaoskit cluster up --name {name}', or leave the option out "
                    "and the session makes one"
                )
            return ChaoskitCluster(name, Path(info.kubeconfig), created=False)

        checked = load_config(self.options.config)
        name = SESSION_CLUSTER
        try:
            made = provision.provide_cluster(
                settings,
                checked,
                name=name,
                mode=provision.NEW,
                progress=self.progress,
                timeout=TIMEOUT,
            )
        except lifecycle.ClusterExists:
            raise InvalidInput(
                f"a kind cluster named {name!r} exists already (kept by an earlier session?): "
                f"reuse it with --chaoskit-cluster {name}, or delete it with "
                f"'chaoskit cluster down --name {name}'"
            ) from None
        return ChaoskitCluster(name, Path(made.info.kubeconfig), created=True)

    def _reach_cluster(self, settings: Settings) -> ChaoskitCluster:
        """The cluster --chaoskit-kubeconfig/--chaoskit-context name, checked as
        ``chaoskit run`` checks it (chaoskit's kind cluster, or an allowed context)."""
        from chaoskit.faults.target import resolve_target

        options = self.options
        target = resolve_target(
            settings,
            kubeconfig=options.kubeconfig,
            context=options.context,
            allow_context=options.allow_context,
        )
        return ChaoskitCluster(
            target.cluster,
            target.kubeconfig,
            created=False,
            context=target.context,
            managed=target.managed,
        )

    def _find_target(self) -> Topology | SystemSpec:
        from chaoskit.system.spec import load_system
        from chaoskit.topology.catalog import find_topology

        options = self.options
        if options.system is None:
            return find_topology(options.topology)
        if not options.system.exists():
            raise InvalidInput(
                f"{options.topology_option} {options.topology}: no such system folder: "
                f"{options.system}"
            )
        return load_system(options.system)  # names the system file, the field, the reason

    def _deploy(
        self, cluster: ChaoskitCluster, target: Topology | SystemSpec
    ) -> ChaoskitTopology | ChaoskitSystem:
        from chaoskit import provision
        from chaoskit.cluster.access import access
        from chaoskit.settings import Settings
        from chaoskit.topology.catalog import Topology

        is_topology = isinstance(target, Topology)
        if not cluster.managed:
            # Deploying loads images with kind, and the URLs are kind's host ports.
            what = "topology" if is_topology else "system"
            raise InvalidInput(
                f"--chaoskit-allow-context {cluster.context}: the {what} is deployed and "
                "reached only on chaoskit's own kind clusters: give --no-chaoskit-deploy "
                f"(it must be there already) and do not ask for chaoskit_{what}"
            )
        settings = Settings.from_env()
        if not self.options.deploy:
            mode = provision.REACH
        else:
            # A system serving already is kept; the topology is applied again, as always.
            mode = provision.DEPLOY if is_topology else provision.KEEP
        on = provision.provide_deployment(
            settings,
            access(settings, cluster.name),
            target,
            mode=mode,
            progress=self.progress,
            timeout=TIMEOUT if is_topology else None,
        )
        if isinstance(target, Topology):
            return ChaoskitTopology(
                name=target.name,
                namespace=target.namespace,
                cluster=cluster,
                ingress=on.ingress,
                prometheus=on.published["prometheus"],
                deployed=on.applied,
            )
        if not on.applied and self.options.deploy:
            self.progress.note(f"system {target.name!r} is Ready and serving: kept")
        return ChaoskitSystem(
            name=target.name,
            namespaces=target.namespaces,
            cluster=cluster,
            published=dict(on.published),
            spec=target,
            deployed=on.applied,
        )

    def out_dir(self) -> Path:
        if self._out is None:
            if self.options.out is not None:
                self._out = self.options.out
            else:
                # pytest's tmp_path_factory, as its tmp_path fixture reaches it.
                factory: pytest.TempPathFactory = self.config._tmp_path_factory  # type: ignore[attr-defined]
                self._out = factory.getbasetemp() / "chaoskit"
            self._out.mkdir(parents=True, exist_ok=True)
        return self._out

    def result_path(self, experiment: Path) -> Path:
        try:
            relative = experiment.relative_to(self.config.rootpath)
        except ValueError:
            relative = Path(experiment.name)
        return self.out_dir() / relative.with_suffix(".json")

    def kept_cluster(self) -> str | None:
        """The name of the cluster the session made and keeps, if it does."""
        cluster = self._cluster
        if cluster is not None and cluster.created and self.options.keep:
            return cluster.name
        return None

    def finish(self) -> None:
        """Deletes the cluster the session made, unless it is to be kept."""
        cluster = self._cluster
        if cluster is None or not cluster.created or self.options.keep:
            return
        from chaoskit import provision
        from chaoskit.settings import Settings

        try:
            provision.delete_cluster(Settings.from_env(), cluster.name, progress=self.progress)
        except ChaoskitError as e:
            self.progress.note(f"could not delete cluster {cluster.name!r}: {e}")


def _one_line(message: str) -> BaseException:
    """A failure of a fixture or item shown as ``chaoskit: MESSAGE``, no traceback."""
    return pytest.fail.Exception(f"chaoskit: {message}", pytrace=False)


_SESSION = pytest.StashKey[ChaoskitSession]()


def _session(config: pytest.Config) -> ChaoskitSession:
    return config.stash[_SESSION]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = ChaoskitSession(config, read_options(config))


def pytest_sessionfinish(session: pytest.Session) -> None:
    chaoskit = session.config.stash.get(_SESSION, None)
    if chaoskit is not None:
        chaoskit.finish()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    chaoskit = config.stash.get(_SESSION, None)
    if chaoskit is None or not chaoskit.results:
        return
    terminalreporter.write_sep("-", "chaoskit")
    terminalreporter.write_line(f"results: {chaoskit.out_dir()}")
    kept = chaoskit.kept_cluster()
    if kept is not None:
        terminalreporter.write_line(
            f"cluster {kept!r} kept: reuse it with --chaoskit-cluster {kept}"
        )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chaoskit_cluster(pytestconfig: pytest.Config) -> ChaoskitCluster:
    """The session's chaoskit cluster: ``--chaoskit-cluster NAME``, or one the session
    makes from ``--chaoskit-config`` (deleted at the end unless ``--chaoskit-keep``)."""
    return _session(pytestconfig).cluster()


@pytest.fixture(scope="session")
def chaoskit_topology(pytestconfig: pytest.Config) -> ChaoskitTopology:
    """The topology on the session's cluster, deployed and serving (unless
    ``--no-chaoskit-deploy``, which assumes it is there already)."""
    return _session(pytestconfig).topology()


@pytest.fixture(scope="session")
def chaoskit_system(pytestconfig: pytest.Config) -> ChaoskitSystem:
    """The system folder that ``--chaoskit-topology ./FOLDER`` names, on the session's
    cluster: kept when it is Ready and serving, deployed otherwise (``--no-chaoskit-deploy``:
    assumed there). Its published URLs, namespaces, and its invariant checks
    (``check_invariants()``, ``assert_invariants()``)."""
    return _session(pytestconfig).system()


# --------------------------------------------------------------------------- collection


def _in_suites_dir(path: Path, rootpath: Path) -> bool:
    try:
        folders = path.relative_to(rootpath).parts[:-1]
    except ValueError:
        folders = path.parts[-2:-1]
    return SUITES_DIR in folders


def _sniff(path: Path) -> tuple[bool, dict[str, Any] | None]:
    """(is it an experiment, its document): a mapping with ``title`` and ``method``; a file
    that cannot be parsed but has both keys at its top is one too, with no document."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False, None
    if "title" not in text or "method" not in text:
        return False, None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError):
        keys = (_JSON_KEYS if path.suffix == ".json" else _YAML_KEYS).findall(text)
        return set(keys) == {"title", "method"}, None
    if isinstance(doc, dict) and "title" in doc and "method" in doc:
        return True, doc
    return False, None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ExperimentFile | None:
    if file_path.suffix not in SUFFIXES or _in_suites_dir(file_path, parent.config.rootpath):
        return None
    is_experiment, doc = _sniff(file_path)
    if not is_experiment:
        return None
    return ExperimentFile.from_parent(parent, path=file_path, document=doc)


def pytest_collection_finish(session: pytest.Session) -> None:
    chaoskit = session.config.stash[_SESSION]
    if not chaoskit.collected or chaoskit.collection_failed:
        return
    unused = sorted(set(chaoskit.options.variables) - chaoskit.configuration_keys)
    if unused:
        keys = sorted(k for k in chaoskit.configuration_keys if not k.startswith("chaoskit_"))
        raise pytest.UsageError(
            f"--chaoskit-var {', '.join(unused)}: no collected experiment has such a "
            f"configuration key (keys: {', '.join(keys) or 'none'})"
        )


class ExperimentFile(pytest.File):
    """A Chaos Toolkit experiment file: checked as ``chaoskit validate`` does, one item."""

    def __init__(self, *, document: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.document = document

    def _shown(self) -> Path:
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path

    def collect(self) -> Iterator[ExperimentItem]:
        from chaoskit.ctk.experiment import check_experiment, load_experiment

        chaoskit = _session(self.config)
        try:
            doc = self.document if self.document is not None else load_experiment(self.path)
            check_experiment(self._shown(), doc)
        except InvalidConfig as e:
            chaoskit.collection_failed = True
            where = f"{self._shown()}: {e.field}" if e.field else str(self._shown())
            raise self.CollectError(f"{where}: {e.reason}") from e
        except InvalidInput as e:
            chaoskit.collection_failed = True
            raise self.CollectError(str(e)) from e
        keys = frozenset(str(k) for k in doc.get("configuration") or {})
        chaoskit.collected.append(self.path)
        chaoskit.configuration_keys |= keys
        yield ExperimentItem.from_parent(
            self, name=self.path.stem, title=str(doc["title"]), configuration_keys=keys
        )


# --------------------------------------------------------------------------- items


class ExperimentFailed(Exception):
    """The run did not complete, or its steady state deviated."""

    def __init__(self, shown: Path, outcome: RunOutcome) -> None:
        super().__init__(f"{shown}: {outcome.status}")
        self.shown = shown
        self.outcome = outcome

    def describe(self) -> str:
        from chaoskit.ctk.summary import failures, lines

        outcome = self.outcome
        state = "deviated: the steady state did not hold" if outcome.deviated else outcome.status
        out = [f"experiment {self.shown}: {state}"]
        out += [f"failed: {line}" for line in failures(outcome.journal)]
        out += lines(outcome.chaoskit)
        out.append(f"result: {outcome.output}")
        return "\n".join(out)


@contextmanager
def _chaostoolkit_at_info() -> Iterator[None]:
    """Chaos Toolkit's account of the run (as ``chaoskit run`` shows it) in the captured
    log of each item."""
    log = logging.getLogger("chaostoolkit")
    previous = log.level
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.setLevel(previous)


class ExperimentItem(pytest.Item):
    """One run of an experiment file against the session's cluster."""

    def __init__(self, *, title: str, configuration_keys: frozenset[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.configuration_keys = configuration_keys

    def _shown(self) -> Path:
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path

    def setup(self) -> None:
        chaoskit = _session(self.config)
        if chaoskit.options.system is not None:
            chaoskit.target()  # a bad system file before any cluster is made
        chaoskit.cluster()
        if chaoskit.options.deploy:
            chaoskit.deployment()

    def runtest(self) -> None:
        from chaoskit.ctk.experiment import run_experiment_file
        from chaoskit.ctk.summary import lines

        chaoskit = _session(self.config)
        options = chaoskit.options
        output = chaoskit.result_path(self.path)
        with _chaostoolkit_at_info():
            outcome = run_experiment_file(
                self.path,
                output=output,
                cluster=chaoskit.cluster().name,
                kubeconfig=options.kubeconfig,
                context=options.context,
                allow_context=options.allow_context,
                namespaces=chaoskit.namespaces(),
                seed=options.seed,
                variables={
                    k: v for k, v in options.variables.items() if k in self.configuration_keys
                },
            )
        chaoskit.results.append(outcome.output)
        self.user_properties.append(("chaoskit_result", str(outcome.output)))
        if not outcome.ok:
            raise ExperimentFailed(self._shown(), outcome)
        # What a failure shows anyway; for a pass, with -rP.
        self.add_report_section("call", "chaoskit", "\n".join(lines(outcome.chaoskit)))

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ExperimentFailed):
            return excinfo.value.describe()
        if isinstance(excinfo.value, ChaoskitError):
            return f"chaoskit: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
