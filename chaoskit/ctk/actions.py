"""Chaos Toolkit actions: one typed function per chaoskit fault, plus the rollback.

Each function injects its fault (see ``chaoskit faults list``) through the run's fault
session: victims chosen with the run's seed within the blast-radius limit, what must be
undone written to the state file first, a ``duration`` held and rolled back inside the
action. A fault held without ``duration`` stays until ``rollback_faults`` (put it under
the experiment's ``rollbacks``), the end of the run, or ``chaoskit recover``.

Every function returns what it did: the victims, timestamps and details, which Chaos
Toolkit keeps in the journal.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "etcd_restore_drill",
    "kill_containerd",
    "kill_containers",
    "kill_control_plane",
    "kill_etcd_members",
    "kill_kube_proxy",
    "kill_kubelet",
    "kill_nodes",
    "kill_pods",
    "pause_nodes",
    "restart_nodes",
    "rollback_faults",
    "stop_containerd",
    "stop_control_plane",
    "stop_etcd_members",
    "stop_kubelet",
    "stop_nodes",
]

FAULT_ACTIONS = {
    "kill_pods": "pod-kill",
    "kill_containers": "container-kill",
    "stop_nodes": "node-stop",
    "kill_nodes": "node-kill",
    "pause_nodes": "node-pause",
    "restart_nodes": "node-restart",
    "stop_kubelet": "kubelet-stop",
    "kill_kubelet": "kubelet-kill",
    "kill_containerd": "containerd-kill",
    "stop_containerd": "containerd-stop",
    "kill_kube_proxy": "kube-proxy-kill",
    "kill_etcd_members": "etcd-kill",
    "stop_etcd_members": "etcd-stop",
    "kill_control_plane": "control-plane-kill",
    "stop_control_plane": "control-plane-stop",
    "etcd_restore_drill": "etcd-restore-drill",
}
"""Which fault each action injects."""

_NOT_ARGUMENTS = ("configuration", "secrets")


def _inject(fault: str, arguments: dict[str, Any]) -> dict[str, Any]:
    configuration = arguments.get("configuration")
    given = {k: v for k, v in arguments.items() if k not in _NOT_ARGUMENTS and v is not None}
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.get(configuration)
    return ctx.session.inject(fault, given, where=fault).to_dict()


def kill_pods(
    *,
    namespace: str,
    selector: str,
    count: int | None = None,
    percent: float | None = None,
    grace_period: int | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deletes pods chosen by label selector: ``count`` of them or ``percent`` (rounded
    up), with ``grace_period`` seconds (0: at once; unset: the pod's own)."""
    return _inject("pod-kill", locals())


def kill_containers(
    *,
    namespace: str,
    selector: str,
    container: str | None = None,
    signal: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Kills the main process of one container (default: the first) in chosen pods."""
    return _inject("container-kill", locals())


def stop_nodes(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``docker stop`` of chosen node containers (default one worker; ``holding`` /
    ``sparing``: only / never a node running a pod that NAMESPACE/SELECTOR matches, as for
    every node fault); started on rollback."""
    return _inject("node-stop", locals())


def kill_nodes(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``docker kill`` of chosen node containers (power cut); started on rollback."""
    return _inject("node-kill", locals())


def pause_nodes(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``docker pause`` of chosen node containers (frozen); unpaused on rollback."""
    return _inject("node-pause", locals())


def restart_nodes(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``docker restart`` of chosen node containers (a reboot)."""
    return _inject("node-restart", locals())


def stop_kubelet(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs kubelet and stops its unit on chosen nodes: the Node goes NotReady while
    its container and pods live on. Started again on rollback."""
    return _inject("kubelet-stop", locals())


def kill_kubelet(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs kubelet on chosen nodes; systemd restarts it."""
    return _inject("kubelet-kill", locals())


def kill_containerd(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs containerd on chosen nodes; systemd restarts it."""
    return _inject("containerd-kill", locals())


def stop_containerd(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs containerd and stops its unit on chosen nodes; started on rollback."""
    return _inject("containerd-stop", locals())


def kill_kube_proxy(
    *,
    nodes: list[str] | None = None,
    role: str | None = None,
    holding: str | None = None,
    sparing: str | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs kube-proxy on chosen nodes; kubelet restarts it."""
    return _inject("kube-proxy-kill", locals())


def kill_etcd_members(
    *,
    count: int | None = None,
    percent: float | None = None,
    nodes: list[str] | None = None,
    target: str | None = None,
    allow_quorum_loss: bool | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs etcd on N members (``target``: any, leader, followers). A majority loses
    quorum and needs ``allow_quorum_loss: true``."""
    return _inject("etcd-kill", locals())


def stop_etcd_members(
    *,
    count: int | None = None,
    percent: float | None = None,
    nodes: list[str] | None = None,
    target: str | None = None,
    allow_quorum_loss: bool | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Holds N etcd members down (static pod manifests moved away) until rollback."""
    return _inject("etcd-stop", locals())


def kill_control_plane(
    *,
    component: str,
    nodes: list[str] | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """SIGKILLs kube-apiserver, kube-controller-manager or kube-scheduler on chosen
    control planes (``percent: 100`` for all); kubelet restarts it."""
    return _inject("control-plane-kill", locals())


def stop_control_plane(
    *,
    component: str,
    nodes: list[str] | None = None,
    count: int | None = None,
    percent: float | None = None,
    max_victims: int | None = None,
    duration: float | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Holds a control-plane component down (manifest moved away) until rollback."""
    return _inject("control-plane-stop", locals())


def etcd_restore_drill(
    *,
    namespace: str,
    snapshot_node: str | None = None,
    verify_timeout: float | None = None,
    destroy: str | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Snapshots etcd, deletes ``namespace`` (``destroy="namespace"``) or loses etcd's data
    (``"etcd-data"``), restores every member from the snapshot and verifies the namespace's
    desired state is back."""
    return _inject("etcd-restore-drill", locals())


def rollback_faults(configuration: dict[str, Any] | None = None) -> list[str]:
    """Undoes every fault of this run that is still in place; returns what it undid."""
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.current()
    if ctx is None:
        return []
    return [c.undo.description for c in ctx.session.rollback()]
