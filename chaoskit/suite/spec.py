"""Suite files: which cluster, topology, load, experiments, trials and SLOs make one run.

A suite is a YAML mapping (see ``experiments/suites/README.md`` for every field)::

    name: flash-sale
    description: Every fault under flash-sale traffic.
    seed: 42
    trials: 1
    cluster: {config: ../../kind-config.yaml, name: chaoskit}
    topology: ecommerce
    namespaces: [shop]
    load: {profile: flash_sale, users: 20, warmup: 15, cooldown: 10}
    slos:
      - {name: no lost orders, kind: lost_orders, threshold: 0}
    experiments:
      - file: ../pod-kill.yaml
        trials: 3
        vars: {selector: app.kubernetes.io/name=gateway}
        slos: [{name: recovery, kind: recovery_s, threshold: 30}]
      - {file: ../etcd-quorum-loss.yaml, requires: {control_planes: 3}}

Paths are relative to the suite file. ``topology`` is one of chaoskit's topologies by name,
or the path of a system folder of the user's own (``./deploy``, or its
``chaoskit-system.yaml``; see ``docs/system-file.md``), loaded and checked with the suite.
An experiment ``file`` may name one of chaoskit's shipped experiments as
``chaoskit:NAME`` (``experiments/NAME.yaml`` of chaoskit's source tree). :func:`load_suite`
checks everything before anything runs and reports the first problem as one line naming the
file, the field and the reason (``InvalidConfig``, exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.documents import FieldReader, read_document, refuse_placeholders
from chaoskit.errors import InvalidInput
from chaoskit.load.profiles import REQUEST_TIMEOUT_S
from chaoskit.system.spec import SYSTEM_FILE, SystemSpec, is_system_path, load_system

SUITE_FIELDS = frozenset(
    {
        "name",
        "description",
        "seed",
        "trials",
        "cluster",
        "topology",
        "namespaces",
        "load",
        "slos",
        "experiments",
        "serving_deadline",
    }
)
CLUSTER_FIELDS = frozenset({"config", "name"})
LOAD_FIELDS = frozenset(
    {
        "profile",
        "users",
        "spawn_rate",
        "think_time",
        "workers",
        "warmup",
        "cooldown",
        "max_duration",
    }
)
EXPERIMENT_FIELDS = frozenset({"file", "name", "trials", "vars", "slos", "requires"})
REQUIRES_FIELDS = frozenset({"control_planes", "workers"})
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MAX_TRIALS = 100
DEFAULT_USERS = 20
SHIPPED = "chaoskit:"
"""Prefix of an experiment ``file`` that names one of chaoskit's own experiments."""
SHIPPED_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class LoadSettings:
    """The traffic that runs through every trial: started ``warmup`` seconds before the
    experiment, stopped ``cooldown`` seconds after it ended."""

    profile: str
    users: int = 20
    spawn_rate: float | None = None
    think_time: float | None = None
    workers: int = 0
    warmup: float = 15.0
    cooldown: float = 10.0
    max_duration: float = 900.0
    """The load's own bound: Locust stops by itself after this many seconds whatever
    happens to the harness."""


@dataclass(frozen=True)
class Requirements:
    control_planes: int = 0
    workers: int = 0

    def unmet(self, control_planes: int, workers: int) -> str | None:
        """Why a cluster of that shape cannot run the experiment, or None."""
        if control_planes < self.control_planes:
            return f"needs {self.control_planes} control planes, the cluster has {control_planes}"
        if workers < self.workers:
            return f"needs {self.workers} workers, the cluster has {workers}"
        return None


@dataclass(frozen=True)
class ExperimentEntry:
    name: str
    file: Path
    trials: int
    variables: dict[str, str] = field(default_factory=dict)
    slos: tuple[dict[str, Any], ...] = ()
    """SLOs of this experiment: the suite's, with same-named ones replaced by its own."""
    requires: Requirements = Requirements()


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    seed: str
    cluster_config: Path
    cluster_name: str
    topology: str
    """As written: a topology's name, or the path of a system folder (see ``system``)."""
    namespaces: tuple[str, ...]
    load: LoadSettings | None
    slos: tuple[dict[str, Any], ...]
    experiments: tuple[ExperimentEntry, ...]
    serving_deadline: float = 180.0
    """Seconds after each trial within which the system must serve end to end again
    (what ``chaoskit deploy --check`` proves); if it does not, that trial failed."""
    system: SystemSpec | None = None
    """The checked system file when ``topology`` is the path of a system folder."""

    @property
    def trial_count(self) -> int:
        return sum(e.trials for e in self.experiments)

    def to_dict(self) -> dict[str, Any]:
        """What the run directory records about the suite (``run.json``)."""
        return {
            "name": self.name,
            "file": str(self.path),
            "description": self.description,
            "seed": self.seed,
            "trials": {e.name: e.trials for e in self.experiments},
            "profile": self.load.profile if self.load else None,
            "topology": self.topology,
            "system": str(self.system.path) if self.system else None,
            "cluster_config": str(self.cluster_config),
            "namespaces": list(self.namespaces),
            "serving_deadline": self.serving_deadline,
        }


