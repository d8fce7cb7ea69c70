"""Network faults on pods: partition, packet loss, bandwidth limit, DNS outage, delay;
and on nodes: partition and packet loss of the node's own network.

Victim pods are chosen like the pod faults' (namespace in the allowlist, label selector,
seeded count or percent, blast radius). Each is a hold: an order to the agent on the
victim pod's node (:mod:`chaoskit.agent.nodeagent.network`), which changes that pod's
network namespace only (iptables rules, a tc qdisc) and undoes it at the release, or at
the expiry should this process die. Peers of a partition (or of a loss limited to some
peers) are resolved to IPv4 addresses at injection: the IPs of pods a selector matches,
CIDRs, and/or the API server (the control planes' node IPs and the ``kubernetes``
Service's IP).

Pods on the host's network are never victims: their network namespace is their node's.

The node faults (``node-partition``, ``node-loss``) change the node's own network
namespace instead: what the kubelet, kube-proxy, containerd and the pods on the host's
network (etcd, the API server on a control plane) send and receive. Pods on the pod
network, the agent among them, are routed through the node and keep their traffic, so
the agent keeps its channel to the API and renews or undoes the order as usual. Peers
are the InternalIPs of other nodes (by role or name), CIDRs and/or the API server (the
control planes, the ``kubernetes`` Service and kubeadm's ``controlPlaneEndpoint``, a
host name the agent resolves on the node); the node's own addresses and loopback are
never cut.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaoskit.agent.nodeagent import network as agent_network
from chaoskit.agent.nodeagent.host import FaultRefused
from chaoskit.faults.base import (
    CONTROL_PLANE_LABEL,
    Fault,
    FaultEnv,
    Hold,
    NodeChoice,
    Params,
    Recorder,
    Victim,
    choose_nodes,
    help_,
)
from chaoskit.faults.components import control_planes
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.etcd import leader
from chaoskit.faults.pod import (
    PodChoice,
    choice_label,
    choose_pods,
    hold_on_pod,
    pod_victim,
    running_pods,
)
from chaoskit.faults.registry import register
from chaoskit.faults.selector import DNS_LABEL, selector_problem

if TYPE_CHECKING:
    from kubernetes import client

Direction = Literal["both", "ingress", "egress"]


@dataclass(frozen=True, kw_only=True)
class NetworkChoice(PodChoice, Hold):
    """Victim pods (by namespace and selector) and how long to hold the fault."""


@dataclass(frozen=True, kw_only=True)
class Peers(Params):
    """The other side of a partition: pods, CIDRs, the API server (any of them)."""

    peer_selector: str = field(
        default="",
        metadata=help_("label selector of peer pods (their IPs at injection), in peer_namespace"),
    )
    peer_namespace: str = field(
        default="", metadata=help_("namespace of the peer pods (default: namespace)")
    )
    peer_cidrs: tuple[str, ...] = field(
        default=(), metadata=help_("IPv4 addresses or CIDRs, e.g. 10.96.0.0/12")
    )
    peer_api_server: bool = field(
        default=False,
        metadata=help_(
            "the API server: the control planes' node IPs and the kubernetes Service IP"
        ),
    )

    def check(self) -> None:
        super().check()
        if self.peer_selector:
            problem = selector_problem(self.peer_selector)
            if problem:
                raise InvalidParam("peer_selector", f"{self.peer_selector!r}: {problem}")
        if self.peer_namespace and not DNS_LABEL.fullmatch(self.peer_namespace):
            raise InvalidParam("peer_namespace", f"{self.peer_namespace!r} is not a namespace name")
        if self.peer_namespace and not self.peer_selector:
            raise InvalidParam("peer_namespace", "needs peer_selector (which pods in it)")
        for i, cidr in enumerate(self.peer_cidrs):
            try:
                agent_network.peers({"peers": cidr}, required=True)
            except FaultRefused as e:
                raise InvalidParam(f"peer_cidrs[{i}]", str(e)) from None

    @property
    def has_peers(self) -> bool:
        return bool(self.peer_selector or self.peer_cidrs or self.peer_api_server)


@dataclass(frozen=True, kw_only=True)
class PartitionParams(NetworkChoice, Peers):
    direction: Direction = field(
        default="both",
        metadata=help_("both, ingress (peers cannot reach the pods) or egress (the reverse)"),
    )

    def check(self) -> None:
        super().check()
        if not self.has_peers:
            raise InvalidParam(
                "peer_selector",
                "a partition needs peers: peer_selector, peer_cidrs or peer_api_server",
            )


@dataclass(frozen=True, kw_only=True)
class LossParams(NetworkChoice, Peers):
    loss: float = field(
        metadata=help_("share of packets dropped, in percent (more than 0, at most 100)")
    )
    direction: Direction = field(
        default="egress", metadata=help_("egress (the pods' sent packets), ingress or both")
    )

    def check(self) -> None:
        super().check()
        if not 0 < self.loss <= 100:
            raise InvalidParam("loss", f"must be more than 0 and at most 100, not {self.loss:g}")


@dataclass(frozen=True, kw_only=True)
class BandwidthParams(NetworkChoice):
    rate: str = field(metadata=help_("the pods' egress limit, a tc rate: 1mbit, 500kbit, ..."))
    burst: str = field(default="32kbit", metadata=help_("tc bucket size: 32kbit, 16kb, ..."))

    def check(self) -> None:
        super().check()
        try:
            agent_network.rate({"rate": self.rate})
        except FaultRefused as e:
            raise InvalidParam("rate", str(e)) from None
        try:
            agent_network.burst({"burst": self.burst})
        except FaultRefused as e:
            raise InvalidParam("burst", str(e)) from None


@dataclass(frozen=True, kw_only=True)
class DelayParams(NetworkChoice):
    delay_ms: float = field(metadata=help_("milliseconds added to every packet the pods send"))
    jitter_ms: float | None = field(default=None, metadata=help_("random variation, milliseconds"))

    def check(self) -> None:
        super().check()
        if self.delay_ms <= 0:
            raise InvalidParam("delay_ms", f"must be more than 0, not {self.delay_ms:g}")
        if self.jitter_ms is not None and self.jitter_ms < 0:
            raise InvalidParam("jitter_ms", f"must be 0 or more, not {self.jitter_ms:g}")


# ---------------------------------------------------------------------------- victims and peers


def network_victims(
    fault: Fault[Any], params: PodChoice, pods: list[Any], rng: random.Random
) -> list[Victim]:
    """Victims among ``pods``, seeded; pods on the host's network are no candidates."""
    own = [p for p in pods if not p.spec.host_network and p.spec.node_name]
    if pods and not own:
        names = ", ".join(sorted(p.metadata.name for p in pods))
        raise FaultFailed(
            f"{choice_label(fault, params)}: every match ({names}) uses its node's network, "
            "which a network fault on the pod would cut for the whole node"
        )
    return [pod_victim(p) for p in choose_pods(fault, params, own, rng)]


