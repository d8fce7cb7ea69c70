"""Reading a suite's run directory: the contract between the suite runner and the reports.

A run directory (``reports/<run-id>/``) holds ``run.json`` (the suite, the cluster, the
SLOs, the experiments in order), ``suite.yaml`` and one folder per experiment and trial,
``trials/<experiment>/<n>/``, with ``trial.json`` (status, reasons, fault window, load and
ledger summaries, SLO results), ``result.json`` (what ``chaoskit run --output`` writes) and
``load/`` (the Locust run: ``timeseries.csv``, ``acks.jsonl``, ``summary.json``). Any of a
trial's files may be missing when its trial failed early; readers say so instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from chaoskit.documents import parse_json, read_text
from chaoskit.errors import InvalidConfig, InvalidInput
from chaoskit.load.timeseries import Latency, read_latency, read_timeseries

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
SUITE_FILE = "suite.yaml"
TRIALS_DIR = "trials"
TRIAL_FILE = "trial.json"
RESULT_FILE = "result.json"
LOAD_DIR = "load"
TIMESERIES_FILE = "timeseries.csv"


def read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the document, "") or (None, why not); never raises for a missing or broken file."""
    if not path.exists():
        return None, f"no {path.name}"
    try:
        doc = parse_json(path, read_text(path))
    except InvalidConfig as e:
        where = f"{e.field}: " if e.field else ""
        return None, f"{path.name} is unreadable: {where}{e.reason}"
    if not isinstance(doc, dict):
        return None, f"{path.name} is not a JSON object"
    return doc, ""


_NUMBER = (int, float)
RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "suite": (dict,),
    "cluster": (dict,),
    "started_at": _NUMBER,
    "ended_at": _NUMBER,
    "experiments": (list,),
}
"""The fields of run.json readers use, and their types (each may be missing or null)."""
TRIAL_FIELDS: dict[str, tuple[type, ...]] = {
    "experiment": (str,),
    "file": (str,),
    "trial": (int,),
    "seed": (str, int),
    "status": (str,),
    "reasons": (list,),
    "started_at": _NUMBER,
    "ended_at": _NUMBER,
    "fault": (dict,),
    "load": (dict,),
    "load_error": (str,),
    "ledger": (dict,),
    "ledger_error": (str,),
    "prometheus_url": (str,),
    "slos": (list,),
    "invariants": (list,),
}
"""The same for trial.json."""
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "a mapping"}


def field_problem(doc: dict[str, Any], fields: dict[str, tuple[type, ...]]) -> tuple[str, str]:
    """(field, why) for the first field of ``doc`` whose type is wrong, else ("", "")."""
    for name, types in fields.items():
        value = doc.get(name)
        if value is not None and not isinstance(value, types):
            want = " or ".join(_TYPE_NAMES.get(t, f"a {t.__name__}") for t in types)
            return name, f"must be {want}, not {type(value).__name__}"
    return "", ""


def check_dir(path: Path, what: str = "report directory") -> Path:
    """The directory, or InvalidInput naming it (exit 2 from the CLI)."""
    if not path.exists():
        raise InvalidInput(f"{what} {path}: no such directory")
    if not path.is_dir():
        raise InvalidInput(f"{what} {path}: not a directory")
    return path


