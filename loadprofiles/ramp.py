"""Ramp: from one shopper up to --users, linearly over --run-time, to find where it hurts.

    locust -f loadprofiles/ramp.py --headless --host http://127.0.0.1:PORT \
        --users 200 --spawn-rate 10 --run-time 3m
"""

from __future__ import annotations

from _shapes import Tick, plan_from_options, ramp
from _shop import ShopUser
from locust import LoadTestShape

__all__ = ["Ramp", "ShopUser"]


class Ramp(LoadTestShape):
    use_common_options = True

    def tick(self) -> Tick:
        plan = plan_from_options(self.runner.environment.parsed_options)
        return ramp(plan, self.get_run_time())
