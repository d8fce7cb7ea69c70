"""The chaoskit control: wires a Chaos Toolkit run to chaoskit's timeline, oracle and
rollback. Declare it once at the top of an experiment::

    controls:
      - name: chaoskit
        provider: {type: python, module: chaoskit.ctk.control}

- before the experiment: resolve the target (refusing contexts that are not chaoskit's
  kind clusters) and start watching; an unsafe target interrupts the run;
- before the method: record the desired state, if the hypothesis has not yet;
- after each step of the method that calls chaoskit (an action of any chaoskit module,
  or a chaoskit probe used as a step): a failure (a selector that matches nothing, a
  refused argument, a leader that could not be marked, a state that did not converge)
  interrupts the run before the next step, so no later fault acts on a stale label or
  victim and nothing passes silently. Steady-state probes are judged by Chaos Toolkit's
  tolerances, and a failed rollback does not stop the rollbacks after it (chaoskit's own
  rollback at the end reports what it could not undo);
- after the experiment: roll back whatever is still in place and add chaoskit's results
  (victims, timeline, recovery split by component, oracle verdicts) to the journal under
  ``chaoskit``.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaoskit.ctk import CHAOSKIT_MODULES
from chaoskit.ctk import context as run_context
from chaoskit.ctk.summary import reason
from chaoskit.errors import ChaoskitError

logger = logging.getLogger(__name__)

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "after_method_control",
    "before_experiment_control",
    "before_method_control",
    "before_rollback_control",
    "cleanup_control",
    "configure_control",
]

_in_method = [False]
"""Whether the method is running: only its steps stop the run when they fail."""


def configure_control(
    configuration: dict[str, Any] | None = None,
    experiment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    title = str((experiment or {}).get("title", ""))
    _in_method[0] = False
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
    _in_method[0] = True


def after_method_control(**kwargs: Any) -> None:
    _in_method[0] = False


def before_rollback_control(**kwargs: Any) -> None:
    # An interrupted method may not have reached after_method_control's bookkeeping.
    _in_method[0] = False


def after_activity_control(
    context: Any = None,
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    activity = context or {}
    provider = activity.get("provider") or {}
    if not _in_method[0] or provider.get("module") not in CHAOSKIT_MODULES:
        return
    if (state or {}).get("status") == "failed":
        lines = (state or {}).get("exception") or ["failed"]
        why = reason(str(lines[-1]))
        kind = activity.get("type") or "activity"
        raise InterruptExecution(
            f"chaoskit {kind} {activity.get('name')!r} failed: {why} "
            "(the run stops before its next step)"
        )


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
    _in_method[0] = False
    run_context.reset()
