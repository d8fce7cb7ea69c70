"""Container runtime faults: containerd dies on a node.

Running containers survive (their shims hold them); kubelet loses its runtime and the
Node reports the runtime as down until containerd is back. ``containerd-kill`` SIGKILLs it
(systemd restarts it within a second); ``containerd-stop`` also stops the unit, held until
rollback.
"""

from __future__ import annotations

from chaoskit.faults.kubelet import UnitFault, UnitHoldParams
from chaoskit.faults.registry import register


@register
class ContainerdKill(UnitFault):
    name = "containerd-kill"
    action = "kill_containerd"
    summary = "SIGKILL containerd on a node; systemd restarts it"
    unit = "containerd"


@register
class ContainerdStop(UnitFault):
    name = "containerd-stop"
    action = "stop_containerd"
    summary = "SIGKILL containerd and stop its unit; started on rollback"
    unit = "containerd"
    holds = True
    params_type = UnitHoldParams