def ipv4s(addresses: Iterable[str | None]) -> list[str]:
    """The IPv4 addresses among ``addresses``, in order, once each."""
    result = []
    for address in addresses:
        if not address:
            continue
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            continue
        if parsed.version == 4 and address not in result:
            result.append(address)
    return result


def pod_ips(pods: Iterable[Any], *, skip_uid: str = "") -> list[str]:
    """IPv4 addresses of ``pods`` (all of a dual-stack pod's), but the victim's own."""
    found: list[str] = []
    for pod in pods:
        if pod.metadata.uid == skip_uid:
            continue
        listed = [i.ip for i in pod.status.pod_ips or []] or [pod.status.pod_ip]
        found += [ip for ip in ipv4s(listed) if ip not in found]
    return found


def api_server_ips(nodes: Iterable[Any], service: Any) -> list[str]:
    """The control planes' InternalIPs (the API servers' own addresses) and the
    ``kubernetes`` Service's cluster IP (what pods dial)."""
    addresses = [
        a.address for node in nodes for a in node.status.addresses or [] if a.type == "InternalIP"
    ]
    return ipv4s([*addresses, service.spec.cluster_ip])


def resolve_peers(env: FaultEnv, params: Peers, namespace: str, victim: Victim) -> list[str]:
    """The peers as IPv4 addresses/CIDRs now (pods' IPs change when pods are replaced)."""
    found: list[str] = list(params.peer_cidrs)
    if params.peer_selector:
        where = params.peer_namespace or namespace
        ips = pod_ips(running_pods(env, where, params.peer_selector), skip_uid=victim.uid)
        if not ips:
            raise FaultFailed(
                f"peer_selector {params.peer_selector!r} in namespace {where!r} matches no "
                f"running pod with an IPv4 address (besides {victim.label})"
            )
        found += ips
    if params.peer_api_server:
        found += api_server_addresses(env)
    return list(dict.fromkeys(found))


