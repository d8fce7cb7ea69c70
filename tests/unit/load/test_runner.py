"""The load runner's checks and what it reads back, without starting Locust."""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from chaoskit.errors import InvalidInput, OperationFailed
from chaoskit.load.runner import (
    RECORDER_PLUGIN,
    LoadRun,
    LoadSpec,
    TargetUnreachable,
    _error_text,
    check_reachable,
    locust_commands,
    locust_env,
    read_acks,
    write_outputs,
)
from chaoskit.load.timeseries import read_timeseries

PROFILE = Path(__file__).resolve().parents[3] / "loadprofiles" / "steady.py"
T0 = 1_700_000_000


def spec(tmp_path: Path, **changes: Any) -> LoadSpec:
    fields: dict[str, Any] = {
        "profile": PROFILE,
        "host": "http://127.0.0.1:8080",
        "duration": 30,
        "out_dir": tmp_path / "out",
        "run_id": "run-test",
    }
    return LoadSpec(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"host": "127.0.0.1:8080"}, "--host"),
        ({"host": "ftp://127.0.0.1"}, "--host"),
        ({"duration": 0}, "--duration"),
        ({"users": 0}, "--users"),
        ({"spawn_rate": 0}, "--spawn-rate"),
        ({"workers": -1}, "--workers"),
        ({"run_id": "run_1; DROP"}, "run id"),
        ({"profile": Path("nowhere.py")}, "no such file"),
        ({"sale_start": 20, "sale_hold": 20}, "--sale-start"),
    ],
)
def test_bad_specs_are_refused_before_anything_runs(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        spec(tmp_path, **changes).validate()


def test_the_whole_run_is_bounded() -> None:
    bounded = LoadSpec(PROFILE, "http://127.0.0.1:1", duration=40.2, out_dir=Path("x"))
    assert bounded.run_time == 41
    assert 41 < bounded.deadline_seconds < 41 + 120


def test_a_folder_with_another_runs_records_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "acks-host-1.jsonl").write_text("")
    with pytest.raises(InvalidInput, match="already holds"):
        LoadRun(spec(tmp_path)).start()


def test_an_unreachable_target_fails_fast_naming_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TargetUnreachable) as caught:
        check_reachable(f"http://127.0.0.1:{port}", timeout=2)
    assert f"http://127.0.0.1:{port}/products" in str(caught.value)
    assert isinstance(caught.value, OperationFailed)
    assert caught.value.exit_code == 1


def _jsonl(path: Path, records: list[dict[str, Any]], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def test_acks_of_every_process_are_merged_in_time_order(tmp_path: Path) -> None:
    _jsonl(
        tmp_path / "acks-w1-10.jsonl",
        [
            {"idempotency_key": "run-test.b", "order_id": "o-b", "t": T0 + 2},
            {"idempotency_key": "run-other.x", "order_id": "o-x", "t": T0 + 1},
            # another run whose id starts with this one's: not this run's order
            {"idempotency_key": "run-test-2.y", "order_id": "o-y", "t": T0 + 1},
        ],
        tail='{"idempotency_key": "run-te',
    )
    _jsonl(
        tmp_path / "acks-w2-11.jsonl",
        [{"idempotency_key": "run-test.a", "order_id": "o-a", "t": T0 + 1}],
    )
    acks = read_acks(tmp_path, "run-test")
    assert [(t, a.order_id) for t, a in acks] == [(T0 + 1, "o-a"), (T0 + 2, "o-b")]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("CatchResponseError('HTTP 503 backend_unavailable')", "HTTP 503 backend_unavailable"),
        ("'HTTP 504 timeout'", "HTTP 504 timeout"),
        (
            'CatchResponseError("transport: ConnectionResetError")',
            "transport: ConnectionResetError",
        ),
        ("something else", "something else"),
    ],
)
def test_locust_error_texts_read_the_same_locally_and_from_a_master(raw: str, text: str) -> None:
    assert _error_text(raw) == text


