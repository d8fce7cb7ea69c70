"""The ``chaoskit`` command line: a thin layer over the packages below it.

Only this module configures logging and turns errors into exit codes; nothing else in
chaoskit imports it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler

from chaoskit import __version__
from chaoskit._richprogress import RichProgress
from chaoskit.cluster.config import DEFAULT_NAME
from chaoskit.errors import ChaoskitError
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from chaoskit.agent.client import Orders
    from chaoskit.cluster.kind import Kind
    from chaoskit.faults.agentnodes import OrphanReport
    from chaoskit.images.factory import ImageSet, Source

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)


class _State:
    debug: bool = False


_state = _State()


def _configure_logging(debug: bool, verbose: int) -> None:
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err_console, show_path=debug, rich_tracebacks=debug)],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="chaoskit")
@click.option(
    "--debug", is_flag=True, envvar="CHAOSKIT_DEBUG", help="Show tracebacks and debug logs."
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Chaos and resilience testing for Kubernetes on kind.

    Every option can also be set as CHAOSKIT_<COMMAND>_<OPTION> in the environment.
    """
    _state.debug = debug
    _configure_logging(debug, verbose)
    ctx.obj = Settings.from_env()


def _progress() -> RichProgress:
    return RichProgress(err_console)


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _source(value: str) -> Source:
    from chaoskit.images.factory import parse_source

    return parse_source(value)


def build_images(settings: Settings, *, source: Source, progress: RichProgress) -> ImageSet:
    from chaoskit.engine.docker import ensure_engine
    from chaoskit.images.factory import build_all

    with progress.task("Docker engine"):
        ensure_engine(settings.log_dir / "engine")
    return build_all(settings, source=source, progress=progress)


def _kind(settings: Settings) -> Kind:
    from chaoskit.cluster.kind import Kind
    from chaoskit.images.factory import kind_binary

    return Kind.find(kind_binary(settings))


# --------------------------------------------------------------------------- images


@cli.group()
def images() -> None:
    """Build the images and tools kind clusters need (cached by version)."""


@images.command("build")
@click.option(
    "--source",
    type=click.Choice(["auto", "local", "upstream"]),
    default="auto",
    show_default=True,
    help="local: build everything from package registries; upstream: pull kind's images; "
    "auto: upstream where a container registry answers, else local.",
)
@click.pass_context
def images_build(ctx: click.Context, source: str) -> None:
    """Build kind, Kubernetes, etcd, CoreDNS, the CNI and the node image."""
    settings = _settings(ctx)
    result = build_images(settings, source=_source(source), progress=_progress())
    click.echo(f"node image: {result.node} ({result.source})")
    click.echo(f"cache: {settings.cache_dir}")


# --------------------------------------------------------------------------- cluster

NAME_OPTION = click.option(
    "--name",
    default=None,
    help="Cluster name (default: the config's name, else 'chaoskit').",
)


@cli.group()
def cluster() -> None:
    """Bring kind clusters up and down and show their state."""


@cluster.command("up")
@NAME_OPTION
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("kind-config.yaml"),
    show_default=True,
    help="kind cluster config.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "local", "upstream"]),
    default="auto",
    show_default=True,
    help="Node image: built here from package registries, or kind's upstream image.",
)
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to wait.")
@click.pass_context
def cluster_up(
    ctx: click.Context, name: str | None, config: Path, source: str, timeout: float
) -> None:
    """Create a kind cluster and wait until it is Ready."""
    from chaoskit import provision
    from chaoskit.cluster import lifecycle
    from chaoskit.cluster.config import load_config

    settings = _settings(ctx)
    checked = load_config(config)
    made = provision.provide_cluster(
        settings,
        checked,
        name=lifecycle.resolve_name(name, checked),
        mode=provision.NEW,
        progress=_progress(),
        source=_source(source),
        timeout=timeout,
    )
    info, health = made.info, made.health
    assert health is not None  # made now: its health was waited for
    click.echo(f"cluster {info.name!r} is Ready ({info.create_seconds:.0f} s)")
    for node in health.nodes:
        click.echo(f"  {node.name:32} {node.role:14} {node.kubelet_version:9} {node.internal_ip}")
    ready = sum(p.ready for p in health.system_pods)
    click.echo(f"  kube-system pods Ready: {ready}/{len(health.system_pods)}")
    click.echo(f"  kubeconfig: {info.kubeconfig}")
    click.echo(f"  export KUBECONFIG={info.kubeconfig}")