def select_experiments(suite: Suite, *, only: tuple[str, ...], skip: tuple[str, ...]) -> Suite:
    """The suite with only the experiments named in ``only`` (all if empty), less those in
    ``skip``: rerun one failed experiment, or leave out those exercised elsewhere."""
    from dataclasses import replace  # noqa: PLC0415 - light

    names = [e.name for e in suite.experiments]
    for option, given in (("--only", only), ("--skip", skip)):
        for name in given:
            if name not in names:
                raise InvalidInput(
                    f"{option} {name!r}: {suite.path} has no such experiment "
                    f"(it has: {', '.join(names)})"
                )
    chosen = tuple(
        e for e in suite.experiments if (not only or e.name in only) and e.name not in skip
    )
    if not chosen:
        raise InvalidInput(f"--only/--skip leave no experiment of {suite.path} to run")
    return replace(suite, experiments=chosen)


def load_suite(path: Path) -> Suite:
    """The checked suite; raises InvalidConfig naming the file, the field and the reason."""
    doc = read_document(path)
    r = FieldReader(path)
    doc = r.mapping("", doc, SUITE_FIELDS)
    for required in ("name", "experiments"):
        if required not in doc:
            raise r.fail(required, "is required")
    name = r.text("name", doc["name"], pattern=NAME)
    trials = r.integer("trials", doc.get("trials", 1), low=1, high=MAX_TRIALS)
    cluster = r.mapping("cluster", doc.get("cluster") or {}, CLUSTER_FIELDS)
    config = r.file("cluster.config", cluster.get("config", "../../kind-config.yaml"))
    cluster_name = r.text("cluster.name", cluster.get("name", "chaoskit"), pattern=NAME)
    topology = r.text("topology", doc.get("topology", "ecommerce"))
    system = _system(r, topology) if is_system_path(topology) else None
    # The system file's placeholders first: the suite's (pod-kill's namespace) follow them.
    refuse_placeholders(path, doc)
    namespaces_raw = doc.get("namespaces", list(system.namespaces) if system else ["shop"])
    if not isinstance(namespaces_raw, list) or not namespaces_raw:
        raise r.fail("namespaces", "must be a non-empty list of namespaces")
    namespaces = tuple(
        r.text(f"namespaces[{i}]", ns, pattern=NAME) for i, ns in enumerate(namespaces_raw)
    )
    if system is not None:
        load = _system_load(r, doc.get("load"), system)
    else:
        load = _load(r, doc["load"]) if doc.get("load") is not None else None
    # With load, the client's timeout caps every latency it records.
    limit_ms = REQUEST_TIMEOUT_S * 1000 if load is not None else None
    suite_slos = _slo_list(r, "slos", doc.get("slos") or [], limit_ms)
    if system is not None:
        _refuse_shop_slos(r, "slos", suite_slos, system)
    experiments_raw = doc["experiments"]
    if not isinstance(experiments_raw, list) or not experiments_raw:
        raise r.fail("experiments", "must be a non-empty list")
    experiments: list[ExperimentEntry] = []
    for i, item in enumerate(experiments_raw):
        entry = _experiment(
            r, f"experiments[{i}]", item, trials, suite_slos, latency_limit_ms=limit_ms
        )
        if any(e.name == entry.name for e in experiments):
            raise r.fail(f"experiments[{i}].name", f"{entry.name!r} appears twice")
        if system is not None:
            own = item.get("slos") if isinstance(item, dict) else None
            _refuse_shop_slos(r, f"experiments[{i}].slos", tuple(own or ()), system)
        experiments.append(entry)
    return Suite(
        path=path,
        name=name,
        description=str(doc.get("description", "")).strip(),
        seed=r.text("seed", doc.get("seed", 1)),
        cluster_config=config,
        cluster_name=cluster_name,
        topology=topology,
        namespaces=namespaces,
        load=load,
        slos=suite_slos,
        experiments=tuple(experiments),
        serving_deadline=r.number(
            "serving_deadline", doc.get("serving_deadline", 180.0), positive=True
        ),
        system=system,
    )


