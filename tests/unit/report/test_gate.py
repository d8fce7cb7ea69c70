"""The CI gate: verdict and regressions against a baseline, exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chaoskit.cli import main
from chaoskit.errors import InvalidInput
from chaoskit.report import render
from chaoskit.report.gate import Allowance, gate, parse_tolerance
from tests.unit.report.rundirs import SUITE_SLOS, standard_run, standard_specs, write_run


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The console entry point in a fresh interpreter, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (quicker): exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = standard_run(tmp_path_factory.mktemp("b") / "baseline")
    render(run_dir)
    return run_dir


def _rerun(path: Path, **changes: float) -> Path:
    """The baseline's run again; ``pod_recovery`` adds seconds to pod-kill's recovery,
    ``pod_failures`` sets its failures per second."""
    specs = standard_specs()
    for spec in specs:
        if spec.experiment == "pod-kill":
            spec.recovery_s = (spec.recovery_s or 0) + changes.get("pod_recovery", 0)
            spec.failures_per_s = int(changes.get("pod_failures", spec.failures_per_s))
    render(write_run(path, specs, slos=SUITE_SLOS))
    return path


def test_an_identical_rerun_within_tolerance_passes(baseline: Path, tmp_path: Path) -> None:
    # Half a second slower than the baseline's 4.75 s: within 20 % + 1 s.
    rerun = _rerun(tmp_path / "rerun", pod_recovery=0.5)
    result = gate(rerun, baseline)
    assert result.passed, [f.line() for f in result.failures]
    assert {f.kind for f in result.findings} == {"ok"}
    proc = _cli("gate", "--report", str(rerun), "--baseline", str(baseline))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(f"gate: pass (verdict pass, score {result.score:g})")


def test_an_injected_recovery_regression_fails_with_its_reason(
    baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slower = _rerun(tmp_path / "slower", pod_recovery=10)
    result = gate(slower, baseline)
    assert not result.passed
    [regression] = result.failures
    assert regression.line() == (
        "REGRESSION pod-kill: median recovery 14.75 s vs baseline 4.75 s "
        "(+10.00, allowed +1.95: recovery=20%+1)"
    )
    code, out, _ = _main(capsys, "gate", "--report", str(slower), "--baseline", str(baseline))
    assert code == 1
    assert "REGRESSION pod-kill: median recovery 14.75 s" in out
    assert "gate: fail (1 problem)" in out
    # A looser tolerance lets it through.
    assert gate(slower, baseline, "recovery=300%").passed


def test_an_error_rate_regression_fails(baseline: Path, tmp_path: Path) -> None:
    noisy = _rerun(tmp_path / "noisy", pod_failures=4)
    [regression] = gate(noisy, baseline).failures
    assert regression.subject == "pod-kill"
    assert regression.message.startswith(
        "median error rate during the fault 3.06 % vs baseline 1.53 %"
    )
    assert gate(noisy, baseline, "error_rate=2").passed


def test_a_failed_verdict_fails_the_gate_without_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = standard_specs()
    specs[0].lost_orders = 1
    run_dir = write_run(tmp_path / "run", specs, slos=SUITE_SLOS)
    render(run_dir)
    result = gate(run_dir)
    assert [f.kind for f in result.failures] == ["verdict"]
    assert "SLO no-lost-orders fail" in result.failures[0].message
    code, out, _ = _main(capsys, "gate", "--report", str(run_dir))
    assert code == 1
    assert out.startswith("FAIL verdict: pod-kill trial 1: SLO no-lost-orders fail")


def test_a_score_drop_and_a_missing_experiment_are_regressions(
    baseline: Path, tmp_path: Path
) -> None:
    specs = [s for s in standard_specs() if s.experiment == "pod-kill"]
    specs[0].status, specs[0].reasons = "failed", ["experiment deviated"]
    run_dir = write_run(tmp_path / "run", specs, slos=SUITE_SLOS)
    render(run_dir)
    lines = [f.line() for f in gate(run_dir, baseline).failures]
    assert "REGRESSION node-stop: in the baseline, missing from this run" in lines
    old, new = _score(baseline), _score(run_dir)
    assert new < old - 5
    assert (
        f"REGRESSION score: {new:.1f} vs baseline {old:.1f} ({new - old:+.1f}, allowed -5.0: "
        "score=5)"
    ) in lines


def _score(run_dir: Path) -> float:
    return float(json.loads((run_dir / "summary.json").read_text())["score"]["value"])


def test_more_failures_during_the_fault_lower_the_score_against_the_baseline(
    baseline: Path, tmp_path: Path
) -> None:
    """Every SLO still passes; only the score (availability in the fault window) falls."""
    worse = _rerun(tmp_path / "worse", pod_failures=6)
    old, new = _score(baseline), _score(worse)
    assert 2 < old - new < 5
    lenient_on_errors = "error_rate=100"
    result = gate(worse, baseline, f"{lenient_on_errors},score=2")
    assert [f.line() for f in result.failures] == [
        f"REGRESSION score: {new:.1f} vs baseline {old:.1f} ({new - old:+.1f}, allowed -2.0: "
        "score=2)"
    ]
    assert gate(worse, baseline, f"{lenient_on_errors},score=5").passed
    assert not gate(worse, baseline, f"{lenient_on_errors},score=2%").passed
    assert gate(worse, baseline, f"{lenient_on_errors},score=5%+1").passed


def test_a_baseline_scored_by_another_formula_is_noted_not_compared(
    baseline: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(baseline, old)
    summary = json.loads((old / "summary.json").read_text())
    summary["score"] = {"value": 100.0, "formula": "score = an older formula"}
    (old / "summary.json").write_text(json.dumps(summary))
    result = gate(baseline, old)
    assert result.passed
    [note] = [f for f in result.findings if f.subject == "score"]
    assert note.kind == "note" and "another formula" in note.message


def test_tolerance_syntax() -> None:
    assert parse_tolerance(None) == {
        "recovery": Allowance(20, 1),
        "error_rate": Allowance(0, 1),
        "score": Allowance(0, 5),
    }
    tolerance = parse_tolerance("recovery=10%, score=2.5,error_rate=0.5%+0.25")
    assert tolerance["recovery"] == Allowance(10, 0)
    assert tolerance["score"] == Allowance(0, 2.5)
    assert tolerance["error_rate"] == Allowance(0.5, 0.25)
    assert Allowance(20, 1).of(10.0) == 3.0
    for bad in ("recovery", "latency=3", "recovery=fast", "recovery=-1", "recovery=%", "score=5+"):
        with pytest.raises(InvalidInput, match=r"^--tolerance "):
            parse_tolerance(bad)


def test_bad_input_is_exit_2_with_one_line_naming_the_path(
    tmp_path: Path, baseline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    proc = _cli("gate", "--report", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"chaoskit: error: report directory {missing}: no such directory"
    cases = [
        (("--report", str(tmp_path)), f"report {tmp_path / 'summary.json'}: no such file"),
        (
            ("--report", str(baseline), "--baseline", str(missing)),
            f"baseline directory {missing}: no such directory",
        ),
        (("--report", str(baseline), "--tolerance", "latency=3"), "unknown metric 'latency'"),
    ]
    for args, message in cases:
        code, out, err = _main(capsys, "gate", *args)
        assert (code, out) == (2, "")
        assert message in err
        assert err.count("\n") == 1 and "Traceback" not in err
    (tmp_path / "summary.json").write_text('{"schema": "other/v9"}')
    code, _, err = _main(capsys, "gate", "--report", str(tmp_path))
    assert code == 2
    assert "schema 'other/v9', want 'chaoskit.summary/v1'" in err


def test_chaoskit_report_re_renders_and_prints_the_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = standard_run(tmp_path / "run")
    code, out, err = _main(capsys, "report", str(run_dir))
    assert code == 0, err
    score = _score(run_dir)
    assert out.startswith(f"run run: pass, resilience score {score} (4 trials, rendered in ")
    assert f"  html: {run_dir / 'report.html'}" in out
    assert (run_dir / "summary.json").is_file()
    code, _, err = _main(capsys, "report", str(tmp_path / "nope"))
    assert code == 2
    assert "no such directory" in err and "Traceback" not in err
