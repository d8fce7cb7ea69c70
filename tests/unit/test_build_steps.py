from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.errors import BuildFailed
from chaoskit.images.steps import BuildEnv, Plan, Step, run_step


class Recorder:
    """Build functions that write a file per step and count their runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: list[str] = []

    def step(self, name: str, *, needs: tuple[str, ...] = (), inputs: tuple[str, ...] = ()) -> Step:
        def build(env: BuildEnv, log: Path, key: str) -> None:
            self.runs.append(name)
            (self.root / name).write_text(key)

        def present(env: BuildEnv, key: str) -> bool:
            out = self.root / name
            return out.is_file() and out.read_text() == key

        return Step(name=name, inputs=inputs, build=build, present=present, needs=needs)


@pytest.fixture
def env(tmp_path: Path) -> BuildEnv:
    contexts = tmp_path / "contexts"
    (contexts / "ctx").mkdir(parents=True)
    (contexts / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    return BuildEnv(cache_dir=tmp_path / "cache", contexts_dir=contexts)


def run_all(env: BuildEnv, steps: list[Step], target: str) -> None:
    plan = Plan.resolve(steps, env, [target])
    for step in plan.steps:
        run_step(env, step, plan.keys[step.name])


def test_plan_orders_dependencies_first(env: BuildEnv, tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    steps = [
        rec.step("node", needs=("base", "bins")),
        rec.step("bins"),
        rec.step("base"),
        rec.step("unrelated"),
    ]
    plan = Plan.resolve(steps, env, ["node"])
    assert [s.name for s in plan.steps] == ["base", "bins", "node"]


def test_second_run_is_cached_and_a_changed_input_rebuilds_dependents(
    env: BuildEnv, tmp_path: Path
) -> None:
    rec = Recorder(tmp_path)
    run_all(env, [rec.step("base", inputs=("v1",)), rec.step("node", needs=("base",))], "node")
    assert rec.runs == ["base", "node"]
    run_all(env, [rec.step("base", inputs=("v1",)), rec.step("node", needs=("base",))], "node")
    assert rec.runs == ["base", "node"]
    run_all(env, [rec.step("base", inputs=("v2",)), rec.step("node", needs=("base",))], "node")
    assert rec.runs == ["base", "node", "base", "node"]


def test_lost_outputs_are_rebuilt(env: BuildEnv, tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    run_all(env, [rec.step("base")], "base")
    (tmp_path / "base").unlink()
    run_all(env, [rec.step("base")], "base")
    assert rec.runs == ["base", "base"]


def test_context_files_are_part_of_the_key(env: BuildEnv, tmp_path: Path) -> None:
    rec = Recorder(tmp_path)

    def with_context() -> list[Step]:
        step = rec.step("img")
        return [Step(**{**step.__dict__, "context_dirs": ("ctx",)})]

    run_all(env, with_context(), "img")
    run_all(env, with_context(), "img")
    (env.contexts_dir / "ctx" / "Dockerfile").write_text("FROM scratch\nENV A=1\n")
    run_all(env, with_context(), "img")
    assert rec.runs == ["img", "img"]


def test_cycles_and_unknown_steps_are_reported(env: BuildEnv, tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    with pytest.raises(BuildFailed, match="cycle"):
        Plan.resolve([rec.step("a", needs=("b",)), rec.step("b", needs=("a",))], env, ["a"])
    with pytest.raises(BuildFailed, match="unknown build step 'zzz'"):
        Plan.resolve([rec.step("a", needs=("zzz",))], env, ["a"])


def test_a_build_that_leaves_no_outputs_fails_with_its_log(env: BuildEnv) -> None:
    step = Step(
        name="broken",
        inputs=(),
        build=lambda env, log, key: None,
        present=lambda env, key: False,
    )
    with pytest.raises(BuildFailed) as exc:
        run_step(env, step, "k")
    assert exc.value.log == env.log("broken")
