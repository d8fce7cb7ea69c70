"""The agent's network faults: exact command lines, their undo, idempotence, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaoskit.agent.nodeagent import host as h
from chaoskit.agent.nodeagent import network as n
from chaoskit.agent.nodeagent.orders import ORDER_PARAM, Order, applied_params

ORDER = "net-partition-0123456789"
CHAIN_IN, CHAIN_OUT = n.chain(ORDER, "in"), n.chain(ORDER, "out")
TAG = ["-m", "comment", "--comment", f"chaoskit order {ORDER}"]


class _Proc:
    def __init__(self, stdout: str = "", returncode: int = 0, stderr: str = "") -> None:
        self.stdout, self.stderr, self.returncode = stdout, stderr, returncode


class Node:
    """A node with crictl and one ready pod (sandbox pid 4242), and a pod network whose
    commands are recorded; ``answer`` decides each pod command's result."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, pods: str = "sandbox1\n") -> None:
        self.node_calls: list[tuple[str, ...]] = []
        self.pod_calls: list[list[str]] = []
        self.answer: Callable[[list[str]], _Proc] = lambda argv: _Proc()

        def node_run(host: h.Host, *argv: str, check: bool = True) -> _Proc:
            self.node_calls.append(argv)
            if argv[0] == "sh":
                return _Proc("/usr/bin/crictl")
            if argv[1] == "pods":
                return _Proc(pods)
            return _Proc("4242\n")  # crictl inspectp

        def pod_run(host: h.Host, pid: int, argv: list[str], *, check: bool = True) -> _Proc:
            assert pid == 4242
            self.pod_calls.append(argv)
            proc = self.answer(argv)
            if check and proc.returncode != 0:
                raise h.HostFailed(f"{argv}: {proc.stderr}")
            return proc

        monkeypatch.setattr(h.Host, "run", node_run)
        monkeypatch.setattr(n, "pod_run", pod_run)
        self.host = h.Host("w1", Path("/nonexistent"))


def params(**extra: str) -> dict[str, str]:
    return {ORDER_PARAM: ORDER, "pod_uid": "uid-1", "namespace": "shop", "pod": "order-7", **extra}


def test_commands_run_with_the_nodes_binaries_in_the_pods_network() -> None:
    assert n.pod_command(4242, ["iptables", "-w", "-S"]) == [
        "nsenter", "--target", "1", "--mount", "--net=/proc/4242/ns/net", "--",
        "iptables", "-w", "-S",
    ]  # fmt: skip


def test_the_agent_adds_the_order_name_to_what_it_applies() -> None:
    order = Order("net-loss-1", "u1", "w1", "net-loss", {"percent": "30"}, 1.0)
    assert applied_params(order) == {"percent": "30", ORDER_PARAM: "net-loss-1"}


def test_the_pod_is_found_by_uid_else_by_namespace_and_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = Node(monkeypatch)
    assert n.sandbox_pid(node.host, {"pod_uid": "uid-1"}) == 4242
    assert node.node_calls[1] == (
        "crictl", "pods", "-q", "--state", "ready", "--label=io.kubernetes.pod.uid=uid-1",
    )  # fmt: skip
    assert n.pod_labels({"namespace": "shop", "pod": "order-7"}) == [
        "--label=io.kubernetes.pod.namespace=shop",
        "--label=io.kubernetes.pod.name=order-7",
    ]
    with pytest.raises(h.FaultRefused, match="'pod_uid' \\(or 'namespace' and 'pod'\\)"):
        n.pod_labels({"namespace": "shop"})


def test_partition_both_ways_drops_to_and_from_each_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    node.answer = lambda argv: _Proc(returncode=1) if "-C" in argv else _Proc()
    info = h.FAULTS["net-partition"].apply(node.host, params(peers="10.96.0.1, 172.18.0.0/16"))
    assert info == {"pod": "shop/order-7", "pid": "4242", "rules": "4"}
    ipt = ["iptables", "-w"]
    assert node.pod_calls == [
        [*ipt, "-N", CHAIN_IN],
        [*ipt, "-F", CHAIN_IN],
        [*ipt, "-A", CHAIN_IN, "-s", "10.96.0.1/32", *TAG, "-j", "DROP"],
        [*ipt, "-A", CHAIN_IN, "-s", "172.18.0.0/16", *TAG, "-j", "DROP"],
        [*ipt, "-C", "INPUT", *TAG, "-j", CHAIN_IN],
        [*ipt, "-I", "INPUT", "1", *TAG, "-j", CHAIN_IN],
        [*ipt, "-N", CHAIN_OUT],
        [*ipt, "-F", CHAIN_OUT],
        [*ipt, "-A", CHAIN_OUT, "-d", "10.96.0.1/32", *TAG, "-j", "DROP"],
        [*ipt, "-A", CHAIN_OUT, "-d", "172.18.0.0/16", *TAG, "-j", "DROP"],
        [*ipt, "-C", "OUTPUT", *TAG, "-j", CHAIN_OUT],
        [*ipt, "-I", "OUTPUT", "1", *TAG, "-j", CHAIN_OUT],
    ]
    assert len(CHAIN_IN) <= 28 and n.chain("net-partition-other", "in") != CHAIN_IN