@dataclass
class Trial:
    """One trial's folder and what could be read from it."""

    experiment: str
    number: int
    path: Path
    info: dict[str, Any] = field(default_factory=dict)
    """trial.json ({} when missing or unreadable; ``problems`` says why)."""
    result: dict[str, Any] | None = None
    """result.json, as ``chaoskit run --output`` writes it."""
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, experiment: str, number: int, path: Path) -> Trial:
        trial = cls(experiment, number, path)
        info, why = read_json(path / TRIAL_FILE)
        if info is not None:
            field, wrong = field_problem(info, TRIAL_FIELDS)
            if wrong:
                # A damaged trial.json is that trial's problem, reported with it; the rest
                # of the run still renders.
                info, why = None, f"{TRIAL_FILE} is damaged: {field}: {wrong}"
        if info is None:
            logger.warning("%s: %s", path / TRIAL_FILE, why)
            trial.problems.append(why)
        else:
            trial.info = info
        trial.result, why = read_json(path / RESULT_FILE)
        if trial.result is None and (path / RESULT_FILE).exists():
            trial.problems.append(why)
        return trial

    @property
    def chaoskit(self) -> dict[str, Any]:
        """What chaoskit added to the experiment's journal ({} without a result)."""
        value = (self.result or {}).get("chaoskit")
        return value if isinstance(value, dict) else {}

    @property
    def timeseries_path(self) -> Path:
        return self.path / LOAD_DIR / TIMESERIES_FILE

    @cached_property
    def frame(self) -> pd.DataFrame | None:
        """The load's per-second frame (see chaoskit.load.timeseries), or None."""
        path = self.timeseries_path
        if not path.is_file():
            return None
        try:
            frame = read_timeseries(path)
        except (OSError, ValueError, KeyError) as e:
            logger.warning("%s: unreadable time series: %s", path, e)
            return None
        return frame

    @cached_property
    def latency(self) -> Latency | None:
        """Response-time histograms per second from the profile's records in ``load/``
        (``seconds-*.jsonl``), or None (a locustfile that does not write them)."""
        try:
            return read_latency(sorted((self.path / LOAD_DIR).glob("seconds-*.jsonl")))
        except OSError as e:
            logger.warning("%s: unreadable latency records: %s", self.path / LOAD_DIR, e)
            return None

    @property
    def frame_problem(self) -> str:
        """Why there is no time series (for reasons); "" when there is one."""
        if self.frame is not None:
            return ""
        error = self.info.get("load_error")
        if error:
            return f"no load time series (load failed: {error})"
        if self.timeseries_path.is_file():
            return f"the load time series {self.timeseries_path.name} is unreadable"
        return "no load time series"


@dataclass
class Run:
    """A whole run directory."""

    path: Path
    info: dict[str, Any]
    trials: list[Trial]

    @property
    def experiments(self) -> list[str]:
        """Experiment names in the order of run.json, then any other folder found."""
        listed = [str(e) for e in self.info.get("experiments") or []]
        found = [t.experiment for t in self.trials]
        return list(dict.fromkeys([*listed, *found]))

    def trials_of(self, experiment: str) -> list[Trial]:
        return [t for t in self.trials if t.experiment == experiment]

    @property
    def suite(self) -> dict[str, Any]:
        value = self.info.get("suite")
        return value if isinstance(value, dict) else {}

    @property
    def suite_name(self) -> str:
        return str(self.suite.get("name") or self.info.get("run_id") or self.path.name)


def _trial_number(path: Path) -> int | None:
    return int(path.name) if path.name.isdigit() else None


def load_run(path: Path) -> Run:
    """Reads a run directory; InvalidInput when it is not one."""
    check_dir(path)
    info, why = read_json(path / RUN_FILE)
    if info is None:
        raise InvalidInput(f"report directory {path}: {why} (not a chaoskit run directory)")
    field, wrong = field_problem(info, RUN_FIELDS)
    if wrong:
        raise InvalidConfig(path / RUN_FILE, field, wrong)
    trials: list[Trial] = []
    root = path / TRIALS_DIR
    listed = [str(e) for e in info.get("experiments") or []]
    folders = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for experiment in dict.fromkeys([*listed, *folders]):
        folder = root / experiment
        if not folder.is_dir():
            continue
        numbered = sorted(
            (n, p) for p in folder.iterdir() if p.is_dir() and (n := _trial_number(p)) is not None
        )
        trials += [Trial.read(experiment, n, p) for n, p in numbered]
    return Run(path, info, trials)