@cluster.command("down")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Cluster name.")
@click.option("--force", is_flag=True, help="Delete it even if chaoskit did not make it.")
@click.pass_context
def cluster_down(ctx: click.Context, name: str, force: bool) -> None:
    """Delete a kind cluster chaoskit made and everything chaoskit kept for it."""
    from chaoskit.cluster import lifecycle

    settings = _settings(ctx)
    lifecycle.check_name(name)
    with _progress().task(f"deleting cluster {name!r}"):
        removed = lifecycle.down(settings, _kind(settings), name, force=force)
    click.echo(f"cluster {name!r} deleted" if removed else f"no cluster named {name!r}")


@cluster.command("status")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Cluster name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def cluster_status(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show the nodes and system pods of a cluster (exit 1 if it is not Ready)."""
    from chaoskit.cluster import lifecycle

    settings = _settings(ctx)
    lifecycle.check_name(name)
    result = lifecycle.status(settings, _kind(settings), name)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif not result["exists"]:
        click.echo(f"no cluster named {name!r}")
    else:
        state = "Ready" if result.get("ready") else "NOT Ready"
        click.echo(f"cluster {name!r}: {state} (API {result.get('api', 'unknown')})")
        for node in result.get("nodes", []):
            ready = "Ready" if node["ready"] else "NotReady"
            click.echo(f"  {node['name']:32} {node['role']:14} {ready:9} {node['kubelet_version']}")
        pods = result.get("system_pods", [])
        if pods:
            click.echo(f"  kube-system pods Ready: {sum(p['ready'] for p in pods)}/{len(pods)}")
        if result.get("kubeconfig"):
            click.echo(f"  kubeconfig: {result['kubeconfig']}")
    if not result.get("ready"):
        sys.exit(1)


@cluster.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def cluster_list(ctx: click.Context, as_json: bool) -> None:
    """List kind clusters on this Docker engine."""
    from chaoskit.cluster import lifecycle

    settings = _settings(ctx)
    clusters = lifecycle.list_clusters(settings, _kind(settings))
    if as_json:
        click.echo(json.dumps(clusters, indent=2))
        return
    if not clusters:
        click.echo("no kind clusters")
    for item in clusters:
        marker = "chaoskit" if item["managed_by_chaoskit"] else "not chaoskit's"
        click.echo(f"{item['name']}\t({marker})")


# --------------------------------------------------------------------------- agent


@cli.group()
def agent() -> None:
    """The node agent: a DaemonSet that applies fault orders below the API (in progress)."""


AGENT_CLUSTER = click.option(
    "--cluster", "cluster_name", default=DEFAULT_NAME, show_default=True, help="Cluster name."
)


@agent.command("install")
@AGENT_CLUSTER
@click.option("--timeout", type=float, default=120, show_default=True, help="Seconds to wait.")
@click.pass_context
def agent_install(ctx: click.Context, cluster_name: str, timeout: float) -> None:
    """Build the agent's image, load it, apply it, wait until it is Ready on every node."""
    from chaoskit.agent.install import install
    from chaoskit.cluster.access import access

    settings = _settings(ctx)
    result = install(
        settings, access(settings, cluster_name), progress=_progress(), timeout=timeout
    )
    click.echo(
        f"agent {result.image} Ready on {len(result.nodes)} node(s) of cluster "
        f"{cluster_name!r} in {result.seconds:.1f} s"
    )


@agent.command("status")
@AGENT_CLUSTER
@click.pass_context
def agent_status(ctx: click.Context, cluster_name: str) -> None:
    """Show the agent on each node and its orders (exit 1 if it is not Ready everywhere)."""
    from chaoskit.agent.client import Orders
    from chaoskit.agent.install import installed, node_agents
    from chaoskit.cluster.access import access
    from chaoskit.cluster.health import api_client

    api = api_client(access(_settings(ctx), cluster_name).kubeconfig)
    if not installed(api):
        click.echo(f"the agent is not installed on cluster {cluster_name!r}")
        sys.exit(1)
    agents = node_agents(api)
    for item in agents:
        state = "Ready" if item.ready else f"NOT Ready: {item.reason}"
        click.echo(f"  {item.node:32} {item.pod or '-':28} {state}")
    for order in Orders(api).list():
        click.echo(f"  order {order.name} on {order.node}: {order.fault} {order.phase}")
    if not all(a.ready for a in agents):
        sys.exit(1)


@agent.command("remove")
@AGENT_CLUSTER
@click.pass_context
def agent_remove(ctx: click.Context, cluster_name: str) -> None:
    """Undo every order still in force, then delete the agent and its CRD and wait."""
    from chaoskit.agent.install import remove
    from chaoskit.cluster.access import access

    settings = _settings(ctx)
    removed = remove(settings, access(settings, cluster_name), progress=_progress())
    click.echo("agent removed" if removed else f"no agent on cluster {cluster_name!r}")


# --------------------------------------------------------------------------- deploy


@cli.command("deploy")
@click.argument("system", required=False, type=click.Path(path_type=Path))
@click.option(
    "--topology",
    default="ecommerce",
    show_default=True,
    help="What to deploy: a topology's name, or the path of a system folder.",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Cluster name.")
@click.option("--check", is_flag=True, help="Only verify a deployed topology.")
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds to wait (default: 600; a system's own wait.timeout).",
)
@click.pass_context
def deploy_cmd(
    ctx: click.Context,
    *,
    system: Path | None,
    topology: str,
    name: str,
    check: bool,
    timeout: float | None,
) -> None:
    """Deploy a topology, wait until it is Ready and an order flows end to end; or deploy
    SYSTEM, a folder with a chaoskit-system.yaml (docs/system-file.md)."""
    from chaoskit import provision
    from chaoskit.cluster.access import access
    from chaoskit.system.spec import is_system_path, load_system
    from chaoskit.topology.catalog import find_topology

    settings = _settings(ctx)
    if system is None and is_system_path(topology):
        system = Path(topology)
    target = load_system(system) if system is not None else find_topology(topology)
    on = provision.provide_deployment(
        settings,
        access(settings, name),
        target,
        mode=provision.CHECK if check else provision.DEPLOY,
        progress=_progress(),
        timeout=timeout,
    )
    if on.is_system:
        if check:
            click.echo(f"system {on.name!r} on cluster {name!r} is Ready")
        else:
            click.echo(f"system {on.name!r} deployed on cluster {name!r} in {on.seconds:.0f} s")
        for publish, url in on.published.items():
            click.echo(f"  {publish}: {url}")
        return
    verb = "serves" if check else f"deployed in {on.seconds:.0f} s and serves"
    click.echo(f"topology {on.name!r} on cluster {name!r} {verb}")
    click.echo(f"  shop (ingress): {on.ingress}")
    click.echo(f"  prometheus:     {on.prometheus}")
    click.echo(f"  end-to-end order: {on.order_id}")


# ---- load


@cli.group()
def load() -> None:
    """Run Locust load profiles (loadprofiles/) against the shop, headless and bounded."""


PROFILES_OPTION = click.option(
    "--profiles",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of load profiles (default: ./loadprofiles).",
)


@load.command("list")
@PROFILES_OPTION
def load_list(profiles: Path | None) -> None:
    """List the load profiles."""
    from chaoskit.load.profiles import default_profiles_dir, list_profiles

    folder = profiles or default_profiles_dir()
    for name in list_profiles(folder):
        click.echo(name)


@load.command("run")
@click.argument("profile")
@click.option(
    "--host",
    default=None,
    help="Base URL of the shop, e.g. http://127.0.0.1:PORT (default with --cluster: its "
    "ingress; for pods, its in-cluster URL).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    required=True,
    help="Seconds the profile runs; it stops by itself.",
)
@click.option(
    "--users", type=click.IntRange(min=1), default=50, show_default=True, help="Peak users."
)
@click.option(
    "--spawn-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Users started per second (default: the peak within about 4 s).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Locust workers under one master (0: a single process).",
)
@click.option(
    "--worker-mode",
    type=click.Choice(["local", "pods"]),
    default="local",
    show_default=True,
    help="local: worker processes on this machine; pods: worker pods inside --cluster, "
    "their master on this machine.",
)
@click.option(
    "--cluster",
    default=None,
    help="The chaoskit cluster whose shop is loaded (and where worker pods run).",
)
@click.option(
    "--think-time",
    type=click.FloatRange(min=0),
    default=None,
    help="Mean seconds between a user's actions (profile default 1; 0: no pause).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the time series, the acknowledged orders and Locust's files "
    "(default: reports/load/<run id>).",
)
@PROFILES_OPTION
@click.pass_context
def load_run(
    ctx: click.Context,
    *,
    profile: str,
    host: str | None,
    duration: float,
    users: int,
    spawn_rate: float | None,
    workers: int,
    worker_mode: str,
    cluster: str | None,
    think_time: float | None,
    out: Path | None,
    profiles: Path | None,
) -> None:
    """Run a load profile on its own and summarise what it measured."""
    from chaoskit.faults import signals
    from chaoskit.load.profiles import find_profile
    from chaoskit.load.runner import LoadRun, LoadSpec, write_outputs
    from chaoskit.topology.client import new_run_id

    settings = _settings(ctx)
    locustfile = find_profile(profile, profiles)
    run_id = new_run_id()
    host = host or _load_target(settings, worker_mode, cluster)
    spec = LoadSpec(
        profile=locustfile,
        host=host,
        duration=duration,
        users=users,
        spawn_rate=spawn_rate,
        workers=workers,
        worker_mode="pods" if worker_mode == "pods" else "local",
        cluster=cluster,
        think_time=think_time,
        out_dir=out or Path("reports") / "load" / run_id,
        run_id=run_id,
    )
    spec.validate()
    if worker_mode == "pods":
        processes = f"master + {workers} worker pods in cluster {cluster}"
    else:
        processes = f"master + {workers} workers" if workers else "one Locust process"
    progress = _progress()
    with signals.terminate_raises():
        run = LoadRun(spec, settings=settings, progress=progress).start()
        with progress.task(
            f"{locustfile.stem}: {users} users against {host} for {duration:g} s ({processes})"
        ):
            result = run.wait()
    paths = write_outputs(result)
    total = result.stats.total
    share = 100 * total.failures / total.requests if total.requests else 0.0
    click.echo(f"load run {run_id}: {locustfile.stem} against {host}")
    click.echo(
        f"  requests {total.requests}, failures {total.failures} ({share:.2f} %), "
        f"{total.rps:.1f} req/s"
    )
    click.echo(f"  p50 {total.p50_ms:.0f} ms, p95 {total.p95_ms:.0f} ms, p99 {total.p99_ms:.0f} ms")
    for e in result.stats.endpoints[:-1]:
        click.echo(
            f"    {e.endpoint:24} {e.requests:7} req {e.failures:6} failed "
            f"{e.rps:7.1f}/s  p50 {e.p50_ms:5.0f}  p95 {e.p95_ms:5.0f}  p99 {e.p99_ms:5.0f} ms"
        )
    click.echo(f"  acknowledged orders: {len(result.orders.acks)}")
    for failure, count in result.orders.failures.most_common(5):
        click.echo(f"    {count:6} x {failure}")
    click.echo(f"  time series: {paths['timeseries']}")
    click.echo(f"  acks:        {paths['acks']}")
    click.echo(f"  summary:     {paths['summary']}")


def _load_target(settings: Settings, worker_mode: str, cluster: str | None) -> str:
    """Where load goes without --host: the shop of --cluster, as the workers reach it."""
    if worker_mode == "pods":
        from chaoskit.load.pods import IN_CLUSTER_SHOP

        return IN_CLUSTER_SHOP
    if cluster is None:
        from chaoskit.errors import InvalidInput

        raise InvalidInput("--host: give the shop's URL, or --cluster to load its shop")
    from chaoskit.cluster.access import access
    from chaoskit.topology.catalog import ECOMMERCE
    from chaoskit.topology.deploy import endpoints

    return endpoints(access(settings, cluster), ECOMMERCE).ingress


# ---- end load


# ---- faults
# Faults, experiments and recovery (issue 5): `run`, `validate`, `recover`, `faults ...`.


def _key_values(option: str, values: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        result[key.strip()] = value
    return result


def _default_output(experiment: Path) -> Path:
    import time as _time

    return Path("reports") / "runs" / f"{experiment.stem}-{_time.strftime('%Y%m%dT%H%M%S')}.json"


def _target_options(func: F) -> F:
    """--kubeconfig, --context, --allow-context: they point chaoskit at a cluster it did not
    make, so only the person running it gives them (here or in the environment), never a
    file (chaoskit.ctk.operator); chaoskit.faults.target.resolve_target checks them."""
    options = [
        click.option(
            "--kubeconfig",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            envvar="CHAOSKIT_KUBECONFIG",
            help="Reach the cluster through this kubeconfig instead of chaoskit's (only here "
            "or in CHAOSKIT_KUBECONFIG, never in an experiment or suite file).",
        ),
        click.option(
            "--context",
            default=None,
            metavar="NAME",
            envvar="CHAOSKIT_CONTEXT",
            help="Kube context of the kubeconfig to use (default: its current context; only "
            "here or in CHAOSKIT_CONTEXT).",
        ),
        click.option(
            "--allow-context",
            default=None,
            metavar="NAME",
            envvar="CHAOSKIT_ALLOW_CONTEXT",
            help="Act on this kube context although chaoskit did not make it (only here or "
            "in CHAOSKIT_ALLOW_CONTEXT, never in an experiment or suite file).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@cli.command("run")
@click.argument("experiment", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--cluster",
    default=None,
    help="chaoskit cluster to run against (default: the experiment's chaoskit_cluster, "
    "else 'chaoskit').",
)
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace faults and the oracle may touch (repeatable; default: the "
    "experiment's chaoskit_namespaces, else 'shop').",
)
@click.option("--seed", default=None, help="Seed of the victim choice (default: random, recorded).")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set one of the experiment's configuration keys (repeatable).",
)
@_target_options
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Result file: the journal plus chaoskit's timeline, recovery and verdicts "
    "(default: reports/runs/<experiment>-<time>.json).",
)
def run_cmd(
    *,
    experiment: Path,
    cluster: str | None,
    namespaces: tuple[str, ...],
    seed: str | None,
    variables: tuple[str, ...],
    allow_context: str | None,
    kubeconfig: Path | None,
    context: str | None,
    output: Path | None,
) -> None:
    """Run a Chaos Toolkit experiment file with chaoskit's timeline and oracle.

    Exit 0 if the steady state held before and after, 1 if not (or a fault failed, or
    its rollback left something changed), 2 if the file or an argument is wrong.
    """
    from chaoskit.ctk.experiment import run_experiment_file
    from chaoskit.ctk.summary import failures, lines

    logging.getLogger("chaostoolkit").setLevel(logging.INFO)
    outcome = run_experiment_file(
        experiment,
        output=output or _default_output(experiment),
        cluster=cluster,
        namespaces=namespaces,
        seed=seed,
        allow_context=allow_context,
        kubeconfig=kubeconfig,
        context=context,
        variables=_key_values("--var", variables),
    )
    for line in lines(outcome.chaoskit):
        click.echo(line)
    for line in failures(outcome.journal):
        click.echo(f"failed: {line}")
    state = "deviated" if outcome.deviated else outcome.status
    click.echo(f"experiment {experiment}: {state}")
    click.echo(f"result: {outcome.output}")
    if not outcome.ok:
        sys.exit(1)


@cli.command("validate")
@click.argument(
    "experiments", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
def validate_cmd(experiments: tuple[Path, ...]) -> None:
    """Check experiment files without running them (exit 2 naming the first problem)."""
    from chaoskit.ctk.experiment import check_experiment, load_experiment

    for path in experiments:
        check_experiment(path, load_experiment(path))
        click.echo(f"{path}: ok")


# --------------------------------------------------------------------------- init


@cli.command("init")
@click.argument("directory", required=False, default=Path(), type=click.Path(path_type=Path))
@click.option(
    "--folder",
    default=".",
    show_default=True,
    help="The system folder, relative to DIRECTORY: what init looks at, and where the system "
    "file, the suite and the kind config go (everything they name stays inside it).",
)
@click.option("--force", is_flag=True, help="Replace those files where they are already there.")
def init_cmd(directory: Path, folder: str, force: bool) -> None:
    """Write starter files for testing the repository DIRECTORY (default: here).

    From what it finds (a kustomization, else a Helm chart, else a folder of manifests;
    Dockerfiles, namespaces, NodePort Services, a locustfile.py): chaoskit-system.yaml,
    chaoskit-suite.yaml, chaoskit-kind.yaml, chaoskit-checks/example_check.py,
    chaoskit-load/locustfile.py (a starter, when there is no locustfile.py) and
    .github/workflows/chaoskit.yml. Overwrites nothing unless --force; writes all or none.
    Where it cannot tell what goes in a field it writes CHANGE-ME, which suite validate
    refuses until it is replaced.
    """
    import shlex

    from chaoskit.scaffold.files import init_repository

    result = init_repository(directory, folder=folder, force=force)
    for line in result.findings.lines():
        click.echo(f"found: {line}")
    for note in result.findings.notes:
        click.echo(f"note: {note}")
    for path in result.written:
        click.echo(f"wrote: {path}")
    system, suite_file = shlex.quote(str(result.system)), shlex.quote(str(result.suite))
    click.echo(f"next: edit {system}, then: chaoskit suite validate {suite_file}")


# --------------------------------------------------------------------------- suites


@cli.group()
def suite() -> None:
    """Run experiment suites (experiments/suites/): every experiment under load, a report."""


@suite.command("validate")
@click.argument("suite_file", type=click.Path(path_type=Path, dir_okay=False))
def suite_validate(suite_file: Path) -> None:
    """Check a suite and every experiment in it without running anything (exit 2 if wrong)."""
    from chaoskit.suite.runner import check_suite
    from chaoskit.suite.spec import load_suite

    checked = load_suite(suite_file)
    check_suite(checked)
    click.echo(
        f"{suite_file}: ok ({len(checked.experiments)} experiments, {checked.trial_count} trials)"
    )
    if checked.system is not None:
        click.echo(f"  system {checked.system.name!r}: ok ({checked.system.path})")


@suite.command("run")
@click.argument("suite_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--fresh-cluster",
    "mode",
    flag_value="fresh",
    help="Delete the suite's cluster if it exists, create it anew and deploy the topology.",
)
@click.option(
    "--reuse-cluster",
    "mode",
    flag_value="reuse",
    default=True,
    help="Use the suite's cluster and topology when they are there and serve (default); "
    "create or deploy what is missing.",
)
@click.option("--cluster", default=None, help="Cluster name (default: the suite's cluster.name).")
@_target_options
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Run directory (default: reports/<run-id>).",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="EXPERIMENT",
    help="Run only this experiment of the suite (repeatable).",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    metavar="EXPERIMENT",
    help="Leave this experiment of the suite out (repeatable).",
)
@click.pass_context
def suite_run(
    ctx: click.Context,
    *,
    suite_file: Path,
    mode: str,
    cluster: str | None,
    kubeconfig: Path | None,
    context: str | None,
    allow_context: str | None,
    out: Path | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
) -> None:
    """Run a suite and write its report; exit 0 if every trial passed, 1 if not.

    --kubeconfig/--context name the suite's cluster another way: it must be one of
    chaoskit's kind clusters (a suite makes, deploys and measures it through kind)."""
    import dataclasses

    from chaoskit.suite.runner import (
        check_suite,
        finish,
        new_run_id,
        prepare,
        run_suite,
        trial_line,
    )
    from chaoskit.suite.spec import NAME, load_suite, select_experiments

    settings = _settings(ctx)
    checked = load_suite(suite_file)
    if only or skip:
        checked = select_experiments(checked, only=only, skip=skip)
    if cluster is not None:
        if not NAME.fullmatch(cluster):
            raise click.BadParameter(
                f"{cluster!r} must match {NAME.pattern}", param_hint="--cluster"
            )
        checked = dataclasses.replace(checked, cluster_name=cluster)
    if kubeconfig is not None or context is not None:
        checked = dataclasses.replace(
            checked,
            cluster_name=_suite_cluster(
                settings,
                checked.cluster_name,
                cluster=cluster,
                kubeconfig=kubeconfig,
                context=context,
                allow_context=allow_context,
            ),
        )
    check_suite(checked)
    run_id = new_run_id(checked)
    out_dir = out or Path("reports") / run_id
    if out_dir.exists() and any(out_dir.iterdir()):
        raise click.BadParameter(f"{out_dir} is not empty", param_hint="--out")
    # chaostoolkit's own lines (rollbacks requested, ...) would drown the suite's progress
    logging.getLogger("chaostoolkit").setLevel(logging.ERROR)
    progress = _progress()
    started = _time_now()
    prepared = prepare(settings, checked, mode=mode, progress=progress)
    click.echo(
        f"suite {checked.name!r}: {checked.trial_count} trials on cluster "
        f"{prepared.access.name!r}, "
        + (f"system {checked.system.name!r}" if checked.system is not None else "shop")
        + f" at {prepared.ingress}"
    )
    try:
        result = run_suite(
            checked,
            prepared,
            out_dir,
            run_id=run_id,
            progress=progress,
            on_trial=lambda done, total, record: click.echo(
                f"[{done}/{total}] {trial_line(record)}"
            ),
        )
    finally:
        finish(settings, prepared, progress)
    for name, why in result.skipped:
        click.echo(f"skipped {name}: {why}")
    summary = _read_summary(out_dir)
    score = summary.get("score", {}).get("value") if summary else None
    verdict = summary.get("verdict") if summary else ("pass" if result.passed else "fail")
    click.echo(
        f"suite {checked.name!r}: {verdict}"
        + (f", resilience score {score}" if score is not None else "")
        + f" ({_time_now() - started:.0f} s)"
    )
    for kind, path in sorted(result.report.items()):
        click.echo(f"  {kind}: {path}")
    if verdict != "pass":
        sys.exit(1)


def _suite_cluster(
    settings: Settings,
    suite_cluster: str,
    *,
    cluster: str | None,
    kubeconfig: Path | None,
    context: str | None,
    allow_context: str | None,
) -> str:
    """The chaoskit cluster that --kubeconfig/--context name (exit 2 if none does)."""
    from chaoskit.errors import InvalidInput
    from chaoskit.faults.target import resolve_target

    target = resolve_target(
        settings,
        cluster=suite_cluster,
        kubeconfig=kubeconfig,
        context=context,
        allow_context=allow_context,
    )
    if not target.managed:
        # A suite deploys its topology with kind and reaches it through kind's host ports;
        # on another cluster it would fail midway, after changing things.
        raise InvalidInput(
            f"kube context {target.context!r} of {target.kubeconfig}: a suite runs only on "
            "chaoskit's own kind clusters "
            "(it deploys its topology and reaches it through kind); run its experiments "
            f"one by one with 'chaoskit run --kubeconfig ... --allow-context {target.context}'"
        )
    if cluster is not None and cluster != target.cluster:
        raise InvalidInput(
            f"--cluster {cluster}: the kube context {target.context!r} is chaoskit's cluster "
            f"{target.cluster!r}: give one of them"
        )
    return target.cluster


def _time_now() -> float:
    import time as _time

    return _time.monotonic()


def _read_summary(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "summary.json"
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded


def _agent_orders(api: Callable[[], ApiClient]) -> Callable[[], Orders]:
    """The agents' orders of a cluster, reached on first use."""
    from chaoskit.agent.client import Orders

    made: list[Orders] = []

    def orders() -> Orders:
        if not made:
            made.append(Orders(api()))
        return made[0]

    return orders


def _release_orphans(orders: Callable[[], Orders], *, force: bool) -> OrphanReport | None:
    """Releases the orders of dead harnesses; None when the agent is not installed."""
    from chaoskit.agent.install import installed
    from chaoskit.faults.agentnodes import release_orphans

    try:
        if not installed(orders().custom.api_client):
            return None
    except Exception as e:  # noqa: BLE001 - the API is down: the agents undo at expiry anyway
        click.echo(f"agent orders not checked (the API did not answer: {e})", err=True)
        return None
    return release_orphans(orders(), force=force)


def _echo_orphans(orphans: OrphanReport | None) -> list[str]:
    """Prints what recover did with the agents' orders; returns the released ones."""
    if orphans is None:
        return []
    for order in orphans.released:
        click.echo(f"released agent order {order}")
    for order in orphans.failed:
        click.echo(f"FAILED: agent order {order}")
    for order in orphans.skipped:
        click.echo(f"skipped agent order {order} (--force to release anyway)")
    return orphans.released


@cli.command("recover")
@click.option("--cluster", default=DEFAULT_NAME, show_default=True, help="Cluster name.")
@_target_options
@click.option("--force", is_flag=True, help="Also undo runs whose harness still runs.")
@click.option(
    "--timeout",
    type=float,
    default=300,
    show_default=True,
    help="Seconds to wait for every node and kube-system pod to be Ready afterwards.",
)
@click.pass_context
def recover_cmd(
    ctx: click.Context,
    *,
    cluster: str,
    kubeconfig: Path | None,
    context: str | None,
    allow_context: str | None,
    force: bool,
    timeout: float,
) -> None:
    """Undo every fault chaoskit left in place on a cluster (stopped or paused nodes,
    stopped kubelets or containerd, held-down static pods, an unfinished etcd restore).

    On a cluster chaoskit did not make, give the same --kubeconfig, --context and
    --allow-context as the run that left the faults."""
    from chaoskit.cluster import lifecycle
    from chaoskit.cluster.health import api_client, wait_ready
    from chaoskit.faults import signals
    from chaoskit.faults.runner import recover
    from chaoskit.faults.target import Target, resolve_target

    settings = _settings(ctx)
    lifecycle.check_name(cluster)
    target: Target | None = None
    if kubeconfig is not None or context is not None:
        target = resolve_target(
            settings,
            cluster=cluster,
            kubeconfig=kubeconfig,
            context=context,
            allow_context=allow_context,
        )
        cluster = target.cluster
    info = lifecycle.recorded(settings, cluster)
    orders = None
    if target is not None:
        orders = _agent_orders(target.api)
    elif info is not None:
        kubeconfig_path = Path(info.kubeconfig)
        orders = _agent_orders(lambda: api_client(kubeconfig_path))
    with signals.terminate_raises():
        report = recover(
            settings,
            cluster,
            force=force,
            key=target.key if target is not None else None,
            orders=orders,
        )
        orphans = _release_orphans(orders, force=force) if orders is not None else None
    for change in report.undone:
        click.echo(f"undone: {change.undo.description} ({change.fault}, run {change.run_id})")
    for change in report.failed:
        click.echo(f"FAILED: {change.undo.description}: {change.error}")
    for run in report.skipped_runs:
        click.echo(f"skipped run {run}: its harness still runs (--force to undo anyway)")
    released = _echo_orphans(orphans)
    shown = (
        f"context {target.context!r}" if target and not target.managed else f"cluster {cluster!r}"
    )
    if not (report.undone or report.failed or report.skipped_runs or released):
        click.echo(f"nothing to recover on {shown}")
    if report.failed or (orphans is not None and orphans.failed):
        sys.exit(1)
    if not (report.undone or released):
        return
    if target is not None and not target.managed:
        # chaoskit does not know how many nodes a cluster it did not make has: those the
        # API lists must be Ready.
        api, expected = target.api(), 1
    elif info is not None:
        api, expected = api_client(Path(info.kubeconfig)), info.control_planes + info.workers
    else:
        return
    with _progress().task(f"waiting for {shown} to be Ready"):
        wait_ready(api, expected_nodes=expected, timeout=timeout)
    click.echo(f"{shown} is Ready")


@cli.group("faults")
def faults_group() -> None:
    """The faults chaoskit can inject."""


@faults_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def faults_list(as_json: bool) -> None:
    """Every fault with its arguments."""
    from dataclasses import asdict

    from chaoskit.faults import registry
    from chaoskit.faults.params import describe

    items: list[dict[str, Any]] = [
        {
            "name": cls.name,
            "summary": cls.summary,
            "action": cls.action,
            "holds": cls.holds,
            "params": [asdict(p) for p in describe(cls.params_type)],
        }
        for cls in registry.faults()
    ]
    if as_json:
        click.echo(json.dumps(items, indent=2, default=str))
        return
    for item in items:
        click.echo(f"{item['name']}  (action {item['action']}): {item['summary']}")
        for p in item["params"]:
            need = "required" if p["required"] else f"default {p['default']!r}"
            click.echo(f"    {p['name']}: {p['type']}, {need} - {p['help']}")


@faults_group.command("plan")
@click.argument("fault")
@click.option("--cluster", default=DEFAULT_NAME, show_default=True, help="Cluster name.")
@click.option("--seed", default="0", show_default=True, help="Seed of the victim choice.")
@click.option("--namespace", "namespaces", multiple=True, help="Allowlisted namespace.")
@_target_options
@click.option("--set", "arguments", multiple=True, metavar="KEY=VALUE", help="A fault argument.")
@click.pass_context
def faults_plan(
    ctx: click.Context,
    *,
    fault: str,
    cluster: str,
    seed: str,
    namespaces: tuple[str, ...],
    kubeconfig: Path | None,
    context: str | None,
    allow_context: str | None,
    arguments: tuple[str, ...],
) -> None:
    """Show the victims FAULT would hit with this seed, without touching anything (exit 2
    if FAULT cannot act on the target, e.g. a power fault off chaoskit's kind clusters)."""
    from chaoskit.faults.runner import fault_env, plan
    from chaoskit.faults.target import resolve_target

    settings = _settings(ctx)
    target = resolve_target(
        settings,
        cluster=cluster,
        kubeconfig=kubeconfig,
        context=context,
        allow_context=allow_context,
        namespaces=namespaces or None,
    )
    env = fault_env(settings, target, run_id="plan", install_agent=False)
    _, victims = plan(env, fault, _key_values("--set", arguments), seed=seed)
    for victim in victims:
        click.echo(victim.label)


# ---- end faults


# ---- reports
# Resilience reports of a suite's run directory and the CI gate (chaoskit/report).


@cli.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
def report_cmd(run_dir: Path) -> None:
    """Write (again) the reports of a suite's run directory: summary.json, report.html,
    report.md, junit.xml, timeseries.csv (and .parquet with pyarrow)."""
    import time as _time

    from chaoskit.report import render

    started = _time.monotonic()
    paths = render(run_dir)
    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
    click.echo(
        f"run {summary['run_id']}: {summary['verdict']}, resilience score "
        f"{summary['score']['value']} ({summary['totals']['trials']} trials, "
        f"rendered in {_time.monotonic() - started:.2f} s)"
    )
    for kind, path in paths.items():
        click.echo(f"  {kind}: {path}")


@cli.command("gate")
@click.option(
    "--report",
    "report_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Run directory to judge (with its summary.json).",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory to compare with; regressions beyond the tolerance fail.",
)
@click.option(
    "--tolerance",
    default=None,
    metavar="METRIC=AMOUNT,...",
    help="How much worse than the baseline may be: recovery (s), error_rate (percentage "
    "points), score (points); an amount is N, N% of the baseline, or N%+M "
    "(default: recovery=20%+1,error_rate=1,score=5).",
)
def gate_cmd(report_dir: Path, baseline: Path | None, tolerance: str | None) -> None:
    """Pass or fail a run for CI: exit 0 pass, 1 fail (verdict fail or a regression against
    the baseline), 2 error (a missing directory or summary, a bad tolerance)."""
    from chaoskit.report.gate import gate

    result = gate(report_dir, baseline, tolerance)
    for finding in result.findings:
        click.echo(finding.line())
    score = "-" if result.score is None else f"{result.score:g}"
    problems = len(result.failures)
    state = "pass" if result.passed else f"fail ({problems} problem{'s' * (problems != 1)})"
    click.echo(f"gate: {state} (verdict {result.verdict}, score {score})")
    if not result.passed:
        sys.exit(1)


# ---- end reports


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: user errors become one line and an exit code."""
    try:
        cli.main(
            args=argv, prog_name="chaoskit", auto_envvar_prefix="CHAOSKIT", standalone_mode=False
        )
    except click.exceptions.Abort:
        err_console.print("chaoskit: interrupted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except ChaoskitError as e:
        if _state.debug:
            err_console.print_exception()
        err_console.print(f"chaoskit: error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("chaoskit: interrupted")
        sys.exit(130)
    sys.exit(0)
