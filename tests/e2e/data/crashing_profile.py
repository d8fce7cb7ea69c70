"""A load profile that crashes on purpose: Locust exits with code 3 after 12 seconds of
browsing, in the middle of the experiment it was meant to load (tests/e2e/test_suite.py)."""

from __future__ import annotations

import os

import gevent
from locust import HttpUser, between, events, task

CRASH_AFTER_S = 12


class Browser(HttpUser):
    wait_time = between(0.2, 0.5)

    @task
    def products(self) -> None:
        self.client.get("/products")


@events.test_start.add_listener
def crash_later(**_: object) -> None:
    gevent.spawn_later(CRASH_AFTER_S, os._exit, 3)
