"""The load shapes as plain functions of time: what ``tick()`` returns at ``t`` seconds.

Kept free of Locust imports (Locust monkey-patches the process it is imported into) so that
the plans can be read and tested anywhere; the profiles wrap them in ``LoadTestShape``
classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Tick = tuple[int, float] | None
"""(user count, spawn rate per second), or None to stop the test."""

SPIKE_FACTOR = 10
"""A flash sale brings ten times the usual crowd."""


@dataclass(frozen=True)
class Plan:
    """The parameters every shape takes: Locust's --users, --spawn-rate and --run-time."""

    users: int
    """Peak users (flash_sale, ramp) or the constant user count (steady)."""
    spawn_rate: float
    """Users started (or stopped) per second when the target changes."""
    duration: float
    """Seconds from the first tick until the shape stops the test."""
    sale_start: float | None = None
    """flash_sale: seconds of baseline before the spike (default: a fifth of the run)."""
    sale_hold: float | None = None
    """flash_sale: seconds the peak is held (default: half of the run)."""

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise ValueError(f"spawn rate must be positive, not {self.spawn_rate}")
        if self.duration <= 0:
            raise ValueError(f"duration must be positive, not {self.duration}")
        start, hold = self.sale_window()
        if start < 0 or hold < 0 or start + hold > self.duration:
            raise ValueError(
                f"sale start {start:g} s + hold {hold:g} s must fit in the run of "
                f"{self.duration:g} s"
            )

    def sale_window(self) -> tuple[float, float]:
        start = self.duration * 0.2 if self.sale_start is None else self.sale_start
        hold = self.duration * 0.5 if self.sale_hold is None else self.sale_hold
        return start, hold

    @property
    def baseline(self) -> int:
        return max(1, self.users // SPIKE_FACTOR)


def flash_sale(plan: Plan, t: float) -> Tick:
    """Baseline, then x10 within seconds at the sale's start, held, then a linear decay."""
    if t >= plan.duration:
        return None
    start, hold = plan.sale_window()
    if t < start:
        return plan.baseline, plan.spawn_rate
    if t < start + hold:
        return plan.users, plan.spawn_rate
    decay = plan.duration - start - hold
    left = (plan.duration - t) / decay
    users = plan.baseline + math.ceil((plan.users - plan.baseline) * left)
    return users, plan.spawn_rate


def steady(plan: Plan, t: float) -> Tick:
    """The same number of users for the whole run."""
    if t >= plan.duration:
        return None
    return plan.users, plan.spawn_rate


def ramp(plan: Plan, t: float) -> Tick:
    """From one user up to the peak, linearly over the run: where does it start to hurt?"""
    if t >= plan.duration:
        return None
    users = 1 + math.floor((plan.users - 1) * t / plan.duration)
    return users, plan.spawn_rate


SHAPES = {"flash_sale": flash_sale, "steady": steady, "ramp": ramp}


DEFAULT_USERS = 50
DEFAULT_DURATION = 60.0
SPAWN_SECONDS = 4
"""Without --spawn-rate, the peak is reached in about this many seconds: a spike, not a ramp."""


def plan_from_options(options: object) -> Plan:
    """The plan from Locust's parsed options (--users, --spawn-rate, --run-time, --sale-*)."""
    users = getattr(options, "num_users", None) or DEFAULT_USERS
    spawn_rate = getattr(options, "spawn_rate", None) or max(1.0, users / SPAWN_SECONDS)
    return Plan(
        users=int(users),
        spawn_rate=float(spawn_rate),
        duration=float(getattr(options, "run_time", None) or DEFAULT_DURATION),
        sale_start=getattr(options, "sale_start", None),
        sale_hold=getattr(options, "sale_hold", None),
    )
