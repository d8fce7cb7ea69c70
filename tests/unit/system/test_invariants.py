"""Invariant checks: what they are given, and their answer read into a result, or an
InvariantError (the trial errored) when it is not one JSON object of the shape."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from chaoskit.errors import OperationFailed
from chaoskit.system.invariants import (
    InvariantError,
    InvariantInput,
    InvariantInputJSON,
    InvariantResult,
    Window,
    parse_result,
    result_from,
)

FIXTURE = Path(__file__).parent / "fixtures" / "kvstore"


def test_an_answer_becomes_a_result() -> None:
    text = json.dumps(
        {
            "checked": 120,
            "violations": [{"what": "write 17 acknowledged, not stored", "key": 17}],
            "details": {"stored": 119},
        }
    )
    result = parse_result("no-lost-writes", f"\n{text}\n")
    assert result == InvariantResult(
        name="no-lost-writes",
        checked=120,
        violations=({"what": "write 17 acknowledged, not stored", "key": 17},),
        details={"stored": 119},
    )
    assert not result.ok
    assert result.summary() == (
        "no-lost-writes: 120 checked, 1 violations (first: write 17 acknowledged, not stored)"
    )
    assert result.to_dict()["ok"] is False


def test_details_are_optional_and_no_violation_is_ok() -> None:
    result = parse_result("balances", '{"checked": 3, "violations": []}')
    assert result.ok and result.details == {} and result.checked == 3
    assert result.summary() == "balances: 3 checked, 0 violations"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "printed nothing"),
        ("  \n", "printed nothing"),
        (
            "all good",
            "did not print one JSON object (Expecting value, line 1 column 1): 'all good'",
        ),
        (
            "Traceback (most recent call last):\n  File x\n",
            "did not print one JSON object (Expecting value",
        ),
        ('{"checked": 1, "violations": []}\n{"checked": 2}', "(Extra data, line 2 column 1)"),
        ("[1, 2]", "answered an array, not a JSON object"),
        ("null", "answered null, not a JSON object"),
        ('{"checked": NaN, "violations": []}', "printed NaN, which is not JSON"),
        ('{"violations": []}', "'checked' is missing"),
        ('{"checked": 1}', "'violations' is missing (an empty list when none)"),
        (
            '{"checked": -1, "violations": []}',
            "'checked' must be an integer of at least 0, not '-1'",
        ),
        ('{"checked": 1.5, "violations": []}', "not '1.5'"),
        ('{"checked": true, "violations": []}', "not 'true'"),
        ('{"checked": "3", "violations": []}', "'checked' must be an integer"),
        ('{"checked": 1, "violations": {}}', "'violations' must be a list, not an object"),
        ('{"checked": 1, "violations": ["lost"]}', "violations[0] must be an object with"),
        ('{"checked": 1, "violations": [{}]}', "non-empty 'what' string"),
        ('{"checked": 1, "violations": [{"what": " "}]}', "violations[0] must be"),
        ('{"checked": 1, "violations": [{"what": 3}]}', "violations[0] must be"),
        ('{"checked": 1, "violations": [], "details": []}', "'details' must be an object"),
        (
            '{"checked": 1, "violation": []}',
            "unknown field 'violation' (known: checked, details, violations)",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_a_malformed_answer_is_an_invariant_error(text: str, reason: str) -> None:
    with pytest.raises(InvariantError) as caught:
        parse_result("no-lost-writes", text)
    error = caught.value
    assert reason in error.reason
    assert error.name == "no-lost-writes"
    assert str(error).startswith("invariant 'no-lost-writes': ")
    assert "\n" not in str(error)


def test_an_invariant_error_errors_the_trial() -> None:
    error = InvariantError("balances", "printed nothing")
    assert isinstance(error, OperationFailed)
    assert error.exit_code == 1


def test_a_long_answer_is_cut_short_in_the_error() -> None:
    with pytest.raises(InvariantError) as caught:
        parse_result("x", "oops " * 100)
    assert len(str(caught.value)) < 200


def test_a_python_check_answers_a_mapping() -> None:
    result = result_from("balances", {"checked": 2, "violations": ({"what": "negative"},)})
    assert result.violations == ({"what": "negative"},)
    with pytest.raises(InvariantError, match="answered what is not JSON"):
        result_from("balances", {"checked": 2, "violations": [], "details": {"at": object()}})
    with pytest.raises(InvariantError, match="answered a number, not a JSON object"):
        result_from("balances", 3)
    with pytest.raises(InvariantError, match="answered what is not JSON"):
        result_from("balances", {"checked": float("nan"), "violations": []})


def _given() -> InvariantInput:
    return InvariantInput(
        phase="after",
        window=Window(1_700_000_000.0, 1_700_000_090.5),
        published={"entry": "http://127.0.0.1:41234"},
        acknowledged=None,
        kubeconfig=Path("/somewhere/kubeconfig"),
    )


def test_what_a_check_is_given() -> None:
    given = _given()
    as_json = json.loads(given.stdin())
    assert as_json == {
        "phase": "after",
        "window": {"start": 1_700_000_000.0, "end": 1_700_000_090.5},
        "acknowledged": None,
        "published": {"entry": "http://127.0.0.1:41234"},
        "kubeconfig": "/somewhere/kubeconfig",
    }
    assert set(as_json) == set(get_type_hints(InvariantInputJSON))
    assert given.kwargs() == as_json
    with pytest.raises(ValueError, match="not a time window"):
        Window(2.0, 1.0)


def test_the_example_checks_answer_in_the_shape() -> None:
    """The fixture's command and Python checks, given the interface's input, answer what
    parse_result and result_from accept (no acknowledged writes: nothing is fetched)."""
    given = _given()
    proc = subprocess.run(
        [sys.executable, "checks/lost_writes.py"],
        input=given.stdin(),
        capture_output=True,
        text=True,
        cwd=FIXTURE,
        check=True,
        timeout=60,
    )
    assert parse_result("no-lost-writes", proc.stdout) == InvariantResult("no-lost-writes", 0)
    spec = importlib.util.spec_from_file_location("balances", FIXTURE / "checks/balances.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    answer: Any = module.check(**given.kwargs())
    result = result_from("balances", answer)
    assert result.ok and result.details["phase"] == "after"
