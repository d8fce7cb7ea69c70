"""What the profiles' ShopUser does with each answer to an order: which ones are acknowledged
orders, which are failures, and that a failure in transit is retried once with the same key.

Runs in a separate interpreter: importing Locust monkey-patches the process it runs in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from chaoskit.load.profiles import REQUEST_TIMEOUT_ENV, REQUEST_TIMEOUT_S
from chaoskit.load.runner import LoadSpec, locust_env

REPO = Path(__file__).resolve().parents[3]
PROFILES = REPO / "loadprofiles"
CHAOSKIT = {"PATH": "/usr/bin", "PYTHONPATH": str(REPO)}
"""The child's environment: the profiles import chaoskit's recorder from this tree."""

CHECKOUT = textwrap.dedent(
    """
    import json, sys, types
    sys.path.insert(0, sys.argv[1])
    import _shop

    _shop.RETRY_PAUSE = 0

    class Response:
        def __init__(self, status, body, log):
            self.status_code, self.content, self.error, self.log = status, body, None, log
            if status == 0:
                self.error = ConnectionResetError("reset")
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def success(self):
            self.log.append("success")
        def failure(self, why):
            self.log.append(f"failure: {why}")

    def checkout(answers):
        log, sent = [], []
        def post(path, json, headers, name, catch_response):
            status, body = answers.pop(0)
            sent.append((name, headers["Idempotency-Key"]))
            return Response(status, body.encode(), log)
        user = types.SimpleNamespace(client=types.SimpleNamespace(post=post))
        user._order = lambda key, name: _shop.ShopUser._order(user, key, name=name)
        _shop.ShopUser.checkout(user)
        return {"sent": sent, "log": log}

    cases = {
        "created": [(201, '{"order_id": "o-1", "status": "paid"}')],
        "declined": [(402, '{"error": "payment_declined"}')],
        "sold_out": [(409, '{"error": "out_of_stock"}')],
        "key_conflict": [(409, '{"error": "conflict"}')],
        "bad_request": [(400, '{"error": "invalid_request"}')],
        "created_without_id": [(201, '{}')],
        "unavailable_then_replayed": [
            (503, '{"error": "backend_unavailable"}'), (200, '{"order_id": "o-2"}')
        ],
        "reset_twice": [(0, ''), (0, '')],
    }
    print(json.dumps({name: checkout(answers) for name, answers in cases.items()}))
    """
)


def test_orders_are_acknowledged_refused_failed_or_retried_with_the_same_key(
    tmp_path: Path,
) -> None:
    env = {"CHAOSKIT_RUN_ID": "run-unit", "CHAOSKIT_LOAD_OUT": str(tmp_path), **CHAOSKIT}
    proc = subprocess.run(
        [sys.executable, "-c", CHECKOUT, str(PROFILES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])

    for once in ("created", "declined", "sold_out"):
        assert result[once]["log"] == ["success"], once
    for failed in ("key_conflict", "bad_request", "created_without_id"):
        assert len(result[failed]["sent"]) == 1, failed
        assert result[failed]["log"][0].startswith("failure"), failed

    retried = result["unavailable_then_replayed"]
    assert [name for name, _ in retried["sent"]] == ["/orders", "/orders (retry)"]
    first_key, retry_key = (key for _, key in retried["sent"])
    assert first_key == retry_key and first_key.startswith("run-unit.")
    assert retried["log"] == ["failure: HTTP 503 backend_unavailable", "success"]
    reset = result["reset_twice"]
    assert len(reset["sent"]) == 2  # retried once, not more
    assert reset["log"] == ["failure: transport: ConnectionResetError"] * 2

    [acks_file] = tmp_path.glob("acks-*.jsonl")
    acks = [json.loads(line) for line in acks_file.read_text().splitlines()]
    assert [a["order_id"] for a in acks] == ["o-1", "o-2"]
    assert all(a["idempotency_key"].startswith("run-unit.") and a["t"] > 0 for a in acks)


SAMPLES = textwrap.dedent(
    """
    import json, socket, sys
    sys.path.insert(0, sys.argv[1])
    import gevent
    from chaoskit.load import recorder
    from locust.exception import CatchResponseError

    class ErrorResponse:
        def __init__(self, error):
            self.error = error

    def record(name, response_time, exception=None, response=None):
        recorder.record_request("GET", name, response_time, exception, response)

    record("timeout", 10003.2, gevent.Timeout(10))
    record("connect-timeout", 5001.0, socket.timeout("timed out"))
    # an order's failure reported by the user's code, the timeout behind it
    record("order-timeout", 9999.0, CatchResponseError("transport: Timeout"),
           ErrorResponse(gevent.Timeout(10)))
    record("reset", 12.3, ConnectionResetError("reset"))
    record("no-time", None, ConnectionResetError("reset"))
    record("slow", 9950.0)
    record("too-slow", 10400.0)  # answered, but after the client's timeout
    record("fast", 0.3)
    seconds = [s for second in recorder.PER_SECOND.requests.values() for s in second.items()]
    print(json.dumps({name: [b["failures"], dict(b["times"])] for (_, name), b in seconds}))
    print(json.dumps({"timeout": recorder.REQUEST_TIMEOUT_S,
                      "default": recorder.DEFAULT_REQUEST_TIMEOUT_S}))
    """
)


def _samples(env: dict[str, str]) -> tuple[dict[str, list[Any]], dict[str, float]]:
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLES, str(PROFILES)],
        capture_output=True,
        text=True,
        env={**CHAOSKIT, **env},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    *_, samples, timeouts = proc.stdout.splitlines()
    return json.loads(samples), json.loads(timeouts)


def test_a_timed_out_request_is_a_failure_at_the_full_timeout() -> None:
    samples, timeouts = _samples({"CHAOSKIT_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S)})
    full = str(int(REQUEST_TIMEOUT_S * 1000))
    assert timeouts["timeout"] == REQUEST_TIMEOUT_S
    for name in ("timeout", "connect-timeout", "order-timeout", "no-time", "too-slow"):
        assert samples[name] == [1, {full: 1}], name
    assert samples["reset"] == [1, {"13": 1}]  # a quick failure keeps its own wait
    # buckets are named by their upper bound: a percentile never flatters
    assert samples["slow"] == [0, {"10000": 1}]
    assert samples["fast"] == [0, {"1": 1}]


def test_the_profiles_default_timeout_is_chaoskits() -> None:
    _, timeouts = _samples({})
    assert timeouts["timeout"] == timeouts["default"] == REQUEST_TIMEOUT_S
    spec = LoadSpec(PROFILES / "steady.py", "http://127.0.0.1:1", duration=10, out_dir=Path("x"))
    assert locust_env(spec, {})[REQUEST_TIMEOUT_ENV] == f"{REQUEST_TIMEOUT_S:g}"
