"""Chaos Toolkit probes: the desired-state oracle and the API, as steady-state checks.

``desired_state_converged`` is the steady-state hypothesis of every chaoskit experiment:
before the method it records the desired state of the allowlisted namespaces (and checks
it holds); after, it waits, re-checking on every watch event, until it holds again or
``timeout`` passes, and then fails naming exactly what is missing.
"""

from __future__ import annotations

import time
from typing import Any

from urllib3.exceptions import HTTPError

from chaoskit.errors import OperationFailed

__all__ = ["api_serves", "desired_state_converged"]


class DesiredStateNotReached(OperationFailed):
    """The oracle's deadline passed with parts of the desired state missing."""


def desired_state_converged(
    timeout: float = 120,
    stable_for: float = 0,
    configuration: dict[str, Any] | None = None,
) -> bool:
    """True once the desired state holds (after a fault: and goes on holding ``stable_for``
    seconds); fails with the diff after ``timeout`` seconds."""
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.get(configuration)
    name = "before" if not ctx.session.injections else "after"
    verdict = ctx.converge(name, float(timeout), float(stable_for) if ctx.session.injections else 0)
    if not verdict.ok:
        raise DesiredStateNotReached(
            f"desired state not reached within {float(timeout):.0f} s: {verdict.summary()}"
        )
    return True


def api_serves(timeout: float = 30, configuration: dict[str, Any] | None = None) -> bool:
    """True once the API server answers a list of namespaces (within ``timeout``)."""
    from kubernetes import client  # noqa: PLC0415 - heavy: only when running

    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running

    ctx = context.get(configuration)
    core = client.CoreV1Api(ctx.target.api(retries=False))
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            core.list_namespace(limit=1, _request_timeout=5)
        except (client.ApiException, HTTPError, OSError) as e:
            if time.monotonic() > deadline:
                raise OperationFailed(f"the API did not answer within {timeout} s: {e}") from e
            time.sleep(0.5)
        else:
            return True
