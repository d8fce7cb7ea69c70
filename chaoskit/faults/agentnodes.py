"""Faults below the Kubernetes API, as orders to chaoskit's node agent.

Every fault that acts inside a node (kubelet, containerd, kube-proxy, a container's
process, a static pod held down, asking etcd who leads) is an order to the agent on that
node (:mod:`chaoskit.agent`): one code path on every cluster, kind included, so that what
CI runs is what a user on another cluster runs.

A *hold* (a stopped unit, a static pod held down) is recorded in the state file (undo:
release the order) before the order exists, and carries an expiry that this process
renews while it lives; if the harness dies, the agent undoes the fault at the expiry by
itself. A hold with a ``duration`` gets an expiry past the duration, so that it outlasts
an API outage it causes (etcd held below quorum). A *one-shot* order (a kill, a query) is
applied once and reported with what the agent saw.

The agent is installed on first use if the cluster has none, and removed again when the
run that installed it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.state import Undo, pid_alive

if TYPE_CHECKING:
    from kubernetes import client

    from chaoskit.agent.client import Orders
    from chaoskit.agent.nodeagent.orders import Order
    from chaoskit.faults.target import Target
    from chaoskit.settings import Settings

logger = logging.getLogger(__name__)

ONE_SHOT_TIMEOUT = 45.0
"""Seconds for the agent to pick up and carry out a kill or a query (its tick is 1 s; a
unit kill waits up to 30 s for systemd's restart)."""
HOLD_TIMEOUT = 120.0
"""Seconds for a hold to take effect (a static pod hold waits until kubelet stopped it)."""
RELEASE_TIMEOUT = 60.0
"""Seconds for the agent to undo a released order, once the API answers."""
UNAVAILABLE_AFTER = 8.0
"""Seconds of failing requests after which an order's wait says the API is gone."""
DENIED_GRACE = 30.0
"""Seconds an order's wait goes on through 401/403 answers about an order it made: an API
server that has just (re)started serves requests before its RBAC authorizer has synced,
and refuses users bound by RBAC (kubeadm's admin is one) until it has."""
HOLD_MARGIN = 15.0
"""Seconds past a hold's duration at which the agent ends it by itself (the time to
carry the order out, so that it never ends early)."""
RELEASE_OP = "agent-release"


def harness_id() -> str:
    """host:pid of this process, put on every order (``recover`` skips live harnesses)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def release_undo(order: str, node: str, description: str, expires_at: float) -> Undo:
    return Undo(
        RELEASE_OP,
        {"order": order, "node": node, "expires_at": expires_at},
        f"{description} (agent order {order})",
    )


@dataclass(frozen=True)
class Hands:
    """What an undo acts through: kind's node containers (power faults) and the agents'
    orders of the target (everything below the API)."""

    nodes: NodeOps
    release: Callable[[str, float], None]
    """Releases an agent order (name, its last known expiry) and waits for the undo."""
    orders: Callable[[], Orders]
    """The agents' orders, for an undo that orders something new (the etcd restore)."""

    @classmethod
    def of(cls, nodes: NodeOps, orders: Callable[[], Orders]) -> Hands:
        """For a process that holds no orders itself (``chaoskit recover``)."""

        def release(name: str, expires_at: float) -> None:
            release_order(orders(), name, expires_at=expires_at)

        return cls(nodes, release, orders)


AGENT_READY_WAIT = 30.0
"""Seconds a running but unready agent gets to be Ready before a fault fails on it."""


@dataclass
class _Held:
    node: str
    expires_at: float
    renew: bool
    """False for a hold with a duration: never renewed; its expiry is the end of the
    duration (counted once more from when the agent reports it in effect)."""


class NodeAgents:
    """The node agents of one target, as one run uses them."""

    def __init__(
        self,
        target: Target,
        api: Callable[[], client.ApiClient],
        settings: Settings,
        *,
        run_id: str = "",
        ttl: float | None = None,
        install: bool = True,
    ) -> None:
        from chaoskit.agent.client import DEFAULT_TTL  # noqa: PLC0415 - heavy: only when acting

        self.target = target
        self._api = api
        self.settings = settings
        self.run_id = run_id
        self.ttl = ttl if ttl is not None else DEFAULT_TTL
        self.install = install
        self.installed_here = False
        self._checked: set[str] = set()
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._orders: Orders | None = None

    # ------------------------------------------------------------------ the agent itself

    def orders(self) -> Orders:
        if self._orders is None:
            from chaoskit.agent.client import Orders  # noqa: PLC0415 - heavy: only when acting

            # Without urllib3's retries: the loops here retry by themselves, and a GET that
            # urllib3 retried four times over took 40 s to say that a quorum loss had taken
            # the API away (a hold of etcd members then began 40 s late).
            self._orders = Orders(self.target.api(retries=False))
        return self._orders

    def ensure(self, node: str) -> None:
        """The agent runs and is Ready on ``node`` (installing it on first use), or a
        FaultFailed names the node and the pod's reason, before anything changes."""
        if node in self._checked:
            return
        from chaoskit.agent import install  # noqa: PLC0415 - heavy: only when acting

        api = self._api()
        if not self._checked and not install.installed(api):
            if not self.install:
                raise FaultFailed(
                    f"the node agent is not installed on {self.target.context}: "
                    f"run 'chaoskit agent install' first"
                )
            logger.info("installing the node agent on %s", self.target.context)
            try:
                install.install_on(
                    self.settings,
                    name=self.target.cluster,
                    kubeconfig=self.target.kubeconfig,
                    context=self.target.context,
                    api=api,
                )
            except install.AgentFailed as e:
                raise FaultFailed(f"the node agent could not be installed: {e}") from e
            self.installed_here = True
        # An agent that is running may be unready for a few seconds (its ticks slowed by
        # an API server that did not answer, after a partition): it gets AGENT_READY_WAIT.
        deadline = time.monotonic() + AGENT_READY_WAIT
        while True:
            agents = {a.node: a for a in install.node_agents(api)}
            agent = agents.get(node)
            if agent is not None and agent.ready:
                break
            if agent is None or time.monotonic() > deadline:
                reason = agent.reason if agent is not None else "the cluster has no such node"
                pod = f" (pod {agent.pod})" if agent is not None and agent.pod else ""
                raise FaultFailed(f"no Ready chaoskit agent on node {node}{pod}: {reason}")
            time.sleep(1)
        # One listing answers for every node: the fault's next victims need not ask again.
        # After the first victim's fault the API may answer slowly or not at all (an API
        # server whose etcd member was just held down still takes requests through kind's
        # load balancer and times them out): a quorum loss then began 40 s late.
        self._checked |= {name for name, found in agents.items() if found.ready}

    # ------------------------------------------------------------------ orders

    def once(
        self, node: str, fault: str, params: Mapping[str, str], *, timeout: float = ONE_SHOT_TIMEOUT
    ) -> dict[str, str]:
        """A kill or a query: ordered, carried out once, reported; returns what the agent saw."""
        self.ensure(node)
        orders = self.orders()
        name = order_once(orders, node, fault, params, ttl=timeout, run=self.run_id)
        return collect_once(orders, name, timeout=timeout)

    def hold(
        self,
        node: str,
        fault: str,
        params: Mapping[str, str],
        *,
        record: Callable[[Undo], object],
        description: str,
        duration: float | None = None,
    ) -> dict[str, str]:
        """A fault that stays until released: recorded first, then ordered; returns what
        the agent reported once it is in effect.

        Without a ``duration`` the expiry is ``ttl`` ahead and renewed while this process
        lives. With one, the expiry is the end of the duration (plus a margin for the agent
        to carry the order out), moved once to count from when the fault is in effect: the
        agent ends the hold on time by itself even if the fault takes the API away (etcd
        below quorum), when no release can reach it.
        """
        from chaoskit.agent.client import new_name  # noqa: PLC0415 - heavy: only when acting

        self.ensure(node)
        orders = self.orders()
        name = new_name(fault)
        ttl = self.ttl if duration is None else duration + HOLD_MARGIN
        expires_at = time.time() + ttl
        record(release_undo(name, node, description, expires_at))
        with self._lock:
            self._held[name] = _Held(node, expires_at, renew=duration is None)
        orders.create(
            node, fault, params, ttl=ttl, name=name, run=self.run_id, harness=harness_id()
        )
        self._start_keeper()
        order = wait_for_phase(orders, name, ("Applied",), timeout=HOLD_TIMEOUT)
        if order is None:
            # The API stopped answering once the order was out: the fault took it away
            # (the last etcd member of a quorum, the last API server), so it is in effect.
            logger.info("%s on %s: the API stopped answering; the agent holds it", fault, node)
            return {"confirmed": "false", "reason": "the API stopped answering"}
        if duration is not None:
            # The duration counts from the moment the fault is in effect, not from the
            # order (a static pod may take seconds to stop): the expiry moves on once.
            expires_at = time.time() + duration + HOLD_MARGIN
            try:
                orders.renew_until(name, expires_at)
            except Exception as e:  # noqa: BLE001 - the agent keeps the first expiry then
                logger.debug("moving the expiry of %s: %s", name, e)
            else:
                with self._lock:
                    if name in self._held:
                        self._held[name].expires_at = expires_at
        return dict(order.info)

    def release(self, name: str, expires_at: float = 0.0) -> None:
        """Ends a hold now (no more renewals) and waits until the agent has undone it."""
        with self._lock:
            held = self._held.pop(name, None)
        if held is not None:
            expires_at = held.expires_at
        release_order(self.orders(), name, expires_at=expires_at)

    # ------------------------------------------------------------------ renewal

    def _start_keeper(self) -> None:
        if self._keeper is not None and self._keeper.is_alive():
            return
        self._stop.clear()
        self._keeper = threading.Thread(target=self._renew_loop, name="order-renewal", daemon=True)
        self._keeper.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                names = list(self._held)
            for name in names:
                # Under the lock, so that a release never races a renewal that would push
                # the expiry out again after it.
                with self._lock:
                    item = self._held.get(name)
                    if item is None or not item.renew:
                        continue
                    expires = time.time() + self.ttl
                    try:
                        self.orders().renew_until(name, expires)
                    except Exception as e:  # noqa: BLE001 - an API outage: the next round retries
                        logger.debug("renewing %s: %s", name, e)
                    else:
                        item.expires_at = expires

    def close(self) -> None:
        """Stops renewing; removes the agent if this run installed it."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        if self.installed_here:
            from chaoskit.agent import install  # noqa: PLC0415 - heavy: only when acting

            try:
                install.remove_from(
                    self.settings,
                    name=self.target.cluster,
                    kubeconfig=self.target.kubeconfig,
                    context=self.target.context,
                    api=self._api(),
                )
            except Exception as e:  # noqa: BLE001 - the run's verdict stands; say what is left
                logger.error(
                    "the node agent this run installed was not removed (%s): "
                    "run 'chaoskit agent remove'",
                    e,
                )


def api_unavailable(error: BaseException) -> bool:
    """True for the errors of an API server that does not answer (or has no quorum)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting
    from urllib3.exceptions import HTTPError  # noqa: PLC0415 - heavy: only when acting

    if isinstance(error, ApiException):
        return error.status in (0, None) or error.status >= 500
    return isinstance(error, HTTPError | OSError | TimeoutError)


def access_denied(error: BaseException) -> bool:
    """True for a 401 or 403: about an order this process made, it comes from an API server
    that has just started and not yet loaded who may do what (see ``DENIED_GRACE``)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    return isinstance(error, ApiException) and error.status in (401, 403)


def wait_for_phase(
    orders: Orders, name: str, phases: tuple[str, ...], *, timeout: float
) -> Order | None:
    """The order once the agent wrote one of ``phases``; None if the API stopped
    answering meanwhile (for ``UNAVAILABLE_AFTER`` seconds: one API server of several
    failing a request while its own etcd member stops is not the API gone). A Failed
    order, or none of ``phases`` in time, raises."""
    deadline = time.monotonic() + timeout
    failing_since: float | None = None
    denied_since: float | None = None
    while True:
        try:
            order = orders.get(name)
        except Exception as e:
            now = time.monotonic()
            if access_denied(e):
                denied_since = now if denied_since is None else denied_since
                if now - denied_since >= DENIED_GRACE or now > deadline:
                    raise FaultFailed(
                        f"agent order {name}: the API refused to show it for "
                        f"{now - denied_since:.0f} s ({_reason(e)})"
                    ) from e
                time.sleep(0.5)
                continue
            if not api_unavailable(e):
                raise
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= UNAVAILABLE_AFTER or now > deadline:
                return None
            time.sleep(1)
            continue
        failing_since = denied_since = None
        if order.phase in phases:
            return order
        if order.phase in ("Failed", "Expired"):
            raise FaultFailed(f"agent order {name} on {order.node}: {order.message}")
        if order.phase == "Undone" and "Applied" in phases:
            raise FaultFailed(
                f"agent order {name} on {order.node} was undone before it was seen in "
                f"effect ({order.message})"
            )
        if time.monotonic() > deadline:
            raise FaultFailed(
                f"agent order {name} on {order.node} is still {order.phase} after "
                f"{timeout:.0f} s (is the agent running on that node?)"
            )
        time.sleep(0.2)


def _reason(error: BaseException) -> str:
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    return f"{status} {reason}" if status else str(error)


def order_once(
    orders: Orders, node: str, fault: str, params: Mapping[str, str], *, ttl: float, run: str = ""
) -> str:
    """Creates a one-shot order (a kill, a query, a step of the etcd drill); its name."""
    from chaoskit.agent.client import new_name  # noqa: PLC0415 - heavy: only when acting

    return orders.create(
        node, fault, params, ttl=ttl, name=new_name(fault), run=run, harness=harness_id()
    )


def collect_once(
    orders: Orders, name: str, *, timeout: float, through_outage: bool = False
) -> dict[str, str]:
    """Waits until the agent carried out one-shot order ``name``; deletes it; returns what
    the agent reported. ``through_outage``: an API that stops answering meanwhile is waited
    for (until ``timeout``) instead of failing the order."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            order = wait_for_phase(
                orders, name, ("Undone",), timeout=max(0.0, deadline - time.monotonic())
            )
            if order is not None:
                return dict(order.info)
            if not through_outage or time.monotonic() > deadline:
                raise FaultFailed(
                    f"agent order {name}: the API stopped answering before the agent did"
                )
            time.sleep(1)
    finally:
        with contextlib.suppress(Exception):
            orders.delete(name)