def api_server_addresses(env: FaultEnv) -> list[str]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    core: client.CoreV1Api = env.core()
    try:
        nodes = core.list_node(label_selector=CONTROL_PLANE_LABEL, _request_timeout=30).items
        service = core.read_namespaced_service("kubernetes", "default", _request_timeout=30)
    except ApiException as e:
        raise FaultFailed(f"finding the API server's addresses: {e.reason}") from e
    return api_server_ips(nodes, service)


# ---------------------------------------------------------------------------- the faults


class NetworkFault(Fault[Any]):
    """A hold on each victim pod's network, through the agent on the pod's node."""

    holds = True
    agent_fault: ClassVar[str] = ""

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        pods = running_pods(env, self.params.namespace, self.params.selector)
        return network_victims(self, self.params, pods, rng)

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        """The agent order's own parameters (besides the pod's)."""
        return {}

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        params = self.order_params(env, victim)
        return hold_on_pod(env, self, victim, record, agent_fault=self.agent_fault, params=params)


def _peer_params(fault: NetworkFault, env: FaultEnv, victim: Victim) -> dict[str, str]:
    params: Peers = fault.params
    if not params.has_peers:
        return {}
    found = resolve_peers(env, params, fault.params.namespace, victim)
    return {"peers": ",".join(found)}


@register
class NetworkPartition(NetworkFault):
    name = "network-partition"
    action = "partition_network"
    summary = (
        "drop a pod's traffic to and/or from peers (pods by selector, CIDRs, the API server) "
        "until rollback"
    )
    params_type = PartitionParams
    agent_fault = "net-partition"

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        return {**_peer_params(self, env, victim), "direction": self.params.direction}


@register
class NetworkLoss(NetworkFault):
    name = "network-loss"
    action = "lose_packets"
    summary = "drop a share of a pod's packets (all, or to/from peers) until rollback"
    params_type = LossParams
    agent_fault = "net-loss"

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        return {
            "percent": f"{self.params.loss:g}",
            "direction": self.params.direction,
            **_peer_params(self, env, victim),
        }


@register
class NetworkBandwidth(NetworkFault):
    name = "network-bandwidth"
    action = "limit_bandwidth"
    summary = "limit a pod's egress bandwidth (tc tbf on its eth0) until rollback"
    params_type = BandwidthParams
    agent_fault = "net-bandwidth"

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        return {"rate": self.params.rate, "burst": self.params.burst}


@register
class DnsOutage(NetworkFault):
    name = "dns-outage"
    action = "stop_dns"
    summary = "drop a pod's DNS queries (UDP and TCP port 53) until rollback"
    params_type = NetworkChoice
    agent_fault = "dns-outage"


