"""The kvstore example's load: users write fresh keys through the published entry
(``kv-api``) and now and then read one of theirs back.

Each write the service acknowledged (201) is recorded with chaoskit's opt-in helper,
``chaoskit.load.recorder.acknowledge``: the invariant ``checks/acknowledged_writes.py``
reads every one of them back after the trial. Under plain ``locust`` (no chaoskit, or no
``CHAOSKIT_LOAD_OUT``) nothing is recorded::

    locust -f load/locustfile.py --headless -u 10 -r 5 -t 30s --host http://127.0.0.1:PORT
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from locust import FastHttpUser, between, task

try:
    from chaoskit.load.recorder import acknowledge
except ImportError:  # plain locust: nothing to record to

    def acknowledge(**fields: Any) -> None:
        """chaoskit's recorder is not installed: the write is not recorded."""


MAX_OWN_KEYS = 100
"""Keys a user remembers to read back (the latest ones)."""


class KvUser(FastHttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.written: dict[str, str] = {}

    @task(4)
    def write(self) -> None:
        key, value = str(uuid.uuid4()), secrets.token_hex(secrets.choice(range(4, 33)))
        with self.client.put(
            f"/kv/{key}", data=value, name="/kv/[key]", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"PUT answered {response.status_code}")
                return
            response.success()
        acknowledge(key=key, value=value)
        self.written[key] = value
        if len(self.written) > MAX_OWN_KEYS:
            del self.written[next(iter(self.written))]

    @task(1)
    def read(self) -> None:
        if not self.written:
            return
        key = secrets.choice(list(self.written))
        with self.client.get(f"/kv/{key}", name="/kv/[key]", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"GET answered {response.status_code}")
            elif response.text != self.written[key]:
                response.failure("GET answered another value than the one written")
            else:
                response.success()
