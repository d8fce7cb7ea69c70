"""Bad input a new user would try ends in one line naming the file, the field and the
reason, with exit code 2 and no traceback (issue 13). Each runs the real console entry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaoskit.faults.selector import selector_problem
from tests.unit.cli_run import invoke
from tests.unit.report.rundirs import standard_run

REPO = Path(__file__).resolve().parents[2]
POD_KILL = (REPO / "experiments" / "pod-kill.yaml").read_text(encoding="utf-8")


def run_process(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The real console entry in a fresh interpreter (slower: a few cases use it)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


run_cli = invoke


def assert_one_line_exit_2(code: int, err: str, *expected: str) -> str:
    assert "Traceback" not in err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0]
    return lines[0]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (("validate",), "exp.yaml"),
        (("validate",), "exp.json"),
        (("run",), "exp.yaml"),
        (("suite", "validate"), "suite.yaml"),
        (("cluster", "up", "--config"), "kind.yaml"),
    ],
)
def test_a_file_that_is_not_utf8_is_one_line(
    tmp_path: Path, command: tuple[str, ...], name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"title: caf\xe9\nmethod: []\n")
    code, _, err = run_process(*command, str(path))
    assert_one_line_exit_2(code, err, str(path), "line 1", "not UTF-8")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", "a: " + "[" * 5000 + "]" * 5000),
        ("block.yaml", "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000))),
        ("map.yaml", "a: " + "{b: " * 3000 + "1" + "}" * 3000),
        ("mid.yaml", "a: " + "[" * 200 + "]" * 200),
        ("deep.json", '{"a": ' + "[" * 100000 + "]" * 100000 + "}"),
    ],
)
def test_a_document_nested_thousands_deep_is_one_line(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    for command in (("validate",), ("suite", "validate")):
        code, _, err = run_cli(*command, str(path))
        assert_one_line_exit_2(code, err, str(path), "nested more than")


# --------------------------------------------------------------------------- experiments


def _experiment(tmp_path: Path, old: str, new: str) -> Path:
    assert old in POD_KILL
    path = tmp_path / "exp.yaml"
    path.write_text(POD_KILL.replace(old, new), encoding="utf-8")
    return path


def test_an_unresolved_reference_names_the_field_and_the_keys(tmp_path: Path) -> None:
    path = _experiment(tmp_path, 'namespace: "${namespace}"', 'namespace: "${nmespace}"')
    code, _, err = run_cli("validate", str(path))
    assert_one_line_exit_2(
        code,
        err,
        str(path),
        "method[0].provider.arguments.namespace",
        "${nmespace} is not a configuration or secret key",
        "namespace",
    )


def test_a_reference_to_a_secret_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "shop")
    path = _experiment(tmp_path, 'namespace: "${namespace}"', 'namespace: "${token}"')
    path.write_text(path.read_text() + "secrets:\n  shop:\n    token: {type: env, key: TOKEN}\n")
    code, _, err = run_cli("validate", str(path))
    assert "is not a configuration or secret key" not in err
    assert code == 0, err


def test_an_escaped_dollar_is_not_a_reference(tmp_path: Path) -> None:
    path = _experiment(tmp_path, "title: A deleted", "title: $${price} A deleted")
    code, out, err = run_cli("validate", str(path))
    assert code == 0, err
    assert out.strip() == f"{path}: ok"


def test_an_empty_method_is_one_line(tmp_path: Path) -> None:
    start = POD_KILL.index("\nmethod:") + 1
    end = POD_KILL.index("\nrollbacks:") + 1
    path = tmp_path / "exp.yaml"
    path.write_text(POD_KILL[:start] + "method: []\n" + POD_KILL[end:], encoding="utf-8")
    code, _, err = run_cli("validate", str(path))
    assert_one_line_exit_2(code, err, str(path), "method:", "empty")


@pytest.mark.parametrize(
    "selector",
    ["app=(gateway", "app in ()", "-app=x", "app x", "app=x,", "app=a b", "app > x"],
)
def test_a_bad_label_selector_is_caught_by_validate(tmp_path: Path, selector: str) -> None:
    path = _experiment(
        tmp_path, "default: app.kubernetes.io/name=gateway", f"default: {json.dumps(selector)}"
    )
    code, _, err = run_cli("validate", str(path))
    assert_one_line_exit_2(code, err, str(path), "arguments.selector", repr(selector))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("holding", "shop/app in (a", "missing ')'"),
        ("sparing", "app=x", "expected NAMESPACE/SELECTOR"),
        ("sparing", "Shop/app=x", "not a namespace name"),
    ],
)
def test_a_bad_holding_or_sparing_selector_is_caught_by_validate(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    text = (REPO / "experiments" / "node-stop.yaml").read_text(encoding="utf-8")
    given = f"{field}: {json.dumps(value)}, "
    changed = text.replace('sparing: "${spare}", ', given) if field == "sparing" else None
    changed = changed or text.replace("role: worker, ", f"{given}role: worker, ")
    assert changed != text
    path = tmp_path / "exp.yaml"
    path.write_text(changed)
    code, _, err = run_cli("validate", str(path))
    assert_one_line_exit_2(code, err, str(path), f"arguments.{field}", reason)


def test_a_key_given_twice_is_one_line(tmp_path: Path) -> None:
    path = _experiment(tmp_path, 'count: "${count}"', 'count: "${count}", count: 3')
    code, _, err = run_cli("validate", str(path))
    assert_one_line_exit_2(code, err, str(path), "line ", "key 'count' is given twice")


@pytest.mark.parametrize(
    "selector",
    [
        "app=gateway",
        "app.kubernetes.io/name=gateway",
        "app.kubernetes.io/name in (mysql,kafka)",
        "chaoskit.io/galera-role=writer,!canary",
        "tier notin (db), app!=x, app==y",
        "app=",
        "replicas > 2",
    ],
)
def test_valid_selectors_pass(selector: str) -> None:
    assert selector_problem(selector) == ""


def test_every_shipped_experiment_and_suite_still_validates() -> None:
    experiments = sorted(str(p) for p in (REPO / "experiments").glob("*.yaml"))
    code, _, err = run_cli("validate", *experiments)
    assert code == 0, err
    for suite in sorted((REPO / "experiments" / "suites").glob("*.yaml")):
        code, _, err = run_cli("suite", "validate", str(suite))
        assert code == 0, err


# --------------------------------------------------------------------------- state file


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"version": 1, "cluster": "chaoskit", "runs": [{"id": "r1", "pid"', "not valid JSON"),
        ("\x00\x01", "not valid JSON"),
        ('{"version": 1, "runs": {"id": 1}}', "runs: missing or not a list"),
        ('{"version": 1, "runs": [{"id": "r1"}]}', "runs[0]: malformed"),
    ],
)
def test_a_corrupt_state_file_is_kept_and_named_with_what_to_do(
    tmp_path: Path, text: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "cache" / "state" / "chaoskit.json"
    state.parent.mkdir(parents=True)
    state.write_text(text)
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli("recover")
    line = assert_one_line_exit_2(code, err, str(state), reason, "chaoskit recover", "mv ")
    assert "damaged" in line
    assert state.read_text() == text  # the only record of what is still changed is kept


def test_a_non_utf8_state_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "cache" / "state" / "chaoskit.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(b'{"runs": ["\xff"]}')
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli("recover")
    assert_one_line_exit_2(code, err, str(state), "not UTF-8")


# --------------------------------------------------------------------------- run directories


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = standard_run(tmp_path / "run")
    code, _, err = run_cli("report", str(run))
    assert code == 0, err
    return run


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda t: t[: len(t) // 2], "not valid JSON"),
        (lambda t: "[" * 50000 + "]" * 50000, "nested more than"),
        (lambda t: t.replace('"reasons": []', '"reasons": 5'), "reasons: must be a list"),
        (lambda t: t.replace('"score": {', '"score": 7, "x": {'), "score: must be an object"),
        (lambda t: t.replace('"experiments": [', '"experiments": [7, '), "experiments[0]"),
    ],
    ids=["truncated", "deep", "reasons", "score", "experiments"],
)
def test_a_damaged_summary_is_one_line_for_gate(run_dir: Path, damage: object, reason: str) -> None:
    summary = run_dir / "summary.json"
    text = summary.read_text()
    damaged = damage(text)  # type: ignore[operator]
    assert damaged != text
    summary.write_text(damaged)
    for args in (
        ("--report", str(run_dir)),
        ("--report", str(run_dir), "--baseline", str(run_dir)),
    ):
        code, _, err = run_cli("gate", *args)
        assert_one_line_exit_2(code, err, str(summary), reason)


def test_a_damaged_summary_is_rewritten_by_report(run_dir: Path) -> None:
    summary = run_dir / "summary.json"
    summary.write_bytes(b"\xff\xfe{")
    code, _, err = run_cli("report", str(run_dir))
    assert code == 0, err
    assert "Traceback" not in err
    assert json.loads(summary.read_text())["verdict"] == "pass"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('"experiments": [', '"experiments": 5, "x": [', "experiments"),
        ('"cluster": {', '"cluster": "x", "y": {', "cluster"),
    ],
)
def test_a_damaged_run_json_is_one_line_for_report(
    run_dir: Path, old: str, new: str, field: str
) -> None:
    run_json = run_dir / "run.json"
    text = json.dumps(json.loads(run_json.read_text()))
    assert old in text
    run_json.write_text(text.replace(old, new, 1))
    code, _, err = run_cli("report", str(run_dir))
    assert_one_line_exit_2(code, err, str(run_json), f"{field}: must be")


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[: len(t) // 3],
        lambda t: t.replace('"reasons": []', '"reasons": 5'),
        lambda t: "\udcff".encode("utf-8", "surrogateescape").decode("latin1") + t,
    ],
    ids=["truncated", "reasons", "not-utf8"],
)
def test_a_damaged_trial_json_fails_its_trial_and_the_gate_names_it(
    run_dir: Path, damage: object
) -> None:
    trial = run_dir / "trials" / "pod-kill" / "1" / "trial.json"
    text = json.dumps(json.loads(trial.read_text()))
    trial.write_bytes(damage(text).encode("latin1", "surrogateescape"))  # type: ignore[operator]
    code, _, err = run_process("report", str(run_dir))
    assert code == 0, err
    assert "Traceback" not in err
    assert "trial.json" in err  # one warning naming the file
    code, out, err = run_cli("gate", "--report", str(run_dir))
    assert code == 1
    assert "Traceback" not in err
    assert "trial.json" in out


@pytest.mark.parametrize("key", ["two\nlines", "[/]", "[bold]x", "", "a\u2028b"])
def test_a_strange_key_is_still_one_line_shown_as_written(tmp_path: Path, key: str) -> None:
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({key: 1, "title": "t"}))
    code, _, err = run_cli("validate", str(path))
    line = assert_one_line_exit_2(code, err, str(path), "unknown field")
    if key.startswith("["):
        assert key in line  # printed as text, not read as console markup
