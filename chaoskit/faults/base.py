"""What every fault is: parameters, a seeded choice of victims, and an injection whose undo
is recorded before it takes effect.

A fault is a small class registered by name (:func:`chaoskit.faults.registry.register`):

- ``name``, ``summary`` and ``action``: what ``chaoskit faults list`` shows, and the name of
  the Chaos Toolkit action that :mod:`chaoskit.ctk.actions` makes of it;
- ``params_type``: a frozen dataclass of its arguments (see :mod:`chaoskit.faults.params`);
- ``select(env, rng)``: the victims, chosen with the seeded ``rng`` among candidates sorted
  by name, within the blast-radius limit; raises :class:`FaultFailed` when nothing matches;
- ``inject(env, victim, record)``: acts on one victim. If the change has to be undone (a
  stopped node, a held-down manifest) it calls ``record(Undo(...))`` *first*: the undo is
  in the state file before the change exists, and rollback is applying the recorded undos.

Faults that only kill (a pod, a process) record nothing: Kubernetes restoring them is what
the experiment measures.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from chaoskit.cluster.config import PUBLISHES_PORTS_LABEL
from chaoskit.faults.agentnodes import Hands, NodeAgents
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.nodes import NodeContainer, NodeOps
from chaoskit.faults.selector import DNS_LABEL, selector_problem
from chaoskit.faults.state import Change, StateFile, Undo
from chaoskit.faults.target import Target
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from kubernetes import client

P = TypeVar("P", bound="Params")
T = TypeVar("T")

Role = Literal["worker", "control-plane", "any"]
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# PUBLISHES_PORTS_LABEL marks the node that publishes the topology's ports on the host: never
# chosen by a node fault without explicit names (it would cut the harness off).
Marker = Callable[[str, str, dict[str, Any]], object]
"""Puts a fault's own moments on the timeline: (event kind, subject, detail)."""


def help_(text: str) -> dict[str, str]:
    """Field metadata: the help text ``chaoskit faults list`` and discovery show."""
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class Params:
    """Checks shared by every fault's parameters, by field name."""

    def check(self) -> None:
        values = asdict(self)
        count, percent = values.get("count"), values.get("percent")
        if count is not None and percent is not None:
            raise InvalidParam("percent", "give count or percent, not both")
        if count is not None and count < 1:
            raise InvalidParam("count", f"must be at least 1, not {count}")
        if percent is not None and not 0 < percent <= 100:
            raise InvalidParam("percent", f"must be more than 0 and at most 100, not {percent}")
        max_victims = values.get("max_victims")
        if max_victims is not None and max_victims < 1:
            raise InvalidParam("max_victims", f"must be at least 1, not {max_victims}")
        duration = values.get("duration")
        if duration is not None and duration <= 0:
            raise InvalidParam("duration", f"must be more than 0 seconds, not {duration}")
        grace = values.get("grace_period")
        if grace is not None and grace < 0:
            raise InvalidParam("grace_period", f"must be 0 or more seconds, not {grace}")
        selector = values.get("selector")
        if isinstance(selector, str):
            problem = selector_problem(selector)
            if problem:
                raise InvalidParam("selector", f"{selector!r}: {problem}")
        for name in ("holding", "sparing"):
            matching = values.get(name)
            if isinstance(matching, str) and matching:
                _check_matching(name, matching)


def _check_matching(name: str, matching: str) -> None:
    """NAMESPACE/SELECTOR, both parts valid (the selector's own key may hold a '/')."""
    namespace, sep, selector = matching.partition("/")
    if not sep or not namespace or not selector:
        raise InvalidParam(name, f"{matching!r}: expected NAMESPACE/SELECTOR")
    if not DNS_LABEL.fullmatch(namespace) or len(namespace) > 63:
        raise InvalidParam(name, f"{matching!r}: {namespace!r} is not a namespace name")
    problem = selector_problem(selector)
    if problem:
        raise InvalidParam(name, f"{matching!r}: selector {selector!r}: {problem}")


@dataclass(frozen=True, kw_only=True)
class Blast(Params):
    """How many victims, and the most a fault may take (its blast radius)."""

    count: int | None = field(
        default=None, metadata=help_("number of victims (default 1; or give percent)")
    )
    percent: float | None = field(
        default=None, metadata=help_("share of the candidates to hit, 1-100, rounded up")
    )
    max_victims: int | None = field(
        default=None,
        metadata=help_("blast-radius limit: refuse to hit more victims than this"),
    )


@dataclass(frozen=True, kw_only=True)
class Hold(Params):
    duration: float | None = field(
        default=None,
        metadata=help_("seconds to hold the fault, then roll it back; unset: hold until rollback"),
    )