def _system(r: FieldReader, topology: str) -> SystemSpec:
    """The checked system of the folder (or system file) ``topology`` names, relative to
    the suite file. What is wrong inside the system file is reported in its own name."""
    given = Path(topology)
    path = given if given.is_absolute() else r.path.parent / given
    try:
        is_folder, exists = path.is_dir(), path.exists()
        has_file = is_folder and (path / SYSTEM_FILE).is_file()
    except (OSError, ValueError) as e:
        raise r.fail("topology", f"{topology!r} cannot be read: {e}") from None
    if not exists:
        raise r.fail("topology", f"no such system folder or file: {path}")
    if is_folder and not has_file:
        raise r.fail(
            "topology",
            f"{topology!r} holds no {SYSTEM_FILE} (a system folder; 'chaoskit init' writes one)",
        )
    return load_system(path)


SHOP_SLO_KINDS = {
    "lost_orders": "counts the shop's ledger of orders; a system's invariants replace it",
    "prometheus": "queries chaoskit's Prometheus, which is deployed with the shop only",
}
"""SLO kinds a suite on a system of the user's own cannot judge, and why."""


def _refuse_shop_slos(
    r: FieldReader, where: str, slos: tuple[Any, ...], system: SystemSpec
) -> None:
    for i, slo in enumerate(slos):
        kind = slo.get("kind") if isinstance(slo, dict) else None
        if isinstance(kind, str) and kind in SHOP_SLO_KINDS:
            raise r.fail(
                f"{where}[{i}].kind",
                f"{kind} cannot be judged on the system {system.name!r}: it {SHOP_SLO_KINDS[kind]}",
            )


