"""The chaoskit control: wires a Chaos Toolkit run to chaoskit's timeline, oracle and
rollback. Declare it once at the top of an experiment::

    controls:
      - name: chaoskit
        provider: {type: python, module: chaoskit.ctk.control}

- before the experiment: resolve the target (refusing contexts that are not chaoskit's
  kind clusters) and start watching; an unsafe target interrupts the run;
- before the method: record the desired state, if the hypothesis has not yet;
- after each chaoskit action: a failed fault (a selector that matches nothing, a refused
  argument) interrupts the run, so it can never pass silently;
- after the experiment: roll back whatever is still in place and add chaoskit's results
  (victims, timeline, recovery split by component, oracle verdicts) to the journal under
  ``chaoskit``.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaoskit.ctk import context as run_context
from chaoskit.ctk.summary import reason
from chaoskit.errors import ChaoskitError

logger = logging.getLogger(__name__)

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "before_experiment_control",
    "before_method_control",
    "cleanup_control",
    "configure_control",
]

CHAOSKIT_MODULES = ("chaoskit.ctk.actions", "chaoskit.ctk.probes")


def configure_control(
    configuration: dict[str, Any] | None = None,
    experiment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    title = str((experiment or {}).get("title", ""))
    run_context.configure(configuration, what=title)


def before_experiment_control(
    context: Any = None, configuration: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    try:
        run_context.get(configuration)
    except ChaoskitError as e:
        raise InterruptExecution(f"chaoskit: {e}") from e


def before_method_control(
    context: Any = None, configuration: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    try:
        ctx = run_context.get(configuration)
        ctx.record_desired()
    except ChaoskitError as e:
        raise InterruptExecution(f"chaoskit: {e}") from e


def after_activity_control(
    context: Any = None,
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    activity = context or {}
    provider = activity.get("provider") or {}
    if activity.get("type") != "action" or provider.get("module") != CHAOSKIT_MODULES[0]:
        return
    if (state or {}).get("status") == "failed":
        lines = (state or {}).get("exception") or ["failed"]
        why = reason(str(lines[-1]))
        raise InterruptExecution(f"chaoskit action {activity.get('name')!r} failed: {why}")


def after_experiment_control(
    context: Any = None,
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    result = run_context.finish()
    if state is not None and result is not None:
        state["chaoskit"] = result


def cleanup_control() -> None:
    run_context.reset()
