"""SLOs: checked when a suite is loaded, judged against a trial's folder; missing data is
an error, never a pass."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from chaoskit.errors import InvalidConfig
from chaoskit.report.slo import evaluate_trial, load_slos, validate_slos
from tests.unit.report.rundirs import INJECT_AFTER, T0, TrialSpec, write_trial


def _trial(tmp_path: Path, **changes: Any) -> Path:
    return write_trial(tmp_path / "run", TrialSpec(**changes))


def _by_name(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results}


# --------------------------------------------------------------------------- parsing


def test_a_suite_s_slos_are_parsed_with_defaults() -> None:
    slos = load_slos(
        "suite.yaml",
        [
            {"kind": "error_rate", "threshold": 5},
            {"name": "orders", "kind": "lost_orders"},
            {"name": "p99 orders", "kind": "p99_ms", "threshold": 800,
             "endpoint": "POST /orders", "window": {"before_s": 2, "after_s": 10}},
            {"name": "backlog", "kind": "prometheus", "query": "sum(x)", "threshold": 10,
             "op": "<", "aggregate": "mean", "step_s": 2, "experiments": ["pod-kill"]},
        ],
    )  # fmt: skip
    error_rate, orders, p99, backlog = slos
    assert (error_rate.name, error_rate.op, error_rate.window.after_s) == ("error_rate", "<=", 5)
    assert (orders.threshold, orders.op) == (0.0, "<=")
    assert (p99.endpoint, p99.window.before_s, p99.window.after_s) == ("POST /orders", 2, 10)
    assert backlog.to_dict() == {
        "name": "backlog", "kind": "prometheus", "threshold": 10.0, "op": "<",
        "experiments": ["pod-kill"], "window": {"before_s": 0.0, "after_s": 5.0},
        "query": "sum(x)", "aggregate": "mean", "step_s": 2.0,
    }  # fmt: skip
    assert backlog.applies_to("pod-kill") and not backlog.applies_to("node-stop")


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"kind": "latency", "threshold": 1}, "slos[2].kind", "must be one of error_rate"),
        ({"kind": "error_rate"}, "slos[2].threshold", "is required for kind error_rate"),
        ({"kind": "error_rate", "threshold": "5%"}, "slos[2].threshold", "must be a number"),
        ({"kind": "error_rate", "threshold": 120}, "slos[2].threshold", "at most 100"),
        ({"kind": "recovery_s", "threshold": -1}, "slos[2].threshold", "must be >= 0"),
        ({"kind": "p99_ms", "threshold": 1, "op": "=<"}, "slos[2].op", "must be one of <"),
        ({"kind": "recovery_s", "threshold": 1, "window": {}}, "slos[2].window",
         "unknown field for kind recovery_s"),
        ({"kind": "p99_ms", "threshold": 1, "window": {"after": 3}}, "slos[2].window.after",
         "unknown field"),
        ({"kind": "prometheus", "threshold": 1}, "slos[2].query", "is required"),
        ({"kind": "prometheus", "threshold": 1, "query": "x", "aggregate": "p95"},
         "slos[2].aggregate", "must be one of max"),
        ({"kind": "lost_orders", "experiments": "pod-kill"}, "slos[2].experiments",
         "must be a list"),
        ({"kind": "lost_orders", "name": "recovery"}, "slos[2].name", "used twice"),
        ("recovery <= 3", "slos[2]", "must be a mapping"),
    ],
)  # fmt: skip
def test_a_bad_slo_names_file_field_and_reason(raw: Any, field: str, reason: str) -> None:
    good = [{"kind": "error_rate", "threshold": 5}, {"name": "recovery", "kind": "recovery_s",
            "threshold": 30}]  # fmt: skip
    with pytest.raises(InvalidConfig) as caught:
        load_slos("suite.yaml", [*good, raw])
    assert caught.value.file == "suite.yaml"
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"suite.yaml: {field}: ")


def test_slos_must_be_a_list_and_experiment_fields_are_named() -> None:
    with pytest.raises(InvalidConfig, match=r"suite.yaml: slos: must be a list"):
        load_slos("suite.yaml", {"kind": "error_rate"})
    with pytest.raises(InvalidConfig) as caught:
        validate_slos("suite.yaml", "experiments[3].slos", ({"kind": "nope"},))
    assert caught.value.field == "experiments[3].slos[0].kind"
    assert load_slos("suite.yaml", None) == ()


# --------------------------------------------------------------------------- judging


SLOS = [
    {"name": "errors", "kind": "error_rate", "threshold": 5},
    {"name": "p99", "kind": "p99_ms", "threshold": 1500},
    {"name": "recovery", "kind": "recovery_s", "threshold": 30},
    {"name": "orders", "kind": "lost_orders"},
]


def test_a_good_trial_passes_every_slo_with_its_basis(tmp_path: Path) -> None:
    folder = _trial(tmp_path, recovery_s=4.0, error_seconds=3, failures_per_s=2)
    results = _by_name(evaluate_trial(folder, load_slos("s.yaml", SLOS), None))
    assert {r["status"] for r in results.values()} == {"pass"}
    errors = results["errors"]
    # 4 seconds overlap the failing 3 s after the injection at .3; the window is the 4 s of
    # recovery plus 5 s: the seconds 20..29, 50 requests each.
    assert errors["value"] == pytest.approx(100 * 8 / 500)
    assert errors["reason"] == "8 of 500 requests failed, 10 s window"
    assert results["p99"]["value"] == 900
    assert results["recovery"]["value"] == 4.0
    assert results["orders"] == {
        "name": "orders", "kind": "lost_orders", "status": "pass", "value": 0.0,
        "threshold": 0.0, "op": "<=",
        "reason": "0 lost, 0 duplicated, 0 mismatched of 40 acknowledged",
    }  # fmt: skip


def test_slos_fail_with_the_value_and_the_objective(tmp_path: Path) -> None:
    folder = _trial(
        tmp_path, recovery_s=45.0, error_seconds=20, failures_per_s=25, p99_fault_ms=2500,
        lost_orders=3,
    )  # fmt: skip
    results = _by_name(evaluate_trial(folder, SLOS, None))
    assert {r["status"] for r in results.values()} == {"fail"}
    # 21 failing seconds of 25 failures; the window (45 s + 5) ends with the load at 59.
    assert (
        results["errors"]["reason"]
        == "26.2 % is not <= 5 % (525 of 2000 requests failed, 40 s window)"
    )
    assert results["p99"]["reason"].startswith("2500 ms is not <= 1500 ms")
    assert results["recovery"]["reason"].startswith("45 s is not <= 30 s")
    assert results["orders"]["value"] == 3
    assert results["orders"]["reason"].startswith("3 orders is not <= 0 orders (3 lost")


def test_a_fault_that_never_recovered_fails_recovery_and_opens_the_window(tmp_path: Path) -> None:
    folder = _trial(tmp_path, recovery_s=None, error_seconds=100, failures_per_s=10)
    results = _by_name(evaluate_trial(folder, SLOS, None))
    assert results["recovery"]["status"] == "fail"
    assert results["recovery"]["reason"] == "the desired state did not come back"
    # The window runs to the end of the load: the seconds 20..59.
    assert results["errors"]["value"] == pytest.approx(20.0)
    assert "fault never recovered" in results["errors"]["reason"]


@pytest.mark.parametrize(
    ("changes", "name", "reason"),
    [
        ({"load": False}, "errors", "no load time series (load failed: Locust crashed"),
        ({"load": False}, "p99", "no load time series"),
        ({"ledger": False}, "orders", "no ledger (MySQL unreachable)"),
        ({"injected": False, "result": False}, "errors", "no fault window"),
        ({"injected": False, "result": False}, "recovery", "no fault window"),
        ({"result": False, "recovery_s": None}, "recovery", "recovery was not measured"),
        ({"rps": 0}, "errors", "no requests in the fault window"),
    ],
)
def test_missing_data_is_an_error_never_a_pass(
    tmp_path: Path, changes: dict[str, Any], name: str, reason: str
) -> None:
    results = _by_name(evaluate_trial(_trial(tmp_path, **changes), SLOS, None))
    assert results[name]["status"] == "error"
    assert results[name]["value"] is None
    assert reason in results[name]["reason"]


def test_a_missing_endpoint_is_an_error(tmp_path: Path) -> None:
    slo = {"kind": "p99_ms", "threshold": 10, "endpoint": "DELETE /carts"}
    [result] = evaluate_trial(_trial(tmp_path), [slo], None)
    assert result["status"] == "error"
    assert "no endpoint 'DELETE /carts'" in result["reason"]


def test_the_runner_may_pass_trial_json_before_writing_it(tmp_path: Path) -> None:
    folder = _trial(tmp_path, ledger=False)
    trial = json.loads((folder / "trial.json").read_text())
    (folder / "trial.json").unlink()
    trial["ledger"] = {"acknowledged": 5, "lost_orders": ["a"], "duplicated": [],
                       "mismatched": [], "ok": False}  # fmt: skip
    [result] = evaluate_trial(folder, [{"kind": "lost_orders"}], None, trial=trial)
    assert (result["status"], result["value"]) == ("fail", 1)


def test_without_trial_json_the_fault_window_comes_from_result_json(tmp_path: Path) -> None:
    folder = _trial(tmp_path, recovery_s=6.0)
    (folder / "trial.json").unlink()
    results = _by_name(evaluate_trial(folder, SLOS, None))
    assert results["recovery"]["value"] == 6.0
    assert results["errors"]["status"] == "pass"
    assert results["orders"]["status"] == "error"


def test_slos_apply_only_to_their_experiments(tmp_path: Path) -> None:
    folder = _trial(tmp_path, experiment="node-stop")
    slos = [
        {"name": "pods", "kind": "recovery_s", "threshold": 1, "experiments": ["pod-kill"]},
        {"name": "nodes", "kind": "recovery_s", "threshold": 60, "experiments": ["node-stop"]},
    ]
    assert [r["name"] for r in evaluate_trial(folder, slos, None)] == ["nodes"]


# --------------------------------------------------------------------------- Prometheus


PROMETHEUS = [{"name": "backlog", "kind": "prometheus", "query": "sum(shop_outbox_pending)",
               "threshold": 100, "step_s": 2}]  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_prometheus_unreachable_is_an_error_never_a_pass(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    [result] = evaluate_trial(_trial(tmp_path), PROMETHEUS, url, timeout=2)
    assert result["status"] == "error"
    assert result["value"] is None
    assert result["reason"].startswith(f"Prometheus at {url} is unreachable")


def test_no_prometheus_url_is_an_error(tmp_path: Path) -> None:
    [result] = evaluate_trial(_trial(tmp_path), PROMETHEUS, None)
    assert (result["status"], result["reason"]) == ("error", "no Prometheus URL for this trial")


class _Prometheus(BaseHTTPRequestHandler):
    """Answers query_range like Prometheus does; remembers what it was asked."""

    answer: ClassVar[tuple[int, dict[str, Any]]] = (200, {})
    asked: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        type(self).asked.append({"path": [parts.path], **parse_qs(parts.query)})
        status, body = type(self).answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[tuple[str, type[_Prometheus]]]:
    handler = type("Handler", (_Prometheus,), {"asked": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def _series(*values: float) -> dict[str, Any]:
    points = [[T0 + 20 + 2 * i, str(v)] for i, v in enumerate(values)]
    matrix = {"resultType": "matrix", "result": [{"metric": {}, "values": points}]}
    return {"status": "success", "data": matrix}


def test_a_prometheus_slo_queries_the_padded_fault_window(
    tmp_path: Path, prometheus: tuple[str, type[_Prometheus]]
) -> None:
    url, handler = prometheus
    handler.answer = (200, _series(3, 140, 20, float("nan")))
    folder = _trial(tmp_path, prometheus_url=url, recovery_s=4.0)
    [result] = evaluate_trial(folder, PROMETHEUS, None)
    assert result["status"] == "fail"
    assert result["value"] == 140
    assert result["reason"] == "140 is not <= 100 (max of 3 samples in 1 series)"
    [asked] = handler.asked
    assert asked["path"] == ["/api/v1/query_range"]
    assert asked["query"] == ["sum(shop_outbox_pending)"]
    injected = T0 + INJECT_AFTER
    assert asked["start"] == [str(int(injected))]
    assert asked["end"] == [str(int(injected + 4 + 5) + 1)]
    assert asked["step"] == ["2s"]


def test_a_prometheus_slo_passes_and_aggregates(
    tmp_path: Path, prometheus: tuple[str, type[_Prometheus]]
) -> None:
    url, handler = prometheus
    handler.answer = (200, _series(3, 140, 20))
    slo = {**PROMETHEUS[0], "aggregate": "mean", "threshold": 60}
    [result] = evaluate_trial(_trial(tmp_path), [slo], url)
    assert (result["status"], result["value"]) == ("pass", pytest.approx(163 / 3, abs=1e-5))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((200, {"status": "success", "data": {"resultType": "matrix", "result": []}}),
         "the query returned no data in the fault window"),
        ((400, {"status": "error", "error": "parse error"}), "refused the query"),
    ],
)  # fmt: skip
def test_prometheus_without_an_answer_is_an_error(
    tmp_path: Path,
    prometheus: tuple[str, type[_Prometheus]],
    answer: tuple[int, dict[str, Any]],
    reason: str,
) -> None:
    url, handler = prometheus
    handler.answer = answer
    [result] = evaluate_trial(_trial(tmp_path), PROMETHEUS, url)
    assert result["status"] == "error"
    assert reason in result["reason"]