def test_applying_again_refills_the_chain_and_adds_no_second_jump(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = Node(monkeypatch)
    # The chain and the jump exist already (an agent that restarted re-applies).
    node.answer = lambda argv: (
        _Proc(returncode=1, stderr="iptables: Chain already exists.") if "-N" in argv else _Proc()
    )
    h.FAULTS["net-partition"].apply(node.host, params(peers="10.0.0.9", direction="egress"))
    verbs = [argv[2] for argv in node.pod_calls]
    assert verbs == ["-N", "-F", "-A", "-C"]
    assert node.pod_calls[2][3:6] == [CHAIN_OUT, "-d", "10.0.0.9/32"]


def test_undo_deletes_only_the_orders_jumps_and_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    present = {"INPUT": 1, "OUTPUT": 0}  # only the ingress jump is there

    def answer(argv: list[str]) -> _Proc:
        if argv[2] == "-C":
            return _Proc(returncode=0 if present[argv[3]] else 1)
        if argv[2] == "-D":
            present[argv[3]] -= 1
        if argv[2] in ("-F", "-X") and argv[3] == CHAIN_OUT:
            return _Proc(returncode=1, stderr="iptables: No chain/target/match by that name.")
        return _Proc()

    node.answer = answer
    fault = h.FAULTS["net-partition"]
    fault.undo(node.host, params(peers="10.0.0.9"), {})
    ipt = ["iptables", "-w"]
    assert node.pod_calls == [
        [*ipt, "-C", "INPUT", *TAG, "-j", CHAIN_IN],
        [*ipt, "-D", "INPUT", *TAG, "-j", CHAIN_IN],
        [*ipt, "-C", "INPUT", *TAG, "-j", CHAIN_IN],
        [*ipt, "-F", CHAIN_IN],
        [*ipt, "-X", CHAIN_IN],
        [*ipt, "-C", "OUTPUT", *TAG, "-j", CHAIN_OUT],
        [*ipt, "-F", CHAIN_OUT],
        [*ipt, "-X", CHAIN_OUT],
    ]


def test_an_undo_that_fails_for_another_reason_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    node.answer = lambda argv: (
        _Proc(returncode=1) if argv[2] == "-C" else _Proc(returncode=4, stderr="Permission denied")
    )
    with pytest.raises(h.HostFailed, match="Permission denied"):
        h.FAULTS["dns-outage"].undo(node.host, params(), {})


def test_undo_of_a_pod_that_is_gone_has_nothing_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch, pods="")
    for name in ("net-partition", "net-loss", "dns-outage", "net-bandwidth", "net-delay"):
        h.FAULTS[name].undo(node.host, params(), {})
    assert node.pod_calls == []
    with pytest.raises(h.FaultRefused, match="node w1 runs no ready pod shop/order-7"):
        h.FAULTS["dns-outage"].apply(node.host, params())


def test_loss_drops_a_share_of_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    h.FAULTS["net-loss"].apply(node.host, params(percent="30"))
    appended = [argv for argv in node.pod_calls if argv[2] == "-A"]
    statistic = ["-m", "statistic", "--mode", "random", "--probability", "0.3"]
    assert appended == [["iptables", "-w", "-A", CHAIN_OUT, *statistic, *TAG, "-j", "DROP"]]
    node.pod_calls.clear()
    h.FAULTS["net-loss"].apply(
        node.host, params(percent="12.5", peers="10.0.0.0/8", direction="both")
    )
    appended = [argv[3:-6] for argv in node.pod_calls if argv[2] == "-A"]
    chance = ["-m", "statistic", "--mode", "random", "--probability", "0.125"]
    assert appended == [
        [CHAIN_IN, "-s", "10.0.0.0/8", *chance],
        [CHAIN_OUT, "-d", "10.0.0.0/8", *chance],
    ]


