"""Running invariant checks: real tiny programs and Python modules written into tmp_path,
each run in a process of its own; whatever goes wrong is one InvariantError line naming the
check, and a trial with such a check is errored, never passed."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaoskit.system import checks
from chaoskit.system.checks import CheckOutcome, run_check, run_checks, verdict
from chaoskit.system.invariants import InvariantError, InvariantInput, InvariantResult, Window
from chaoskit.system.spec import CommandCheck, Invariant, PythonCheck, load_system

FIXTURE = Path(__file__).parent / "fixtures" / "kvstore"
GIVEN = InvariantInput(
    phase="after",
    window=Window(1_700_000_000.0, 1_700_000_090.5),
    published={"entry": "http://127.0.0.1:41234"},
    kubeconfig=Path("/somewhere/kubeconfig"),
)
OK = '{"checked": 1, "violations": []}'


def _script(folder: Path, name: str, text: str) -> str:
    """An executable file ``name`` of ``folder``, given as the system file names it."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(0o755)
    return name if "/" in name else f"./{name}"


def _python(folder: Path, module: str, text: str) -> PythonCheck:
    path = folder / f"{module.replace('.', '/')}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return PythonCheck(module=module, function="check", file=path)


def _command(*argv: str, timeout: float = 10.0) -> Invariant:
    return Invariant("probe", CommandCheck(argv), timeout=timeout)


def _error(invariant: Invariant, folder: Path, given: InvariantInput = GIVEN) -> str:
    with pytest.raises(InvariantError) as caught:
        run_check(invariant, given, folder=folder)
    message = str(caught.value)
    assert message.startswith(f"invariant {invariant.name!r}: ")
    assert "\n" not in message
    return caught.value.reason


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped yet does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _gone_soon(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# Command checks


def test_a_command_is_given_the_input_on_stdin_in_the_system_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative program is the folder's (whatever chaoskit's own working directory), the
    input arrives on stdin, KUBECONFIG is the input's and relative arguments are the
    folder's."""
    program = _script(
        tmp_path,
        "checks/echo.py",
        f"""
        #!{sys.executable}
        import json, os, sys
        given = json.load(sys.stdin)
        print("a log line", file=sys.stderr)
        details = {{"given": given, "cwd": os.getcwd(), "kubeconfig": os.environ.get("KUBECONFIG"),
                    "argv": sys.argv[1:], "data": open(sys.argv[1]).read()}}
        answer = {{"checked": 2, "violations": [{{"what": "x lost"}}], "details": details}}
        print(json.dumps(answer))
        """,
    )
    (tmp_path / "data.txt").write_text("kept")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_check(_command(program, "data.txt"), GIVEN, folder=tmp_path)
    assert result.checked == 2 and result.violations == ({"what": "x lost"},)
    assert result.details == {
        "given": GIVEN.to_json(),
        "cwd": str(tmp_path),
        "kubeconfig": "/somewhere/kubeconfig",
        "argv": ["data.txt"],
        "data": "kept",
    }


def test_a_shell_check_from_path_and_no_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare program name is looked up on PATH; without a kubeconfig in the input, the
    environment is chaoskit's own."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    _script(
        tmp_path,
        "kube.sh",
        """
        #!/bin/sh
        cat >/dev/null
        echo '{"checked": 0, "violations": [], "details": {"k": "'"${KUBECONFIG-unset}"'"}}'
        """,
    )
    given = InvariantInput(phase="before", window=Window(1.0, 1.0))
    result = run_check(_command("sh", "kube.sh"), given, folder=tmp_path)
    assert result == InvariantResult("probe", 0, details={"k": "unset"})


def test_a_check_that_does_not_read_its_input_is_fine(tmp_path: Path) -> None:
    _script(tmp_path, "ok.sh", f"#!/bin/sh\necho '{OK}'\n")
    assert run_check(_command("./ok.sh"), GIVEN, folder=tmp_path).ok


def test_a_non_zero_exit_names_its_status_and_the_end_of_stderr(tmp_path: Path) -> None:
    lines = "".join(f"echo 'line {i}' >&2\n" for i in range(1, 21))
    program = _script(tmp_path, "fail.sh", f"#!/bin/sh\n{lines}echo '{OK}'\nexit 3\n")
    reason = _error(_command(program), tmp_path)
    assert reason.startswith("exited with 3; stderr: ")
    assert reason.endswith("line 16 | line 17 | line 18 | line 19 | line 20")
    assert "line 15" not in reason


def test_a_long_stderr_is_cut_short(tmp_path: Path) -> None:
    program = _script(
        tmp_path,
        "noisy.py",
        f"""
        #!{sys.executable}
        import sys
        sys.stderr.write("start\\n" + "x" * 200_000 + "\\x1b[31m\\tthe end\\n")
        sys.exit(1)
        """,
    )
    reason = _error(_command(program), tmp_path)
    assert len(reason) < 500
    assert reason.endswith("x [31m the end")
    assert "start" not in reason and "\x1b" not in reason


