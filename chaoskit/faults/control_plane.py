"""kube-apiserver, kube-controller-manager and kube-scheduler faults, on one, some or all
control-plane nodes (``percent: 100`` for all).

``control-plane-kill`` SIGKILLs the component's process: kubelet restarts it within
seconds (longer once in crash back-off). ``control-plane-stop`` holds it down by moving
its static pod manifest away until rollback: with the controller manager held down, a
deleted pod is never replaced, which the oracle then reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chaoskit.faults.base import Hold, help_
from chaoskit.faults.components import ComponentFault, ControlPlaneChoice
from chaoskit.faults.registry import register

Component = Literal["kube-apiserver", "kube-controller-manager", "kube-scheduler"]


@dataclass(frozen=True, kw_only=True)
class ControlPlaneParams(ControlPlaneChoice):
    component: Component = field(
        metadata=help_("kube-apiserver, kube-controller-manager or kube-scheduler")
    )


@dataclass(frozen=True, kw_only=True)
class ControlPlaneHoldParams(ControlPlaneParams, Hold):
    pass


class _ControlPlaneFault(ComponentFault):
    params_type = ControlPlaneParams

    def component(self) -> str:
        return str(self.params.component)


@register
class ControlPlaneKill(_ControlPlaneFault):
    name = "control-plane-kill"
    action = "kill_control_plane"
    summary = "SIGKILL a control-plane component on chosen control planes; kubelet restarts it"


@register
class ControlPlaneStop(_ControlPlaneFault):
    name = "control-plane-stop"
    action = "stop_control_plane"
    summary = "hold a control-plane component down (manifest moved away) until rollback"
    holds = True
    params_type = ControlPlaneHoldParams