def release_order(orders: Orders, name: str, *, expires_at: float = 0.0) -> None:
    """Moves an order's expiry to now and waits for the agent's undo; deletes the order.

    While the API does not answer (the fault took it away), the agent still undoes the
    order at its expiry by itself; this keeps trying until then plus ``RELEASE_TIMEOUT``.
    An order already gone is done (deleting an applied order also makes the agent undo it).
    """
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    deadline = time.monotonic() + max(0.0, expires_at - time.time()) + RELEASE_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            try:
                orders.release(name)
            except ApiException as e:
                if e.status == 404:
                    return
                raise
            order = wait_for_phase(
                orders, name, ("Undone", "Expired", "Failed"), timeout=RELEASE_TIMEOUT
            )
        except Exception as e:
            if not (api_unavailable(e) or access_denied(e)):
                if isinstance(e, FaultFailed):
                    raise
                raise FaultFailed(f"releasing agent order {name}: {e}") from e
            last = str(e)
            time.sleep(1)
            continue
        if order is None:
            last = "the API stopped answering"
            time.sleep(1)
            continue
        if order.phase == "Failed":
            # Never in effect: the agent refused it, or undid its half-made change at once
            # (the harness was told so when it ordered it).
            logger.warning("agent order %s on %s had failed: %s", name, order.node, order.message)
        else:
            logger.info("agent order %s on %s undone: %s", name, order.node, order.message)
        orders.delete(name)
        return
    raise FaultFailed(
        f"agent order {name} not confirmed undone (the API did not answer: {last}); "
        "the agent undoes it at its expiry"
    )


@dataclass(frozen=True)
class OrphanReport:
    released: list[str]
    failed: list[str]
    skipped: list[str]
    """Orders whose harness still runs on this host (``force`` releases them anyway)."""


def _harness_alive(harness: str) -> bool:
    host, _, pid = harness.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's harness: its orders expire unless it renews them
    return pid_alive(int(pid))


def release_orphans(orders: Orders, *, force: bool = False) -> OrphanReport:
    """Releases every order in force whose harness is gone (``chaoskit recover``): the
    agents' own record of what is still changed, besides the state file."""
    released, failed, skipped = [], [], []
    for order in orders.list():
        if order.terminal:
            continue
        label = f"{order.name} ({order.fault} on {order.node}, run {order.run or '?'})"
        if _harness_alive(order.harness) and not force:
            skipped.append(f"{label}: harness {order.harness} still runs")
            continue
        try:
            release_order(orders, order.name, expires_at=order.expires_at)
        except FaultFailed as e:
            failed.append(f"{label}: {e}")
        else:
            released.append(label)
    return OrphanReport(released, failed, skipped)
