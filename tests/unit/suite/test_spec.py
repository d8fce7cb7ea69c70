"""Suite files: what a valid one gives, and one line naming file, field and reason else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoskit.errors import InvalidConfig, InvalidInput
from chaoskit.suite.spec import load_suite, select_experiments

REPO = Path(__file__).resolve().parents[3]
SUITES = REPO / "experiments" / "suites"


def write(tmp_path: Path, doc: object) -> Path:
    (tmp_path / "pod-kill.yaml").write_text((REPO / "experiments/pod-kill.yaml").read_text())
    (tmp_path / "kind.yaml").write_text((REPO / "kind-config.quick.yaml").read_text())
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def minimal(**extra: object) -> dict[str, object]:
    return {
        "name": "s",
        "cluster": {"config": "kind.yaml"},
        "experiments": [{"file": "pod-kill.yaml"}],
        **extra,
    }


@pytest.mark.parametrize("suite", sorted(SUITES.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_shipped_suites_load(suite: Path) -> None:
    loaded = load_suite(suite)
    assert loaded.experiments and loaded.trial_count >= len(loaded.experiments)
    assert all(e.file.is_file() for e in loaded.experiments)


def _experiments_tagged(tag: str, *, tagged: bool) -> set[Path]:
    return {
        p.resolve()
        for p in (REPO / "experiments").glob("*.yaml")
        if (tag in (yaml.safe_load(p.read_text()).get("tags") or [])) == tagged
    }


# The network and resource faults that fit flash-sale's time (short, on one Pod).
IN_FLASH_SALE = {"network-loss", "dns-outage", "cpu-hog"}


def test_the_flash_sale_suite_covers_every_experiment_of_the_default_topology() -> None:
    """Every experiment file, except the data tier's (they need topology ecommerce-ha) and
    the network and resource faults' (suites/network.yaml, suites/partitions.yaml) but for
    the three that fit its time."""
    loaded = load_suite(SUITES / "flash-sale.yaml")
    files = {e.file.resolve() for e in loaded.experiments}
    default_topology = _experiments_tagged("data-tier", tagged=False)
    elsewhere = {
        p
        for p in _experiments_tagged("network", tagged=True)
        | _experiments_tagged("resource", tagged=True)
        if p.stem not in IN_FLASH_SALE
    }
    assert elsewhere and not files & elsewhere
    assert files == default_topology - elsewhere
    assert {p.stem for p in files} >= IN_FLASH_SALE
    assert loaded.load is not None and loaded.load.profile == "flash_sale"


def test_the_network_and_partitions_suites_cover_every_network_experiment() -> None:
    """Pod network and resource faults in suites/network.yaml, node partitions in
    suites/partitions.yaml, the data tier's partitions (ecommerce-ha) in
    suites/partitions-ha.yaml."""
    network = load_suite(SUITES / "network.yaml")
    partitions = load_suite(SUITES / "partitions.yaml")
    partitions_ha = load_suite(SUITES / "partitions-ha.yaml")
    tagged = _experiments_tagged("network", tagged=True)
    partition = _experiments_tagged("partition", tagged=True)
    data_tier = _experiments_tagged("data-tier", tagged=True)
    assert partition and partition <= tagged
    resource = _experiments_tagged("resource", tagged=True)
    assert {e.file.resolve() for e in network.experiments} == (tagged - partition) | resource
    assert {e.file.resolve() for e in partitions.experiments} == partition - data_tier
    assert {e.file.resolve() for e in partitions_ha.experiments} == partition & data_tier
    for loaded in (network, partitions, partitions_ha):
        assert loaded.load is not None and loaded.load.profile == "flash_sale"


def test_defaults_and_overrides(tmp_path: Path) -> None:
    doc = minimal(
        trials=2,
        seed=5,
        slos=[
            {"name": "recovery", "kind": "recovery_s", "max": 10},
            {"name": "x", "kind": "p99_ms"},
        ],
        experiments=[
            {
                "file": "pod-kill.yaml",
                "trials": 4,
                "vars": {"count": 2},
                "slos": [{"name": "recovery", "kind": "recovery_s", "max": 99}],
            },
            {"file": "pod-kill.yaml", "name": "again"},
        ],
    )
    suite = load_suite(write(tmp_path, doc))
    first, second = suite.experiments
    assert (first.name, first.trials, first.variables) == ("pod-kill", 4, {"count": "2"})
    assert [s["max"] for s in first.slos if s["name"] == "recovery"] == [99]
    assert {s["name"] for s in first.slos} == {"recovery", "x"}
    assert (second.name, second.trials) == ("again", 2)
    assert suite.seed == "5" and suite.trial_count == 6 and suite.load is None
    assert suite.namespaces == ("shop",) and suite.cluster_name == "chaoskit"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"colour": "red"}, "colour", "unknown field"),
        ({"trials": 0}, "trials", "must be between 1 and 100, not 0"),
        ({"trials": "many"}, "trials", "must be an integer"),
        ({"experiments": []}, "experiments", "must be a non-empty list"),
        ({"experiments": [{"file": "nope.yaml"}]}, "experiments[0].file", "no such file"),
        (
            {"experiments": [{"file": "pod-kill.yaml", "trails": 2}]},
            "experiments[0].trails",
            "unknown field",
        ),
        (
            {"experiments": ["pod-kill.yaml", "pod-kill.yaml"]},
            "experiments[1].name",
            "'pod-kill' appears twice",
        ),
        ({"load": {"users": 3}}, "load.profile", "is required"),
        ({"load": {"profile": "steady", "users": -1}}, "load.users", "must be between 1"),
        (
            {"load": {"profile": "steady", "warmup": 500, "max_duration": 100}},
            "load.max_duration",
            "must be longer than warmup + cooldown",
        ),
        ({"cluster": {"config": "kind.yaml", "name": "Bad_Name"}}, "cluster.name", "must match"),
        ({"slos": [{"threshold": 1}]}, "slos[0].name", "must be a non-empty string"),
        ({"namespaces": []}, "namespaces", "non-empty list"),
    ],
)
def test_bad_fields_are_named(
    tmp_path: Path, change: dict[str, object], field: str, reason: str
) -> None:
    path = write(tmp_path, minimal(**change))
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_x_fields_hold_the_authors_anchors(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal(), sort_keys=False) + "x-mine: &n 3\ntrials: *n\n"
    assert load_suite(write(tmp_path, text)).experiments[0].trials == 3
    with pytest.raises(InvalidConfig, match=r"load\.x-mine: unknown field"):
        load_suite(write(tmp_path, minimal(load={"profile": "steady", "x-mine": 1})))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="no such file"):
        load_suite(tmp_path / "absent.yaml")
    with pytest.raises(InvalidConfig, match="line 2: not valid YAML"):
        load_suite(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(InvalidConfig, match="name: is required"):
        load_suite(write(tmp_path, {"experiments": ["pod-kill.yaml"]}))


def test_only_and_skip_choose_experiments_and_name_unknown_ones() -> None:
    suite = load_suite(SUITES / "flash-sale.yaml")
    names = [e.name for e in suite.experiments]
    only = select_experiments(suite, only=("node-kill", "pod-kill"), skip=())
    assert [e.name for e in only.experiments] == [
        n for n in names if n in ("node-kill", "pod-kill")
    ]
    assert only.trial_count == 2
    skipped = select_experiments(suite, only=(), skip=("node-kill",))
    assert [e.name for e in skipped.experiments] == [n for n in names if n != "node-kill"]
    with pytest.raises(InvalidInput, match=r"--skip 'node-kil': .* has no such experiment"):
        select_experiments(suite, only=(), skip=("node-kil",))
    with pytest.raises(InvalidInput, match="leave no experiment"):
        select_experiments(suite, only=("pod-kill",), skip=("pod-kill",))