def _slo_list(
    r: FieldReader, where: str, value: Any, latency_limit_ms: float | None
) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise r.fail(where, f"must be a list, not {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise r.fail(f"{where}[{i}]", "must be a mapping")
        named = dict(item)
        named["name"] = r.text(f"{where}[{i}].name", item.get("name", item.get("kind")))
        if latency_limit_ms is not None:
            _check_latency_threshold(r, f"{where}[{i}].threshold", named, latency_limit_ms)
        out.append(named)
    return tuple(out)


def _check_latency_threshold(
    r: FieldReader, where: str, slo: dict[str, Any], limit_ms: float
) -> None:
    """A latency SLO must sit below the load client's request timeout: a request that times
    out is recorded at the timeout, so a threshold at or above it could never fail."""
    threshold = slo.get("threshold")
    if slo.get("kind") != "p99_ms" or isinstance(threshold, bool):
        return
    if isinstance(threshold, int | float) and threshold >= limit_ms:
        raise r.fail(
            where,
            f"{threshold:g} ms is not below the load client's request timeout "
            f"({limit_ms:g} ms): a request that times out is recorded at the timeout, so "
            f"this p99 could never fail; set it below {limit_ms:g}",
        )


def _system_load(r: FieldReader, value: Any, system: SystemSpec) -> LoadSettings | None:
    """The load of a suite on a system folder: the system file's ``load`` (its Locust file
    or profile, users and spawn rate, sent to its ``load.target``), with what the suite's
    own ``load`` gives taking precedence field by field, except what runs: the system file
    says that, and a suite's ``load.profile`` may only repeat it. No load when neither has
    one."""
    own = system.load
    if own is None:
        if value is None:
            return None
        raise r.fail(
            "load",
            f"the system {system.name!r} ({system.path}) has no load: its load.target names "
            "the published Service the traffic goes to; add load there",
        )
    profile = str(own.locustfile) if own.locustfile is not None else own.profile
    assert profile is not None  # load_system requires one of the two
    defaults = {
        "profile": profile,
        "users": own.users if own.users is not None else DEFAULT_USERS,
        "spawn_rate": own.spawn_rate,
    }
    raw = r.mapping("load", value if value is not None else {}, LOAD_FIELDS)
    given = {k: v for k, v in raw.items() if v is not None}
    if "profile" in given and not _same_profile(r, given["profile"], own.locustfile, profile):
        runs = f"its Locust file {own.locustfile}" if own.locustfile else f"profile {profile!r}"
        raise r.fail(
            "load.profile",
            f"{given['profile']!r} conflicts with the system {system.name!r}, whose load runs "
            f"{runs} ({system.path}); leave load.profile out",
        )
    merged = {k: v for k, v in defaults.items() if v is not None} | given
    return _load(r, merged)


def _same_profile(r: FieldReader, given: Any, locustfile: Path | None, profile: str) -> bool:
    """Whether a suite's ``load.profile`` names what the system's load runs."""
    if not isinstance(given, str):
        return False
    if locustfile is None:
        return given == profile
    path = Path(given)
    return (path if path.is_absolute() else r.path.parent / path).resolve() == locustfile


def _load(r: FieldReader, value: Any) -> LoadSettings:
    raw = r.mapping("load", value, LOAD_FIELDS)
    if "profile" not in raw:
        raise r.fail("load.profile", "is required")
    spawn = raw.get("spawn_rate")
    think = raw.get("think_time")
    profile = r.text("load.profile", raw["profile"])
    if profile.endswith(".py"):  # a locustfile of one's own, relative to the suite file
        profile = str(r.file("load.profile", profile))
    settings = LoadSettings(
        profile=profile,
        users=r.integer("load.users", raw.get("users", DEFAULT_USERS), low=1, high=10_000),
        spawn_rate=r.number("load.spawn_rate", spawn, positive=True) if spawn is not None else None,
        think_time=r.number("load.think_time", think) if think is not None else None,
        workers=r.integer("load.workers", raw.get("workers", 0), low=0, high=64),
        warmup=r.number("load.warmup", raw.get("warmup", 15)),
        cooldown=r.number("load.cooldown", raw.get("cooldown", 10)),
        max_duration=r.number("load.max_duration", raw.get("max_duration", 900), positive=True),
    )
    if settings.warmup + settings.cooldown >= settings.max_duration:
        raise r.fail("load.max_duration", "must be longer than warmup + cooldown")
    return settings


def _experiment(
    r: FieldReader,
    where: str,
    value: Any,
    default_trials: int,
    suite_slos: tuple[dict[str, Any], ...],
    *,
    latency_limit_ms: float | None,
) -> ExperimentEntry:
    if isinstance(value, str):
        value = {"file": value}
    raw = r.mapping(where, value, EXPERIMENT_FIELDS)
    if "file" not in raw:
        raise r.fail(f"{where}.file", "is required")
    file = _experiment_file(r, f"{where}.file", raw["file"])
    name = r.text(f"{where}.name", raw.get("name", file.stem.lower()), pattern=NAME)
    variables_raw = raw.get("vars") or {}
    if not isinstance(variables_raw, dict):
        raise r.fail(f"{where}.vars", "must be a mapping of configuration keys to values")
    variables = {str(k): str(v) for k, v in variables_raw.items()}
    own = _slo_list(r, f"{where}.slos", raw.get("slos") or [], latency_limit_ms)
    own_names = {s["name"] for s in own}
    slos = tuple(s for s in suite_slos if s["name"] not in own_names) + own
    requires_raw = r.mapping(f"{where}.requires", raw.get("requires") or {}, REQUIRES_FIELDS)
    requires = Requirements(
        control_planes=r.integer(
            f"{where}.requires.control_planes", requires_raw.get("control_planes", 0), low=0
        ),
        workers=r.integer(f"{where}.requires.workers", requires_raw.get("workers", 0), low=0),
    )
    return ExperimentEntry(
        name=name,
        file=file,
        trials=r.integer(f"{where}.trials", raw.get("trials", default_trials), low=1, high=100),
        variables=variables,
        slos=slos,
        requires=requires,
    )


def shipped_experiments() -> Path:
    """chaoskit's own ``experiments/`` folder: in its source tree, beside the package (an
    editable install, or a run from a checkout)."""
    return Path(__file__).resolve().parents[2] / "experiments"


def _experiment_file(r: FieldReader, where: str, value: Any) -> Path:
    """The experiment file ``value`` names: a path relative to the suite file, or
    ``chaoskit:NAME``, chaoskit's own ``experiments/NAME.yaml``."""
    text = r.text(where, value)
    if not text.startswith(SHIPPED):
        return r.file(where, text)
    name = text[len(SHIPPED) :]
    folder = shipped_experiments()
    if not SHIPPED_NAME.fullmatch(name):
        raise r.fail(where, f"{text!r}: after {SHIPPED!r} comes an experiment name (pod-kill)")
    if not folder.is_dir():
        raise r.fail(
            where,
            f"{text!r}: chaoskit's experiments/ folder is not beside its package ({folder}); "
            "install chaoskit from its source tree (pip install -e), or give the file's path",
        )
    file = folder / f"{name}.yaml"
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise r.fail(where, f"{text!r}: chaoskit has no such experiment (it has: {known})")
    return file
