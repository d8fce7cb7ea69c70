"""Flash sale: a baseline crowd, ten times as many users within seconds when the sale opens,
held, then a decay back to the baseline.

    locust -f loadprofiles/flash_sale.py --headless --host http://127.0.0.1:PORT \
        --users 100 --spawn-rate 25 --run-time 2m [--sale-start 20 --sale-hold 60]

--users is the peak (the baseline is a tenth of it), --run-time the whole sale; by default
the spike comes after a fifth of the run and is held for half of it.
"""

from __future__ import annotations

from _shapes import Tick, flash_sale, plan_from_options
from _shop import ShopUser
from locust import LoadTestShape

__all__ = ["FlashSale", "ShopUser"]


class FlashSale(LoadTestShape):
    use_common_options = True

    def tick(self) -> Tick:
        plan = plan_from_options(self.runner.environment.parsed_options)
        return flash_sale(plan, self.get_run_time())
