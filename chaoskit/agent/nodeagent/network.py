"""Network faults inside one pod's network namespace: partition, loss, bandwidth, DNS, delay.

The pod is found on this node by its uid (or namespace and name) with the node's
``crictl``; its sandbox's pid names its network namespace (``/proc/PID/ns/net``, the agent
shares the node's PID namespace). The node's own ``iptables`` and ``tc`` run in the node's
mount namespace and the pod's network namespace, so the agent's image carries neither and
the rules go to whichever iptables backend the node uses.

Every change carries the order's name, so that the undo removes exactly its own, also
after an agent restart with nothing in hand but the order's parameters:

- iptables: one chain per direction, ``CK-<hash of the order>-IN`` / ``-OUT``, jumped to
  from INPUT / OUTPUT by a rule commented ``chaoskit order <name>``; undo deletes the
  jumps and the chains.
- tc: the root qdisc of the pod's ``eth0`` with a handle derived from the order; undo
  deletes the root qdisc only while it has that handle.

IPv4 only in this version (an IPv6 peer is refused). The command lines are built by pure
functions (argv lists), which the unit tests check exactly.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .host import (
    COMMAND_TIMEOUT,
    ApplyFn,
    FaultRefused,
    Host,
    HostFailed,
    Info,
    NodeFault,
    UndoFn,
    param,
    register,
)
from .orders import ORDER_PARAM

logger = logging.getLogger(__name__)

IPTABLES = "iptables"
TC = "tc"
POD_INTERFACE = "eth0"
TBF_LATENCY = "400ms"
"""How long a packet may wait in the bandwidth limit's bucket before tbf drops it."""
NO_NETEM = "this kernel has no sch_netem: delay is not supported"
DNS_PORT = "53"

Direction = Literal["both", "ingress", "egress"]
Way = Literal["in", "out"]
PARENT: dict[Way, str] = {"in": "INPUT", "out": "OUTPUT"}
_MISSING = ("No chain/target/match by that name", "does not exist", "No such file or directory")
_RATE = re.compile(r"[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)")
_SIZE = re.compile(r"[0-9]+(b|kb|mb|kbit|mbit)?")
_MILLIS = re.compile(r"[0-9]+(\.[0-9]+)?")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


# ---------------------------------------------------------------------------- the pod


def pod_command(pid: int, argv: list[str]) -> list[str]:
    """``argv`` run with the node's binaries (PID 1's mount namespace) in the network
    namespace of process ``pid`` (a pod's sandbox)."""
    return ["nsenter", "--target", "1", "--mount", f"--net=/proc/{pid}/ns/net", "--", *argv]


