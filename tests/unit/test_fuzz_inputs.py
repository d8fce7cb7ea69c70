"""Generated broken documents never reach a user as a traceback (issue 13).

Each example is written to a file and given to the real entry point (in this process, for
speed); an exception that escapes ``main`` is exactly what a user would see as a
traceback, so the test fails on it. The exit code must be 0 (the document happened to be
fine) or 2 (named as bad input); 1 is for failures while running, which nothing here runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.cli_run import invoke
from tests.unit.report.rundirs import standard_run

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
SUITES = sorted((REPO / "experiments" / "suites").glob("*.yaml"))
FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["${x}", "${count}", "app=(", "shop/app in (", "", "-1", "1e9", "pod-kill"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _known_experiment() -> dict[str, object]:
    return yaml.safe_load((REPO / "experiments" / "pod-kill.yaml").read_text())


KEYS_AT = {
    "": list(_known_experiment()),
    "method[0]": ["type", "name", "provider"],
    "method[0].provider": ["type", "module", "func", "arguments"],
    "method[0].provider.arguments": ["namespace", "selector", "count", "percent", "bogus"],
}


@st.composite
def broken_experiments(draw: st.DrawFn) -> bytes:
    """A real experiment with one known field set to a random value of a random type."""
    doc = _known_experiment()
    where = draw(st.sampled_from(sorted(KEYS_AT)))
    target: object = doc
    for part in [p for p in where.replace("[0]", ".0").split(".") if p]:
        target = target[int(part)] if part.isdigit() else target[part]  # type: ignore[index]
    assert isinstance(target, dict)
    target[draw(st.sampled_from(KEYS_AT[where]))] = draw(values)
    as_json = draw(st.booleans())
    return (json.dumps(doc) if as_json else _yaml(doc)).encode()


def _yaml(doc: object) -> str:
    return yaml.safe_dump(doc)


def truncations(paths: list[Path]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda data, cut: data[: int(len(data) * cut)],
        st.sampled_from([p.read_bytes() for p in paths]),
        st.floats(0, 1),
    )


documents = st.one_of(
    st.binary(max_size=200),
    values.map(lambda v: json.dumps(v).encode()),
    values.map(lambda v: _yaml(v).encode()),
    st.text(alphabet="[]{}:,- \n'\"&*!#|>", max_size=80).map(str.encode),
    broken_experiments(),
    truncations(EXPERIMENTS),
    st.integers(50, 3000).map(lambda n: ("a: " + "[" * n + "]" * n).encode()),
)


def _check(code: int, err: str) -> None:
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err


@FAST
@given(data=documents, suffix=st.sampled_from([".yaml", ".json"]))
def test_validate_never_shows_a_traceback(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"experiment{suffix}"
    path.write_bytes(data)
    _check(*_code_err(invoke("validate", str(path))))


@FAST
@given(data=st.one_of(documents, truncations(SUITES)))
def test_suite_validate_never_shows_a_traceback(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(data)
    _check(*_code_err(invoke("suite", "validate", str(path))))


def _code_err(result: tuple[int, str, str]) -> tuple[int, str]:
    return result[0], result[2]


@pytest.fixture(scope="module")
def rendered_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = standard_run(tmp_path_factory.mktemp("fuzz") / "run")
    code, _, err = invoke("report", str(run))
    assert code == 0, err
    return run


RUN_FILES = ["summary.json", "run.json", "trials/pod-kill/1/trial.json"]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(RUN_FILES),
    data=st.one_of(
        st.binary(max_size=100),
        values.map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda v, key: json.dumps({"schema": "chaoskit.summary/v1", key: v}).encode(),
            values,
            st.sampled_from(["verdict", "reasons", "score", "experiments", "cluster", "status"]),
        ),
    ),
)
def test_report_and_gate_never_show_a_traceback(
    rendered_run: Path, tmp_path: Path, name: str, data: bytes
) -> None:
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(rendered_run, run)
    (run / name).write_bytes(data)
    # The gate first: the report rewrites summary.json.
    code, _, err = invoke("gate", "--report", str(run), "--baseline", str(rendered_run))
    assert "Traceback" not in err
    assert code in (0, 1, 2), err  # 1: the gate's own verdict, fail
    code, _, err = invoke("report", str(run))
    _check(code, err)