@dataclass(frozen=True, kw_only=True)
class NodeChoice(Blast):
    nodes: tuple[str, ...] = field(
        default=(), metadata=help_("node names to choose from (default: every node of role)")
    )
    role: Role = field(default="worker", metadata=help_("worker, control-plane or any"))
    holding: str = field(
        default="",
        metadata=help_(
            "NAMESPACE/SELECTOR: only nodes running a pod that matches, e.g. "
            "shop/chaoskit.io/galera-role=writer (any role)"
        ),
    )
    sparing: str = field(
        default="",
        metadata=help_(
            "NAMESPACE/SELECTOR: never a node running a pod that matches, e.g. "
            "'shop/app.kubernetes.io/name in (mysql,kafka)'"
        ),
    )


@dataclass(frozen=True)
class Victim:
    """One thing a fault hit."""

    kind: str
    """pod, container, node, etcd-member, component, cluster."""
    name: str
    node: str = ""
    namespace: str = ""
    uid: str = ""
    owner_uid: str = ""
    container: str = ""

    @property
    def label(self) -> str:
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        what = f"{self.kind} {name}"
        if self.container:
            what += f" container {self.container}"
        if self.node and self.node != self.name:
            what += f" on {self.node}"
        return what

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def _no_mark(kind: str, subject: str, detail: dict[str, Any]) -> None:
    """Where no timeline listens."""


@dataclass
class FaultEnv:
    """What a fault acts through: the target cluster, its nodes, the state file."""

    target: Target
    nodes: NodeOps
    state: StateFile
    run_id: str
    settings: Settings
    mark: Marker = _no_mark
    _api: client.ApiClient | None = None
    install_agent: bool = True
    """Install the node agent on first use if the cluster has none (not for a plan)."""
    _agents: NodeAgents | None = None

    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = self.target.api()
        return self._api

    def agents(self) -> NodeAgents:
        """The node agents, through which every fault below the API acts."""
        if self._agents is None:
            self._agents = NodeAgents(
                self.target,
                self.api,
                self.settings,
                run_id=self.run_id,
                install=self.install_agent,
            )
        return self._agents

    def inventory(self) -> list[NodeContainer]:
        """The cluster's nodes as the API lists them: role from the control-plane label,
        ``running`` when Ready, sparing the node labelled as publishing the topology's
        ports. On chaoskit's kind clusters a node whose container is not running (stopped,
        paused) is not running either, whatever the API still says."""
        from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

        try:
            listed = self.core().list_node(_request_timeout=30).items
        except client.ApiException as e:
            raise FaultFailed(f"listing the cluster's nodes: {e.reason}") from e
        containers = {c.name: c.state for c in self.nodes.nodes()} if self.target.managed else {}
        result = []
        for node in listed:
            labels = node.metadata.labels or {}
            role = "control-plane" if CONTROL_PLANE_LABEL in labels else "worker"
            ready = any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            )
            state = "running" if ready else "not-ready"
            if containers.get(node.metadata.name, "running") != "running":
                state = containers[node.metadata.name]
            publishes = labels.get(PUBLISHES_PORTS_LABEL) == "true"
            result.append(NodeContainer(node.metadata.name, role, state, publishes))
        return sorted(result, key=lambda n: n.name)

    def hands(self) -> Hands:
        """What rollback acts through."""
        return Hands(
            self.nodes,
            lambda name, expires_at: self.agents().release(name, expires_at),
            lambda: self.agents().orders(),
        )

    def close(self) -> None:
        """Stops renewing agent orders; removes the agent if this run installed it."""
        if self._agents is not None:
            self._agents.close()

    def core(self) -> client.CoreV1Api:
        from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

        return client.CoreV1Api(self.api())


Recorder = Callable[[Undo], Change]
"""Writes an undo to the state file (before the change it undoes); returns the entry."""


class Fault(ABC, Generic[P]):
    """Base of every fault; subclasses set the class attributes and two methods."""

    name: ClassVar[str]
    summary: ClassVar[str]
    action: ClassVar[str]
    """The Chaos Toolkit action's name (``kill_pods``); its arguments are ``params_type``'s."""
    params_type: ClassVar[type[Params]]
    default_max_victims: ClassVar[int | None] = None
    """Blast-radius limit when the experiment sets no max_victims."""
    holds: ClassVar[bool] = False
    """True if the fault stays until rolled back (a stopped node), False if it only kills."""
    kind_only: ClassVar[str] = ""
    """Set on faults that act on a kind node container through this machine's Docker: what
    makes them so, e.g. 'is a power fault (docker stop of a kind node container)'. They run
    only on chaoskit's own kind clusters (:meth:`check_target`)."""

    def __init__(self, params: P) -> None:
        self.params = params

    @classmethod
    def check_target(cls, target: Target) -> None:
        """Refuses, whatever the arguments, a target this fault cannot act on: a ``kind_only``
        fault on a cluster that is not chaoskit's kind cluster on this machine."""
        if cls.kind_only and not target.managed:
            raise InvalidParam(
                "",
                f"{cls.name} {cls.kind_only}: it only runs on chaoskit's own kind clusters, "
                f"not on context {target.context!r}",
            )

    def check(self, env: FaultEnv) -> None:
        """Checks against the target (namespace allowlist, ...) before anything is chosen;
        :func:`chaoskit.faults.runner.plan` calls :meth:`check_target` first."""

    @abstractmethod
    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        """The victims, chosen with ``rng``; raises FaultFailed when nothing matches."""

    @abstractmethod
    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        """Hits one victim; calls ``record`` before any change that needs undoing."""

    def max_victims(self) -> int | None:
        value = getattr(self.params, "max_victims", None)
        return value if value is not None else self.default_max_victims