def pod_run(
    host: Host, pid: int, argv: list[str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        pod_command(pid, argv),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    logger.debug("pod %d: %s -> %d %s", pid, " ".join(argv), proc.returncode, proc.stderr.strip())
    if check and proc.returncode != 0:
        raise HostFailed(
            f"{' '.join(argv)} in pid {pid}'s network on {host.node}: {last_line(proc)}"
        )
    return proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    detail = (proc.stderr or proc.stdout).strip().splitlines()
    return detail[-1] if detail else f"exit {proc.returncode}"


def pod_labels(params: Mapping[str, str]) -> list[str]:
    """crictl label filters for the pod the order names: its uid, else namespace and name."""
    uid = params.get("pod_uid", "").strip()
    if uid:
        return [f"--label=io.kubernetes.pod.uid={uid}"]
    namespace, pod = params.get("namespace", "").strip(), params.get("pod", "").strip()
    if not namespace or not pod:
        raise FaultRefused("parameter 'pod_uid' (or 'namespace' and 'pod') is required")
    return [
        f"--label=io.kubernetes.pod.namespace={namespace}",
        f"--label=io.kubernetes.pod.name={pod}",
    ]


def pod_name(params: Mapping[str, str]) -> str:
    if params.get("namespace") and params.get("pod"):
        return f"{params['namespace']}/{params['pod']}"
    return f"uid {params.get('pod_uid', '?')}"


def sandbox_pid(host: Host, params: Mapping[str, str]) -> int | None:
    """The pid of the pod's ready sandbox on this node, or None when it runs none here."""
    labels = pod_labels(params)
    if host.run("sh", "-c", "command -v crictl", check=False).returncode != 0:
        raise FaultRefused(f"node {host.node} has no crictl (needed to find the pod)")
    ids = host.run("crictl", "pods", "-q", "--state", "ready", *labels).stdout.split()
    for sandbox in ids:
        pid = host.run(
            "crictl",
            "inspectp",
            "-o",
            "go-template",
            "--template",
            "{{.info.pid}}",
            sandbox,
            check=False,
        ).stdout.strip()
        if pid.isdigit() and int(pid) > 0:
            return int(pid)
    return None


def require_pid(host: Host, params: Mapping[str, str]) -> int:
    pid = sandbox_pid(host, params)
    if pid is None:
        raise FaultRefused(f"node {host.node} runs no ready pod {pod_name(params)}")
    return pid


def order_name(params: Mapping[str, str]) -> str:
    """The order's name, which the agent adds to every order's parameters."""
    name = params.get(ORDER_PARAM, "").strip()
    if not name:
        raise FaultRefused(f"parameter {ORDER_PARAM!r} is missing (the agent sets it)")
    return name


# ---------------------------------------------------------------------------- parameters


def peers(params: Mapping[str, str], *, required: bool) -> list[str]:
    """The ``peers`` parameter (comma-separated IPv4 addresses or CIDRs) as networks."""
    text = params.get("peers", "").strip()
    if not text:
        if required:
            raise FaultRefused("parameter 'peers' is required (comma-separated IPs or CIDRs)")
        return []
    result = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise FaultRefused(f"peer {item!r} is not an IP address or CIDR") from None
        if network.version != 4:
            raise FaultRefused(f"peer {item!r}: only IPv4 peers are supported")
        if str(network) not in result:
            result.append(str(network))
    return result


def node_peers(params: Mapping[str, str], extra: list[str], *, required: bool) -> list[str]:
    """``peers`` and ``extra`` for a rule in the node's own network: never loopback, where
    the node's own components talk to each other (the API server to its etcd)."""
    found = peers({"peers": ",".join([params.get("peers", ""), *extra])}, required=required)
    loopback = ipaddress.ip_network("127.0.0.0/8")
    for network in found:
        if ipaddress.ip_network(network).overlaps(loopback):
            raise FaultRefused(f"peer {network}: loopback is never cut on a node")
    return found


def resolve_hosts(host: Host, params: Mapping[str, str]) -> list[str]:
    """The IPv4 addresses of ``peer_hosts`` (comma-separated names), resolved on the node
    as its own components resolve them (kind's load balancer is a name only the nodes'
    resolver knows)."""
    found: list[str] = []
    for name in (n.strip() for n in params.get("peer_hosts", "").split(",")):
        if not name:
            continue
        if not _HOSTNAME.fullmatch(name):
            raise FaultRefused(f"peer host {name!r} is not a host name")
        proc = host.run("getent", "ahostsv4", name, check=False)
        addresses = sorted({line.split()[0] for line in proc.stdout.splitlines() if line.strip()})
        if not addresses:
            raise FaultRefused(f"node {host.node} cannot resolve peer host {name!r}")
        found += [a for a in addresses if a not in found]
    return found


def own_addresses(host: Host) -> list[str]:
    """The node's own IPv4 addresses (``ip -4 -o addr show``), loopback's included."""
    proc = host.run("ip", "-4", "-o", "addr", "show", check=False)
    if proc.returncode != 0:
        raise FaultRefused(f"node {host.node} has no working 'ip' command: {last_line(proc)}")
    found = []
    for line in proc.stdout.splitlines():
        words = line.split()
        if "inet" in words and words.index("inet") + 1 < len(words):
            address = words[words.index("inet") + 1].partition("/")[0]
            if address not in found:
                found.append(address)
    return found


def direction(params: Mapping[str, str], default: Direction) -> Direction:
    value = params.get("direction", default)
    if value == "both":
        return "both"
    if value == "ingress":
        return "ingress"
    if value == "egress":
        return "egress"
    raise FaultRefused(f"direction {value!r} is not one of both, ingress, egress")


WAYS: dict[Direction, tuple[Way, ...]] = {
    "both": ("in", "out"),
    "ingress": ("in",),
    "egress": ("out",),
}


def ways(chosen: Direction) -> tuple[Way, ...]:
    return WAYS[chosen]


def probability(params: Mapping[str, str]) -> str:
    """The ``percent`` parameter as iptables' statistic probability (0.3 for 30)."""
    text = param(params, "percent")
    try:
        percent = float(text)
    except ValueError:
        raise FaultRefused(f"percent {text!r} is not a number") from None
    if not 0 < percent <= 100:
        raise FaultRefused(f"percent must be more than 0 and at most 100, not {text}")
    return format(percent / 100, ".4g")


def rate(params: Mapping[str, str]) -> str:
    value = param(params, "rate")
    if not _RATE.fullmatch(value):
        raise FaultRefused(f"rate {value!r} is not a tc rate (e.g. 1mbit, 500kbit)")
    return value


def burst(params: Mapping[str, str]) -> str:
    value = params.get("burst", "").strip() or "32kbit"
    if not _SIZE.fullmatch(value):
        raise FaultRefused(f"burst {value!r} is not a tc size (e.g. 32kbit, 16kb)")
    return value


def millis(params: Mapping[str, str], key: str, *, required: bool) -> str:
    value = params.get(key, "").strip()
    if not value and not required:
        return ""
    if not _MILLIS.fullmatch(value):
        raise FaultRefused(f"{key} {value!r} is not a number of milliseconds")
    return f"{value}ms"


# ---------------------------------------------------------------------------- iptables


@dataclass(frozen=True)
class Rule:
    """One DROP rule of a direction's chain: what it matches."""

    way: Way
    match: tuple[str, ...] = ()
    target: str = "DROP"


def sparing_rules(addresses: list[str], rules: list[Rule]) -> list[Rule]:
    """RETURN rules first in each chain of ``rules`` for the node's own ``addresses``: a
    peer CIDR that holds the node's own address never cuts the node off from itself."""
    spared = []
    for way in sorted({r.way for r in rules}):
        flag = "-s" if way == "in" else "-d"
        spared += [Rule(way, (flag, f"{a}/32"), "RETURN") for a in addresses]
    return spared + rules


def partition_rules(networks: list[str], chosen: Direction) -> list[Rule]:
    rules = []
    for way in ways(chosen):
        flag = "-s" if way == "in" else "-d"
        rules += [Rule(way, (flag, network)) for network in networks]
    return rules


def loss_rules(chance: str, networks: list[str], chosen: Direction) -> list[Rule]:
    statistic = ("-m", "statistic", "--mode", "random", "--probability", chance)
    rules = []
    for way in ways(chosen):
        flag = "-s" if way == "in" else "-d"
        if networks:
            rules += [Rule(way, (flag, network, *statistic)) for network in networks]
        else:
            rules.append(Rule(way, statistic))
    return rules


def dns_rules() -> list[Rule]:
    return [Rule("out", ("-p", proto, "--dport", DNS_PORT)) for proto in ("udp", "tcp")]


def chain(order: str, way: Way) -> str:
    """The order's chain (iptables allows 28 characters; an order name can be longer)."""
    digest = hashlib.sha256(order.encode()).hexdigest()[:10]
    return f"CK-{digest}-{way.upper()}"


def comment(order: str) -> str:
    return f"chaoskit order {order}"


def jump(verb: str, order: str, way: Way) -> list[str]:
    """-C (is it there), -I (put it first) or -D the jump from INPUT/OUTPUT to the chain."""
    position = ["1"] if verb == "-I" else []
    return [
        IPTABLES, "-w", verb, PARENT[way], *position,
        "-m", "comment", "--comment", comment(order), "-j", chain(order, way),
    ]  # fmt: skip


def chain_command(verb: str, order: str, way: Way) -> list[str]:
    """-N (create), -F (flush) or -X (delete) the order's chain."""
    return [IPTABLES, "-w", verb, chain(order, way)]


def rule_command(order: str, rule: Rule) -> list[str]:
    return [
        IPTABLES, "-w", "-A", chain(order, rule.way), *rule.match,
        "-m", "comment", "--comment", comment(order), "-j", rule.target,
    ]  # fmt: skip


class Netns:
    """Where rules go: a pod's network namespace, or the node's own (``pid`` None)."""

    def __init__(self, host: Host, pid: int | None) -> None:
        self.host, self.pid = host, pid

    def __str__(self) -> str:
        where = f"pid {self.pid}'s network" if self.pid is not None else "the node's network"
        return f"{where} on {self.host.node}"

    def run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self.pid is None:
            return self.host.run(*argv, check=check)
        return pod_run(self.host, self.pid, argv, check=check)


def apply_rules(netns: Netns, order: str, rules: list[Rule]) -> None:
    """Idempotent: the chains are (re)filled, the jumps added once."""
    for way in sorted({r.way for r in rules}):
        proc = netns.run(chain_command("-N", order, way), check=False)
        if proc.returncode != 0 and "already exists" not in (proc.stderr + proc.stdout):
            raise HostFailed(f"iptables -N in {netns}: {last_line(proc)}")
        netns.run(chain_command("-F", order, way))
        for rule in (r for r in rules if r.way == way):
            netns.run(rule_command(order, rule))
        if netns.run(jump("-C", order, way), check=False).returncode != 0:
            netns.run(jump("-I", order, way))


def remove_rules(netns: Netns, order: str) -> None:
    """Deletes the order's jumps and chains, whichever exist; the rest is left alone."""
    for way in ("in", "out"):
        for _ in range(10):  # one jump unless someone doubled it
            if netns.run(jump("-C", order, way), check=False).returncode != 0:
                break
            netns.run(jump("-D", order, way))
        for verb in ("-F", "-X"):
            proc = netns.run(chain_command(verb, order, way), check=False)
            if proc.returncode != 0 and not any(m in proc.stderr + proc.stdout for m in _MISSING):
                raise HostFailed(f"iptables {verb} in {netns}: {last_line(proc)}")


def _iptables_fault(build: Callable[[Mapping[str, str]], list[Rule]]) -> tuple[ApplyFn, UndoFn]:
    def apply(host: Host, params: Mapping[str, str]) -> Info:
        order = order_name(params)
        rules = build(params)  # checks the parameters before anything changes
        pid = require_pid(host, params)
        apply_rules(Netns(host, pid), order, rules)
        return {"pod": pod_name(params), "pid": str(pid), "rules": str(len(rules))}

    def undo(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
        order = order_name(params)
        pid = sandbox_pid(host, params)
        if pid is None:
            return  # the pod's sandbox is gone, and its network namespace with the rules
        remove_rules(Netns(host, pid), order)

    return apply, undo


def _node_iptables_fault(
    build: Callable[[Mapping[str, str], list[str]], list[Rule]],
) -> tuple[ApplyFn, UndoFn]:
    """Rules in the node's own network namespace: what the node's processes (kubelet,
    kube-proxy, containerd, pods on the host's network such as etcd and the API server)
    send and receive. Pods on the pod network, this agent included, are routed through
    the node (FORWARD) and keep their traffic. The node's own addresses are spared."""

    def apply(host: Host, params: Mapping[str, str]) -> Info:
        order = order_name(params)
        resolved = resolve_hosts(host, params)
        rules = build(params, resolved)  # checks the parameters before anything changes
        apply_rules(Netns(host, None), order, sparing_rules(own_addresses(host), rules))
        info = {"node": host.node, "rules": str(len(rules))}
        if resolved:
            info["peer_hosts"] = ",".join(resolved)
        return info

    def undo(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
        remove_rules(Netns(host, None), order_name(params))

    return apply, undo


def _partition(params: Mapping[str, str]) -> list[Rule]:
    return partition_rules(peers(params, required=True), direction(params, "both"))


def _node_partition(params: Mapping[str, str], extra: list[str]) -> list[Rule]:
    networks = node_peers(params, extra, required=True)
    return partition_rules(networks, direction(params, "both"))


def _node_loss(params: Mapping[str, str], extra: list[str]) -> list[Rule]:
    networks = node_peers(params, extra, required=False)
    return loss_rules(probability(params), networks, direction(params, "egress"))


def _loss(params: Mapping[str, str]) -> list[Rule]:
    return loss_rules(
        probability(params), peers(params, required=False), direction(params, "egress")
    )


def _dns(params: Mapping[str, str]) -> list[Rule]:
    return dns_rules()


register(NodeFault("net-partition", *_iptables_fault(_partition)))
register(NodeFault("net-loss", *_iptables_fault(_loss)))
register(NodeFault("dns-outage", *_iptables_fault(_dns)))
register(NodeFault("node-partition", *_node_iptables_fault(_node_partition)))
register(NodeFault("node-loss", *_node_iptables_fault(_node_loss)))


# ---------------------------------------------------------------------------- tc


def handle(order: str) -> str:
    """The root qdisc handle of the order's tc change: a hex major from 1 to fffe."""
    major = int(hashlib.sha256(order.encode()).hexdigest()[:8], 16) % 0xFFFE + 1
    return f"{major:x}:"


def show_root() -> list[str]:
    return [TC, "qdisc", "show", "dev", POD_INTERFACE, "root"]


def tbf_command(order: str, limit: str, size: str) -> list[str]:
    return [
        TC, "qdisc", "add", "dev", POD_INTERFACE, "root", "handle", handle(order),
        "tbf", "rate", limit, "burst", size, "latency", TBF_LATENCY,
    ]  # fmt: skip


def netem_command(order: str, delay: str, jitter: str) -> list[str]:
    return [
        TC, "qdisc", "add", "dev", POD_INTERFACE, "root", "handle", handle(order),
        "netem", "delay", delay, *([jitter] if jitter else []),
    ]  # fmt: skip


def delete_root(order: str) -> list[str]:
    # With the handle: the kernel refuses to delete a root qdisc that has another one.
    return [TC, "qdisc", "del", "dev", POD_INTERFACE, "root", "handle", handle(order)]


def root_qdisc(text: str) -> tuple[str, str]:
    """(kind, handle) of ``tc qdisc show dev eth0 root``'s line: ("noqueue", "0:")."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "qdisc":
            return words[1], words[2]
    return "", "0:"


def no_netem(proc: subprocess.CompletedProcess[str]) -> bool:
    """tc's answer when the kernel has no sch_netem (and no module to load)."""
    text = (proc.stderr + proc.stdout).lower()
    return "qdisc kind is unknown" in text or 'unknown qdisc "netem"' in text


def _qdisc_fault(kind: str) -> tuple[ApplyFn, UndoFn]:
    def command(order: str, params: Mapping[str, str]) -> list[str]:
        if kind == "tbf":
            return tbf_command(order, rate(params), burst(params))
        return netem_command(
            order,
            millis(params, "delay_ms", required=True),
            millis(params, "jitter_ms", required=False),
        )

    def apply(host: Host, params: Mapping[str, str]) -> Info:
        order = order_name(params)
        add = command(order, params)  # checks the parameters before anything changes
        pid = require_pid(host, params)
        info = {"pod": pod_name(params), "pid": str(pid), "handle": handle(order)}
        current_kind, current = root_qdisc(pod_run(host, pid, show_root()).stdout)
        if current == handle(order):
            return info  # applied already (an agent restart re-applies)
        if current != "0:":
            raise FaultRefused(
                f"{pod_name(params)}'s {POD_INTERFACE} on {host.node} already has a root qdisc "
                f"({current_kind} {current}) that is not this order's"
            )
        proc = pod_run(host, pid, add, check=False)
        if proc.returncode != 0:
            if kind == "netem" and no_netem(proc):
                raise FaultRefused(NO_NETEM)
            raise HostFailed(
                f"{' '.join(add)} in {pod_name(params)} on {host.node}: {last_line(proc)}"
            )
        return info

    def undo(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
        order = order_name(params)
        pid = sandbox_pid(host, params)
        if pid is None:
            return  # the pod's sandbox is gone, and its interface with the qdisc
        _, current = root_qdisc(pod_run(host, pid, show_root()).stdout)
        if current == handle(order):
            pod_run(host, pid, delete_root(order))

    return apply, undo


register(NodeFault("net-bandwidth", *_qdisc_fault("tbf")))
register(NodeFault("net-delay", *_qdisc_fault("netem")))