def test_a_killed_check_names_the_signal(tmp_path: Path) -> None:
    program = _script(tmp_path, "die.sh", "#!/bin/sh\nkill -SEGV $$\n")
    assert _error(_command(program), tmp_path) == "was killed by SIGSEGV"


def test_a_hung_check_is_killed_at_its_timeout_with_its_children(tmp_path: Path) -> None:
    program = _script(
        tmp_path,
        "hang.sh",
        """
        #!/bin/sh
        echo starting >&2
        sleep 60 &
        echo $! > child.pid
        sleep 60
        """,
    )
    started = time.monotonic()
    reason = _error(_command(program, timeout=1), tmp_path)
    elapsed = time.monotonic() - started
    assert reason == "did not finish within 1 s (killed); stderr: starting"
    assert 1 <= elapsed < 2.5
    assert _gone_soon(int((tmp_path / "child.pid").read_text()))


def test_what_a_check_leaves_running_is_killed_when_it_exits(tmp_path: Path) -> None:
    """A background process that keeps the check's stdout open does not hold the run up
    past a short grace, and does not outlive it."""
    program = _script(
        tmp_path,
        "leave.sh",
        f"""
        #!/bin/sh
        sleep 60 &
        echo $! > child.pid
        echo '{OK}'
        """,
    )
    started = time.monotonic()
    assert run_check(_command(program, timeout=30), GIVEN, folder=tmp_path).ok
    assert time.monotonic() - started < checks.EXIT_GRACE_S + 1
    assert _gone_soon(int((tmp_path / "child.pid").read_text()))


@pytest.mark.parametrize(
    ("printed", "reason"),
    [
        ("all good", "did not print one JSON object (Expecting value, line 1 column 1)"),
        ("", "printed nothing"),
        ('{"checked": 1}', "'violations' is missing"),
    ],
)
def test_an_answer_that_is_no_result_errors(tmp_path: Path, printed: str, reason: str) -> None:
    program = _script(tmp_path, "bad.sh", f"#!/bin/sh\necho why >&2\nprintf '{printed}'\n")
    assert _error(_command(program), tmp_path).startswith(reason)
    assert _error(_command(program), tmp_path).endswith("; stderr: why")


def test_too_much_output_is_refused_and_the_check_stopped(tmp_path: Path) -> None:
    started = time.monotonic()
    reason = _error(_command("yes", timeout=30), tmp_path)
    assert reason.startswith("printed more than 1 MiB on stdout")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("setup", "program", "reason"),
    [
        (None, "checks/missing.sh", "No such file or directory"),
        ("plain", "checks/plain.sh", "Permission denied"),
        (None, "no-such-program-anywhere", "No such file or directory"),
    ],
)
def test_a_program_that_cannot_start_errors(
    tmp_path: Path, setup: str | None, program: str, reason: str
) -> None:
    if setup:
        (tmp_path / "checks").mkdir()
        (tmp_path / "checks" / f"{setup}.sh").write_text(f"echo '{OK}'\n")
    message = _error(_command(program), tmp_path)
    assert message.startswith("cannot be started: ")
    assert message.endswith(reason)


def test_a_missing_folder_errors(tmp_path: Path) -> None:
    message = _error(_command("true"), tmp_path / "gone")
    assert message == f"cannot be started: {tmp_path / 'gone'}: No such file or directory"


# Python checks


def test_a_python_check_is_called_with_the_input_in_a_child_process(tmp_path: Path) -> None:
    check = _python(
        tmp_path,
        "checks.balances",
        """
        import os, sys
        from checks.helper import HELPER

        def check(*, phase, published, **rest):
            print("a print does not spoil the answer")
            os.system("echo nor does a program it starts")
            return {"checked": 3, "violations": ({"what": "negative"},), "details": {
                "phase": phase, "published": published, "rest": sorted(rest),
                "pid": os.getpid(), "path0": sys.path[0], "cwd": os.getcwd(),
                "kubeconfig": os.environ.get("KUBECONFIG")}}
        """,
    )
    (tmp_path / "checks" / "__init__.py").write_text("")
    (tmp_path / "checks" / "helper.py").write_text("HELPER = 1\n")
    result = run_check(Invariant("balances", check), GIVEN, folder=tmp_path)
    assert result.name == "balances" and result.checked == 3
    assert result.violations == ({"what": "negative"},)
    details = result.details
    assert details["phase"] == "after" and details["published"] == GIVEN.published
    assert details["rest"] == ["acknowledged", "kubeconfig", "window"]
    assert details["pid"] != os.getpid()
    assert details["path0"] == details["cwd"] == str(tmp_path)
    assert details["kubeconfig"] == "/somewhere/kubeconfig"
    assert not list(tmp_path.rglob("__pycache__"))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "def check(**_):\n    raise ValueError('balance of\\nacct 7 is negative')\n",
            "raised ValueError: balance of acct 7 is negative (at checks/c.py:2)",
        ),
        ("def check(**_):\n    return [1, 2]\n", "returned a list, not a mapping"),
        ("def check(**_):\n    pass\n", "returned None, not a mapping"),
        (
            "def check(**_):\n    return {'checked': 1, 'violations': [], 'details': {1j: 2}}\n",
            "returned what is not JSON: keys must be str",
        ),
        ("import sys\ndef check(**_):\n    sys.exit(0)\n", "raised SystemExit: 0"),
        ("import nosuchmodule\n", "cannot import checks.c: ModuleNotFoundError: No module named"),
        ("def other(**_):\n    pass\n", "module checks.c has no function check"),
        ("def check(*, phase):\n    return {}\n", "raised TypeError: check() got an unexpected"),
        ("import os\ndef check(**_):\n    os._exit(4)\n", "exited with 4"),
    ],
    ids=[
        "raises",
        "list",
        "none",
        "not-json",
        "sys-exit",
        "import",
        "no-function",
        "signature",
        "os-exit",
    ],
)
def test_a_python_check_that_gives_no_result_errors(tmp_path: Path, body: str, reason: str) -> None:
    check = _python(tmp_path, "checks.c", body)
    assert _error(Invariant("c", check), tmp_path).startswith(reason)