def choose(
    candidates: Sequence[T],
    *,
    key: Callable[[T], str],
    rng: random.Random,
    count: int | None,
    percent: float | None,
    max_victims: int | None,
    what: str,
) -> list[T]:
    """A seeded, reproducible choice of victims within the blast-radius limit.

    The candidates are sorted by ``key`` first, so the same seed and the same candidates
    always give the same victims, whatever order the API listed them in.
    """
    if not candidates:
        raise FaultFailed(f"{what} matches nothing: no victim to choose")
    ordered = sorted(candidates, key=key)
    if percent is not None:
        wanted = max(1, math.ceil(len(ordered) * percent / 100))
    else:
        wanted = count if count is not None else 1
    if wanted > len(ordered):
        names = ", ".join(key(c) for c in ordered)
        raise FaultFailed(f"{what}: {wanted} victims asked for, only {len(ordered)}: {names}")
    if max_victims is not None and wanted > max_victims:
        raise InvalidParam(
            "max_victims",
            f"{what}: {wanted} victims exceed the blast-radius limit of {max_victims} "
            "(raise max_victims to allow it)",
        )
    return sorted(rng.sample(ordered, wanted), key=key)


def _nodes_holding(env: FaultEnv, matching: str, field_name: str = "holding") -> set[str]:
    """Nodes of the Running, not deleted pods that ``matching`` (NAMESPACE/SELECTOR) matches;
    ``field_name`` is the argument that gave it (holding, sparing), for errors."""
    namespace, sep, selector = matching.partition("/")
    if not sep or not namespace or not selector:
        raise InvalidParam(field_name, f"{matching!r}: expected NAMESPACE/SELECTOR")
    env.target.check_namespace(namespace, field_name)
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    try:
        pods = env.core().list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=30
        )
    except client.ApiException as e:
        raise FaultFailed(f"listing pods {selector!r} in {namespace!r}: {e.reason}") from e
    return {
        p.spec.node_name
        for p in pods.items
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and p.spec.node_name
    }


def choose_nodes(
    env: FaultEnv, params: NodeChoice, rng: random.Random, *, max_victims: int | None, what: str
) -> list[Victim]:
    """Running nodes of ``params.role`` (or the named ``params.nodes``), chosen with ``rng``.

    Without explicit names, the node that publishes the topology's ports on the host is
    never chosen: losing it would cut the harness off from the system under test. Nor is
    a node running a pod that ``params.sparing`` matches.
    """
    containers = {c.name: c for c in env.inventory()}
    if params.nodes:
        unknown = [n for n in params.nodes if n not in containers]
        if unknown:
            valid = ", ".join(sorted(containers)) or "none"
            raise InvalidParam("nodes", f"no node named {unknown[0]!r} (nodes: {valid})")
        candidates = [containers[n] for n in params.nodes]
    elif params.holding:
        holders = _nodes_holding(env, params.holding)
        candidates = [c for c in containers.values() if c.name in holders]
        spared = [c.name for c in candidates if c.publishes_ports]
        candidates = [c for c in candidates if not c.publishes_ports]
        if not candidates:
            where = f" (only {', '.join(spared)}, which publishes the ports)" if spared else ""
            raise FaultFailed(f"{what}: no node runs a pod matching {params.holding!r}{where}")
    else:
        candidates = [
            c
            for c in containers.values()
            if (params.role in ("any", c.role)) and not c.publishes_ports
        ]
    if params.sparing:
        spared_nodes = _nodes_holding(env, params.sparing, "sparing")
        left = [c for c in candidates if c.name not in spared_nodes]
        if not left and candidates:
            names = ", ".join(sorted(c.name for c in candidates))
            raise FaultFailed(
                f"{what}: every candidate node ({names}) runs a pod matching "
                f"{params.sparing!r}, which is to be spared"
            )
        candidates = left
    running = [c for c in candidates if c.state == "running"]
    chosen: list[NodeContainer] = choose(
        running,
        key=lambda c: c.name,
        rng=rng,
        count=params.count,
        percent=params.percent,
        max_victims=max_victims,
        what=what,
    )
    return [Victim(kind="node", name=c.name, node=c.name) for c in chosen]
