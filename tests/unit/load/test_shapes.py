"""The load shapes of loadprofiles/: what tick() asks Locust for, second by second.

The plans are plain functions (loadprofiles/_shapes.py) and are tested here directly; one
test loads the real profiles with Locust's own loader in a separate interpreter (importing
Locust monkey-patches the process it runs in) and ticks their shape classes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

PROFILES = Path(__file__).resolve().parents[3] / "loadprofiles"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"loadprofiles_{name}", PROFILES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


shapes: Any = _load("_shapes")


def ticks(shape: Any, plan: Any, times: list[float]) -> list[Any]:
    return [shape(plan, t) for t in times]


def test_flash_sale_spikes_tenfold_holds_then_decays() -> None:
    plan = shapes.Plan(users=100, spawn_rate=50, duration=100)
    assert ticks(shapes.flash_sale, plan, [0, 10, 19.9]) == [(10, 50)] * 3
    assert ticks(shapes.flash_sale, plan, [20, 45, 69.9]) == [(100, 50)] * 3
    decay = [shapes.flash_sale(plan, t)[0] for t in range(70, 100)]
    assert decay[0] == 100
    assert decay == sorted(decay, reverse=True)
    assert decay[-1] < 20
    assert shapes.flash_sale(plan, 100) is None


def test_flash_sale_reaches_its_peak_within_seconds_by_default() -> None:
    plan = shapes.plan_from_options(SimpleNamespace(num_users=200, run_time=60))
    users, rate = shapes.flash_sale(plan, 30)
    assert users == 200
    assert users / rate <= 5


def test_flash_sale_window_can_be_placed() -> None:
    plan = shapes.Plan(users=50, spawn_rate=10, duration=60, sale_start=5, sale_hold=50)
    assert shapes.flash_sale(plan, 4.9) == (5, 10)
    assert shapes.flash_sale(plan, 5) == (50, 10)
    assert shapes.flash_sale(plan, 54.9) == (50, 10)
    assert shapes.flash_sale(plan, 59)[0] < 50


def test_a_sale_that_fills_the_run_has_no_decay() -> None:
    plan = shapes.Plan(users=30, spawn_rate=10, duration=10, sale_start=2, sale_hold=8)
    assert shapes.flash_sale(plan, 9.99) == (30, 10)
    assert shapes.flash_sale(plan, 10) is None


def test_steady_holds_the_user_count_until_the_end() -> None:
    plan = shapes.Plan(users=20, spawn_rate=5, duration=30)
    assert ticks(shapes.steady, plan, [0, 15, 29.9, 30]) == [(20, 5)] * 3 + [None]


def test_ramp_climbs_from_one_user_to_the_peak() -> None:
    plan = shapes.Plan(users=101, spawn_rate=5, duration=100)
    users = [shapes.ramp(plan, t)[0] for t in range(100)]
    assert users[0] == 1 and users[50] == 51 and users[-1] == 100
    assert users == sorted(users)
    assert shapes.ramp(plan, 100) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users"),
        ({"spawn_rate": 0}, "spawn rate"),
        ({"duration": 0}, "duration"),
        ({"sale_start": 50, "sale_hold": 60}, "must fit"),
    ],
)
def test_impossible_plans_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shapes.Plan(**{"users": 10, "spawn_rate": 1, "duration": 100, **kwargs})


def test_the_baseline_is_a_tenth_of_the_peak_and_at_least_one() -> None:
    assert shapes.Plan(users=100, spawn_rate=1, duration=1).baseline == 10
    assert shapes.Plan(users=5, spawn_rate=1, duration=1).baseline == 1


def test_plans_come_from_locusts_options_with_defaults() -> None:
    plan = shapes.plan_from_options(SimpleNamespace(num_users=None, spawn_rate=None, run_time=None))
    assert plan.users == shapes.DEFAULT_USERS
    assert plan.duration == shapes.DEFAULT_DURATION
    given = shapes.plan_from_options(
        SimpleNamespace(num_users=40, spawn_rate=8, run_time=90, sale_start=10, sale_hold=30)
    )
    assert (given.users, given.spawn_rate, given.duration) == (40, 8.0, 90.0)
    assert given.sale_window() == (10, 30)


TICK_PROFILES = textwrap.dedent(
    """
    import json, sys, types
    from locust.util.load_locustfile import load_locustfile

    result = {}
    for name in ("flash_sale", "steady", "ramp"):
        users, shapes = load_locustfile(f"{sys.argv[1]}/{name}.py")
        options = types.SimpleNamespace(
            num_users=50, spawn_rate=10.0, run_time=100, sale_start=None, sale_hold=None
        )
        environment = types.SimpleNamespace(parsed_options=options)
        ticks = []
        for shape in shapes:
            shape.runner = types.SimpleNamespace(environment=environment)
            for t in (0, 19, 20, 69, 85, 99.9, 100):
                shape.get_run_time = lambda t=t: t
                ticks.append(shape.tick())
        result[name] = {
            "users": sorted(users),
            "shapes": [type(s).__name__ for s in shapes],
            "use_common_options": [s.use_common_options for s in shapes],
            "ticks": ticks,
        }
    print(json.dumps(result))
    """
)


def test_the_profiles_are_locustfiles_with_one_shape_and_the_shop_user() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", TICK_PROFILES, str(PROFILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["flash_sale"]["shapes"] == ["FlashSale"]
    assert result["steady"]["shapes"] == ["Steady"]
    assert result["ramp"]["shapes"] == ["Ramp"]
    for profile in result.values():
        assert profile["users"] == ["ShopUser"]
        assert profile["use_common_options"] == [True]
    assert result["flash_sale"]["ticks"] == [
        [5, 10.0], [5, 10.0], [50, 10.0], [50, 10.0], [28, 10.0], [6, 10.0], None
    ]  # fmt: skip
    assert result["steady"]["ticks"] == [[50, 10.0]] * 6 + [None]
    assert result["ramp"]["ticks"][0] == [1, 10.0] and result["ramp"]["ticks"][-1] is None