def test_a_finished_runs_files_become_a_result_and_outputs(tmp_path: Path) -> None:
    load_spec = spec(tmp_path)
    out = load_spec.out_dir
    out.mkdir()
    _jsonl(
        out / "seconds-w1-10.jsonl",
        [
            {"t": T0, "type": "POST", "name": "/orders", "count": 3, "failures": 1,
             "times": {"30": 3}},
            {"t": T0 + 1, "type": "GET", "name": "/products", "count": 5, "failures": 0,
             "times": {"8": 5}},
            {"t": T0, "users": 10},
        ],
    )  # fmt: skip
    _jsonl(
        out / "acks-w1-10.jsonl",
        [
            {"idempotency_key": "run-test.1", "order_id": "o-1", "t": T0 + 0.2},
            {"idempotency_key": "run-test.2", "order_id": "o-2", "t": T0 + 0.7},
        ],
    )
    (out / "locust_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "POST,/orders,CatchResponseError('HTTP 503 x'),1,a,b\n"
        "GET,/products,CatchResponseError('HTTP 503 x'),4,a,b\n"
    )
    result = LoadRun(load_spec).collect()
    assert result.stats.total.requests == 8
    assert [a.order_id for a in result.orders.acks] == ["o-1", "o-2"]
    assert result.orders.run_id == "run-test"
    assert dict(result.orders.failures) == {"/orders: HTTP 503 x": 1}

    paths = write_outputs(result)
    frame = read_timeseries(paths["timeseries"])
    assert list(frame[("Aggregated", "rps")]) == [3, 5]
    lines = paths["acks"].read_text().splitlines()
    assert [json.loads(line)["order_id"] for line in lines] == ["o-1", "o-2"]
    assert set(json.loads(lines[0])) == {"idempotency_key", "order_id", "t"}
    summary = json.loads(paths["summary"].read_text())
    assert summary["acknowledged_orders"] == 2
    assert summary["requests"] == 8 and summary["failures"] == 1


def test_a_run_that_left_nothing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OperationFailed, match="left no statistics"):
        LoadRun(spec(tmp_path)).collect()


def test_one_process_runs_headless_bounded_and_writes_locusts_csv(tmp_path: Path) -> None:
    [(role, argv)] = locust_commands(spec(tmp_path, users=40, duration=29.5))
    assert role == "locust"
    # chaoskit's recorder is loaded beside the profile (any Locust file leaves its series)
    assert argv[1:5] == ["-m", "locust", "-f", f"{PROFILE},{RECORDER_PLUGIN}"]
    assert "--headless" in argv and "--csv-full-history" in argv
    options = dict(itertools.pairwise(argv))
    assert options["--run-time"] == "30s"
    assert options["--users"] == "40" and options["--spawn-rate"] == "10.0"
    assert options["--exit-code-on-error"] == "0"
    assert options["--csv"] == str((tmp_path / "out" / "locust").resolve())


def test_distributed_mode_is_a_master_and_its_workers_on_loopback(tmp_path: Path) -> None:
    commands = locust_commands(spec(tmp_path, workers=2), master_port=5557)
    assert [role for role, _ in commands] == ["master", "worker-1", "worker-2"]
    master = dict(itertools.pairwise(commands[0][1]))
    assert master["--master-bind-host"] == "127.0.0.1"
    assert master["--master-bind-port"] == "5557" and master["--expect-workers"] == "2"
    worker = commands[1][1]
    assert "--worker" in worker and "--headless" not in worker and "--csv" not in worker
    assert worker[-4:] == ["--master-host", "127.0.0.1", "--master-port", "5557"]


def test_the_profile_learns_its_run_id_output_folder_and_options(tmp_path: Path) -> None:
    env = locust_env(
        spec(tmp_path, sale_start=5.0, think_time=0.0), {"PATH": "/bin", "LOCUST_SALE_HOLD": "9"}
    )
    assert env["CHAOSKIT_RUN_ID"] == "run-test"
    assert env["CHAOSKIT_LOAD_OUT"] == str((tmp_path / "out").resolve())
    assert env["LOCUST_SALE_START"] == "5.0" and env["LOCUST_THINK_TIME"] == "0.0"
    assert "LOCUST_SALE_HOLD" not in env  # a stale setting of the caller does not leak in
    assert env["PATH"] == "/bin"