@register
class NetworkDelay(NetworkFault):
    name = "network-delay"
    action = "delay_network"
    summary = (
        "delay a pod's egress packets (tc netem) until rollback; refused where the kernel "
        "has no sch_netem"
    )
    params_type = DelayParams
    agent_fault = "net-delay"

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        params = {"delay_ms": f"{self.params.delay_ms:g}"}
        if self.params.jitter_ms:
            params["jitter_ms"] = f"{self.params.jitter_ms:g}"
        return params


# ---------------------------------------------------------------------------- nodes


@dataclass(frozen=True, kw_only=True)
class NodeNetworkChoice(NodeChoice, Hold):
    """Victim nodes and how long to hold the fault."""

    etcd_leader: bool = field(
        default=False,
        metadata=help_(
            "the control plane whose etcd member leads, asked of etcd (role and nodes ignored)"
        ),
    )


@dataclass(frozen=True, kw_only=True)
class NodePeers(Params):
    """The other side of a node's partition: nodes, CIDRs, the API server (any of them)."""

    peer_role: Literal["", "control-plane", "worker", "any"] = field(
        default="", metadata=help_("every other node of this role (their InternalIPs)")
    )
    peer_nodes: tuple[str, ...] = field(
        default=(), metadata=help_("other nodes by name (their InternalIPs)")
    )
    peer_cidrs: tuple[str, ...] = field(
        default=(), metadata=help_("IPv4 addresses or CIDRs, e.g. 172.18.0.0/16")
    )
    peer_api_server: bool = field(
        default=False,
        metadata=help_(
            "the API server: the control planes' node IPs, the kubernetes Service IP and "
            "kubeadm's controlPlaneEndpoint (a load balancer in front of them)"
        ),
    )

    def check(self) -> None:
        super().check()
        for i, cidr in enumerate(self.peer_cidrs):
            try:
                agent_network.node_peers({"peers": cidr}, [], required=True)
            except FaultRefused as e:
                raise InvalidParam(f"peer_cidrs[{i}]", str(e)) from None

    @property
    def has_peers(self) -> bool:
        return bool(self.peer_role or self.peer_nodes or self.peer_cidrs or self.peer_api_server)


@dataclass(frozen=True, kw_only=True)
class NodePartitionParams(NodeNetworkChoice, NodePeers):
    direction: Direction = field(
        default="both",
        metadata=help_("both, ingress (peers cannot reach the node) or egress (the reverse)"),
    )

    def check(self) -> None:
        super().check()
        if not self.has_peers:
            raise InvalidParam(
                "peer_role",
                "a partition needs peers: peer_role, peer_nodes, peer_cidrs or peer_api_server",
            )


@dataclass(frozen=True, kw_only=True)
class NodeLossParams(NodeNetworkChoice, NodePeers):
    loss: float = field(
        metadata=help_("share of packets dropped, in percent (more than 0, at most 100)")
    )
    direction: Direction = field(
        default="egress", metadata=help_("egress (the node's sent packets), ingress or both")
    )

    def check(self) -> None:
        super().check()
        if not 0 < self.loss <= 100:
            raise InvalidParam("loss", f"must be more than 0 and at most 100, not {self.loss:g}")


def internal_ips(node: Any) -> list[str]:
    return ipv4s(a.address for a in node.status.addresses or [] if a.type == "InternalIP")


def node_peer_ips(nodes: list[Any], params: NodePeers, victim: str) -> list[str]:
    """InternalIPs of the other nodes ``peer_role`` / ``peer_nodes`` name."""
    known = {n.metadata.name for n in nodes}
    for name in params.peer_nodes:
        if name not in known:
            valid = ", ".join(sorted(known)) or "none"
            raise InvalidParam("peer_nodes", f"no node named {name!r} (nodes: {valid})")
    found: list[str] = []
    for node in nodes:
        name = node.metadata.name
        if name == victim:
            continue
        role = "control-plane" if CONTROL_PLANE_LABEL in (node.metadata.labels or {}) else "worker"
        if name in params.peer_nodes or params.peer_role in ("any", role):
            found += [ip for ip in internal_ips(node) if ip not in found]
    return found