def test_dns_outage_drops_udp_and_tcp_port_53_egress(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    h.FAULTS["dns-outage"].apply(node.host, params())
    appended = [argv[3:] for argv in node.pod_calls if argv[2] == "-A"]
    assert appended == [
        [CHAIN_OUT, "-p", "udp", "--dport", "53", *TAG, "-j", "DROP"],
        [CHAIN_OUT, "-p", "tcp", "--dport", "53", *TAG, "-j", "DROP"],
    ]


@pytest.mark.parametrize(
    ("fault", "extra", "message"),
    [
        ("net-partition", {}, "parameter 'peers' is required"),
        ("net-partition", {"peers": "10.0.0.300"}, "'10.0.0.300' is not an IP address or CIDR"),
        ("net-partition", {"peers": "fd00::1"}, "only IPv4 peers"),
        ("net-partition", {"peers": "10.0.0.1", "direction": "up"}, "direction 'up'"),
        ("net-loss", {"percent": "0"}, "more than 0 and at most 100"),
        ("net-loss", {"percent": "lots"}, "'lots' is not a number"),
        ("net-bandwidth", {"rate": "fast"}, "'fast' is not a tc rate"),
        ("net-bandwidth", {"rate": "1mbit", "burst": "-1"}, "'-1' is not a tc size"),
        ("net-delay", {"delay_ms": "1s"}, "'1s' is not a number of milliseconds"),
    ],
)
def test_bad_parameters_are_refused_before_anything_changes(
    monkeypatch: pytest.MonkeyPatch, fault: str, extra: dict[str, str], message: str
) -> None:
    node = Node(monkeypatch)
    with pytest.raises(h.FaultRefused, match=message):
        h.FAULTS[fault].apply(node.host, params(**extra))
    assert node.pod_calls == [] and node.node_calls == []


def test_a_fault_without_the_order_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node(monkeypatch)
    with pytest.raises(h.FaultRefused, match=r"'chaoskit\.io/order' is missing"):
        h.FAULTS["dns-outage"].apply(node.host, {"pod_uid": "uid-1"})


def _qdisc_node(monkeypatch: pytest.MonkeyPatch, root: str, add: _Proc | None = None) -> Node:
    node = Node(monkeypatch)
    node.answer = lambda argv: (
        _Proc(root) if argv[2] == "show" else (add or _Proc()) if argv[2] == "add" else _Proc()
    )
    return node


def test_bandwidth_adds_a_tbf_root_qdisc_with_the_orders_handle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = _qdisc_node(monkeypatch, "qdisc noqueue 0: root refcnt 2\n")
    handle = n.handle(ORDER)
    info = h.FAULTS["net-bandwidth"].apply(node.host, params(rate="1mbit", burst="16kb"))
    assert info == {"pod": "shop/order-7", "pid": "4242", "handle": handle}
    assert node.pod_calls == [
        ["tc", "qdisc", "show", "dev", "eth0", "root"],
        [
            "tc", "qdisc", "add", "dev", "eth0", "root", "handle", handle,
            "tbf", "rate", "1mbit", "burst", "16kb", "latency", "400ms",
        ],
    ]  # fmt: skip
    assert handle.endswith(":") and 1 <= int(handle[:-1], 16) <= 0xFFFE


def test_bandwidth_applied_again_changes_nothing_and_undo_deletes_only_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handle = n.handle(ORDER)
    node = _qdisc_node(monkeypatch, f"qdisc tbf {handle} root refcnt 2 rate 1Mbit\n")
    fault = h.FAULTS["net-bandwidth"]
    fault.apply(node.host, params(rate="1mbit"))
    assert [argv[2] for argv in node.pod_calls] == ["show"]
    fault.undo(node.host, params(rate="1mbit"), {})
    assert node.pod_calls[-1] == ["tc", "qdisc", "del", "dev", "eth0", "root", "handle", handle]
    other = _qdisc_node(monkeypatch, "qdisc tbf 1234: root refcnt 2\n")
    fault.undo(other.host, params(rate="1mbit"), {})
    assert [argv[2] for argv in other.pod_calls] == ["show"]  # not ours: left alone


def test_bandwidth_refuses_a_pod_whose_root_qdisc_is_someone_elses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = _qdisc_node(monkeypatch, "qdisc htb 1: root refcnt 2 r2q 10\n")
    with pytest.raises(h.FaultRefused, match=r"already has a root qdisc \(htb 1:\)"):
        h.FAULTS["net-bandwidth"].apply(node.host, params(rate="1mbit"))
    assert [argv[2] for argv in node.pod_calls] == ["show"]


def test_delay_uses_netem_where_the_kernel_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    node = _qdisc_node(monkeypatch, "qdisc noqueue 0: root refcnt 2\n")
    h.FAULTS["net-delay"].apply(node.host, params(delay_ms="100", jitter_ms="20"))
    assert node.pod_calls[-1] == [
        "tc", "qdisc", "add", "dev", "eth0", "root", "handle", n.handle(ORDER),
        "netem", "delay", "100ms", "20ms",
    ]  # fmt: skip


def test_delay_is_refused_in_one_line_on_a_kernel_without_netem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unknown = _Proc(returncode=2, stderr="Error: Specified qdisc kind is unknown.\n")
    node = _qdisc_node(monkeypatch, "qdisc noqueue 0: root refcnt 2\n", add=unknown)
    with pytest.raises(h.FaultRefused) as refused:
        h.FAULTS["net-delay"].apply(node.host, params(delay_ms="100"))
    assert str(refused.value) == "this kernel has no sch_netem: delay is not supported"
    # Another failure of tc is not mistaken for the missing module.
    busy = _Proc(returncode=2, stderr="RTNETLINK answers: Device or resource busy\n")
    node = _qdisc_node(monkeypatch, "qdisc noqueue 0: root refcnt 2\n", add=busy)
    with pytest.raises(h.HostFailed, match="Device or resource busy"):
        h.FAULTS["net-delay"].apply(node.host, params(delay_ms="100"))


class NodeNet:
    """A node whose own network commands are recorded: ``ip`` answers its addresses,
    ``getent`` resolves the load balancer's name, iptables finds no jump yet."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, ...]] = []

        def node_run(host: h.Host, *argv: str, check: bool = True) -> _Proc:
            self.calls.append(argv)
            if argv[0] == "ip":
                return _Proc(
                    "1: lo    inet 127.0.0.1/8 scope host lo\n"
                    "361: eth0    inet 172.18.0.6/16 brd 172.18.255.255 scope global eth0\n"
                )
            if argv[0] == "getent":
                return _Proc(
                    "172.18.0.2      STREAM lb\n172.18.0.2      DGRAM\n" if argv[2] == "lb" else "",
                    returncode=0 if argv[2] == "lb" else 2,
                )
            if "-C" in argv:
                return _Proc(returncode=1)
            return _Proc()

        monkeypatch.setattr(h.Host, "run", node_run)
        self.host = h.Host("w1", Path("/nonexistent"))

    def iptables(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] == "iptables"]


def test_a_node_partition_spares_the_nodes_own_addresses_and_resolves_peer_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = NodeNet(monkeypatch)
    p = {ORDER_PARAM: ORDER, "peers": "172.18.0.5,172.18.0.0/16", "peer_hosts": "lb"}
    info = h.FAULTS["node-partition"].apply(node.host, p)
    assert info == {"node": "w1", "rules": "6", "peer_hosts": "172.18.0.2"}
    appended = [c[3:] for c in node.iptables() if c[2] == "-A"]
    assert appended[:4] == [
        (CHAIN_IN, "-s", "127.0.0.1/32", *TAG, "-j", "RETURN"),
        (CHAIN_IN, "-s", "172.18.0.6/32", *TAG, "-j", "RETURN"),
        (CHAIN_IN, "-s", "172.18.0.5/32", *TAG, "-j", "DROP"),
        (CHAIN_IN, "-s", "172.18.0.0/16", *TAG, "-j", "DROP"),
    ]
    assert (CHAIN_IN, "-s", "172.18.0.2/32", *TAG, "-j", "DROP") in appended
    assert (CHAIN_OUT, "-d", "172.18.0.6/32", *TAG, "-j", "RETURN") in appended
    # in the node's own namespaces (Host.run), never a pod's
    assert ("iptables", "-w", "-I", "INPUT", "1", *TAG, "-j", CHAIN_IN) in node.calls
    node.calls.clear()
    h.FAULTS["node-partition"].undo(node.host, p, info)
    assert ("iptables", "-w", "-X", CHAIN_OUT) in node.calls


def test_node_partition_refusals_come_before_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    node = NodeNet(monkeypatch)
    apply = h.FAULTS["node-partition"].apply
    with pytest.raises(h.FaultRefused, match="loopback is never cut"):
        apply(node.host, {ORDER_PARAM: ORDER, "peers": "127.0.0.0/8"})
    with pytest.raises(h.FaultRefused, match="cannot resolve peer host 'nowhere'"):
        apply(node.host, {ORDER_PARAM: ORDER, "peers": "10.0.0.1", "peer_hosts": "nowhere"})
    with pytest.raises(h.FaultRefused, match="is not a host name"):
        apply(node.host, {ORDER_PARAM: ORDER, "peer_hosts": "-x;rm"})
    with pytest.raises(h.FaultRefused, match="'peers' is required"):
        apply(node.host, {ORDER_PARAM: ORDER})
    assert node.iptables() == []


def test_node_loss_drops_a_share_of_the_nodes_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    node = NodeNet(monkeypatch)
    h.FAULTS["node-loss"].apply(node.host, {ORDER_PARAM: ORDER, "percent": "30"})
    appended = [c[3:] for c in node.iptables() if c[2] == "-A"]
    assert appended[-1] == (
        CHAIN_OUT, "-m", "statistic", "--mode", "random", "--probability", "0.3",
        *TAG, "-j", "DROP",
    )  # fmt: skip
