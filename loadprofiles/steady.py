"""Steady: the same number of shoppers for the whole run.

    locust -f loadprofiles/steady.py --headless --host http://127.0.0.1:PORT \
        --users 20 --spawn-rate 5 --run-time 1m
"""

from __future__ import annotations

from _shapes import Tick, plan_from_options, steady
from _shop import ShopUser
from locust import LoadTestShape

__all__ = ["ShopUser", "Steady"]


class Steady(LoadTestShape):
    use_common_options = True

    def tick(self) -> Tick:
        plan = plan_from_options(self.runner.environment.parsed_options)
        return steady(plan, self.get_run_time())
