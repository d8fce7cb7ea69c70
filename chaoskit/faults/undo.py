"""Undo operations: the few ways a recorded change is reverted.

Rollback and ``chaoskit recover`` apply :class:`~chaoskit.faults.state.Undo` records by
operation name, without needing the fault that recorded them. Every operation is
idempotent (undoing twice is harmless) and checks before it acts: a node that is running
already is not started again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chaoskit.faults import signals
from chaoskit.faults.agentnodes import RELEASE_OP, Hands
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.state import Undo

logger = logging.getLogger(__name__)

UndoOp = Callable[[Hands, dict[str, Any]], None]
_OPS: dict[str, UndoOp] = {}


def undo_op(name: str) -> Callable[[UndoOp], UndoOp]:
    def register(func: UndoOp) -> UndoOp:
        _OPS[name] = func
        return func

    return register


def apply(hands: Hands, undo: Undo) -> None:
    """Applies ``undo``; Ctrl-C and SIGTERM wait until it is done."""
    from chaoskit.faults.registry import load_all  # noqa: PLC0415 - ops live in fault modules

    load_all()
    op = _OPS.get(undo.op)
    if op is None:
        raise FaultFailed(f"unknown undo operation {undo.op!r} ({undo.description})")
    logger.info("undo: %s", undo.description)
    with signals.deferred():
        op(hands, undo.args)


def docker_start(node: str) -> Undo:
    return Undo("docker-start", {"node": node}, f"docker start {node}")


def docker_unpause(node: str) -> Undo:
    return Undo("docker-unpause", {"node": node}, f"docker unpause {node}")


def systemctl_start(node: str, unit: str) -> Undo:
    return Undo(
        "systemctl-start", {"node": node, "unit": unit}, f"systemctl start {unit} on {node}"
    )


def release_manifest(node: str, manifest: str) -> Undo:
    return Undo(
        "release-manifest",
        {"node": node, "manifest": manifest},
        f"put static pod manifest {manifest} back on {node}",
    )


@undo_op("docker-start")
def _docker_start(hands: Hands, args: dict[str, Any]) -> None:
    nodes = hands.nodes
    node = args["node"]
    state = nodes.state(node)
    if state == "paused":
        nodes.docker("unpause", node)
    elif state != "running":
        nodes.docker("start", node)


@undo_op("docker-unpause")
def _docker_unpause(hands: Hands, args: dict[str, Any]) -> None:
    nodes = hands.nodes
    node = args["node"]
    if nodes.state(node) == "paused":
        nodes.docker("unpause", node)


@undo_op("systemctl-start")
def _systemctl_start(hands: Hands, args: dict[str, Any]) -> None:
    nodes = hands.nodes
    nodes.systemctl(args["node"], "start", args["unit"])


@undo_op("release-manifest")
def _release_manifest(hands: Hands, args: dict[str, Any]) -> None:
    nodes = hands.nodes
    # Not waiting here for the container to run again: etcd members released one by one
    # after a quorum loss cannot run (their liveness probe fails without quorum) until the
    # next one is back. Whoever needs a member running waits for it (the restore drill).
    nodes.release_manifest(args["node"], args["manifest"])


@undo_op(RELEASE_OP)
def _agent_release(hands: Hands, args: dict[str, Any]) -> None:
    # The agent undoes the fault (start the unit, put the manifest back) and says so.
    hands.release(args["order"], float(args.get("expires_at", 0.0)))