def control_plane_endpoint(env: FaultEnv) -> str:
    """The host of kubeadm's ``controlPlaneEndpoint`` (the load balancer in front of
    several API servers, which nodes dial by name), or "" where there is none."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy

    try:
        found = env.core().read_namespaced_config_map(
            "kubeadm-config", "kube-system", _request_timeout=30
        )
    except ApiException as e:
        if e.status in (403, 404):
            return ""
        raise FaultFailed(f"reading kube-system/kubeadm-config: {e.reason}") from e
    return endpoint_host((found.data or {}).get("ClusterConfiguration", ""))


def endpoint_host(cluster_configuration: str) -> str:
    """``controlPlaneEndpoint``'s host in kubeadm's ClusterConfiguration text."""
    for line in cluster_configuration.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "controlPlaneEndpoint" and value.strip():
            endpoint = value.strip().strip("\"'")
            return endpoint.rsplit(":", 1)[0].strip("[]") if ":" in endpoint else endpoint
    return ""


class NodeNetworkFault(Fault[Any]):
    """A hold on each victim node's own network (its host network namespace), through
    the agent on the node. Pods on the pod network keep their traffic."""

    holds = True
    default_max_victims = 1
    agent_fault: ClassVar[str] = ""

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        if self.params.etcd_leader:
            node = leader(env, control_planes(env, ()))
            return [Victim(kind="node", name=node, node=node)]
        return choose_nodes(env, self.params, rng, max_victims=self.max_victims(), what=self.name)

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy

        params: NodePeers = self.params
        if not params.has_peers:
            return {}
        try:
            nodes = env.core().list_node(_request_timeout=30).items
        except ApiException as e:
            raise FaultFailed(f"listing the cluster's nodes: {e.reason}") from e
        own = {ip for n in nodes if n.metadata.name == victim.node for ip in internal_ips(n)}
        found = [*params.peer_cidrs, *node_peer_ips(nodes, params, victim.node)]
        hosts = ""
        if params.peer_api_server:
            found += api_server_addresses(env)
            hosts = control_plane_endpoint(env)
            if ipv4s([hosts]):
                found.append(hosts)  # an address: no name for the node to resolve
            if not hosts or ":" in hosts or ipv4s([hosts]):
                hosts = ""  # none, an address given above, or IPv6 (not supported yet)
        found = [ip for ip in dict.fromkeys(found) if ip not in own]
        result = {"peers": ",".join(found)}
        if hosts:
            result["peer_hosts"] = hosts
        return result

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        params = {"direction": self.params.direction, **self.order_params(env, victim)}
        info = env.agents().hold(
            victim.node,
            self.agent_fault,
            params,
            record=record,
            description=f"{self.name} of node {victim.node} ended",
            duration=self.params.duration,
        )
        return {"victim": victim.label, **params, "agent": info}


@register
class NodePartition(NodeNetworkFault):
    name = "node-partition"
    action = "partition_node"
    summary = (
        "drop a node's own traffic (kubelet, etcd, API server, host-network pods) to and/or "
        "from peers (nodes by role or name, CIDRs, the API server) until rollback"
    )
    params_type = NodePartitionParams
    agent_fault = "node-partition"


@register
class NodeLoss(NodeNetworkFault):
    name = "node-loss"
    action = "lose_node_packets"
    summary = "drop a share of a node's own packets (all, or to/from peers) until rollback"
    params_type = NodeLossParams
    agent_fault = "node-loss"

    def order_params(self, env: FaultEnv, victim: Victim) -> dict[str, str]:
        return {"percent": f"{self.params.loss:g}", **super().order_params(env, victim)}