def test_a_python_checks_logs_come_with_its_error(tmp_path: Path) -> None:
    body = "import sys\ndef check(**_):\n    print('looked at 3', file=sys.stderr)\n    1 / 0\n"
    check = _python(tmp_path, "c", body)
    assert _error(Invariant("c", check), tmp_path) == (
        "raised ZeroDivisionError: division by zero (at c.py:4); stderr: looked at 3"
    )


def test_a_python_answer_is_checked_as_a_commands_is(tmp_path: Path) -> None:
    check = _python(
        tmp_path, "c", "def check(**_):\n    return {'checked': -1, 'violations': []}\n"
    )
    assert _error(Invariant("c", check), tmp_path).startswith("'checked' must be an integer")


def test_a_hung_python_check_is_killed_at_its_timeout(tmp_path: Path) -> None:
    check = _python(
        tmp_path,
        "hang",
        """
        import os, time
        def check(**_):
            with open("hang.pid", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)
        """,
    )
    started = time.monotonic()
    reason = _error(Invariant("hang", check, timeout=1), tmp_path)
    assert reason == "did not finish within 1 s (killed)"
    assert time.monotonic() - started < 2.5
    assert _gone_soon(int((tmp_path / "hang.pid").read_text()))


# Several checks, and the trial's verdict


def test_every_check_runs_and_is_timed(tmp_path: Path) -> None:
    _script(tmp_path, "ok.sh", f"#!/bin/sh\necho '{OK}'\n")
    _script(tmp_path, "bad.sh", "#!/bin/sh\nexit 2\n")
    _script(
        tmp_path,
        "lost.sh",
        """#!/bin/sh\necho '{"checked": 1, "violations": [{"what": "lost"}]}'\n""",
    )
    invariants = [
        Invariant("bad", CommandCheck(("./bad.sh",))),
        Invariant("lost", CommandCheck(("./lost.sh",))),
        Invariant("ok", CommandCheck(("./ok.sh",))),
    ]
    outcomes = run_checks(invariants, GIVEN, folder=tmp_path)
    assert [o.name for o in outcomes] == ["bad", "lost", "ok"]
    bad, lost, ok = outcomes
    assert bad.result is None and bad.error == "exited with 2" and bad.errored
    assert bad.summary() == "bad: errored: exited with 2"
    assert lost.violated and not lost.errored and lost.summary().startswith("lost: 1 checked")
    assert ok.result is not None and ok.result.ok and ok.error is None
    assert all(0 < o.seconds < 5 for o in outcomes)
    assert verdict(outcomes) == "errored"
    assert verdict([lost, ok]) == "violated"
    assert verdict([ok]) == verdict([]) == "passed"


def test_the_example_systems_checks_pass(tmp_path: Path) -> None:
    """The fixture's command (python3 on PATH) and Python checks, as its system file names
    them; no acknowledged writes, so nothing is fetched."""
    spec = load_system(FIXTURE)
    outcomes = run_checks(spec.invariants, GIVEN, folder=spec.folder)
    assert [o.summary() for o in outcomes] == [
        "no-lost-writes: 0 checked, 0 violations",
        "balances: 0 checked, 0 violations",
    ]
    assert verdict(outcomes) == "passed"


def test_an_outcome_is_a_frozen_record() -> None:
    outcome = CheckOutcome("x", None, "exited with 1", 0.5)
    with pytest.raises(AttributeError):
        outcome.error = None  # type: ignore[misc]
    assert json.dumps(outcome.summary())
