"""Writes every report of a run directory, next to its data."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from chaoskit.report.html import render_html
from chaoskit.report.junit import render_junit
from chaoskit.report.markdown import render_markdown
from chaoskit.report.rundir import load_run
from chaoskit.report.series import write_series
from chaoskit.report.summary import SUMMARY_FILE, build_summary, write_summary

logger = logging.getLogger(__name__)

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
JUNIT_FILE = "junit.xml"


def render(run_dir: Path) -> dict[str, Path]:
    """summary.json, report.html, report.md, junit.xml, timeseries.csv (and .parquet).

    Returns their paths by name (``summary``, ``html``, ``markdown``, ``junit``,
    ``timeseries``, ``parquet``). InvalidInput when ``run_dir`` is not a run directory.
    """
    started = time.monotonic()
    run = load_run(run_dir)
    summary = build_summary(run)
    paths = {"summary": write_summary(summary, run_dir / SUMMARY_FILE)}
    for name, file, text in (
        ("html", HTML_FILE, render_html(run, summary)),
        ("markdown", MARKDOWN_FILE, render_markdown(summary)),
        ("junit", JUNIT_FILE, render_junit(summary)),
    ):
        (run_dir / file).write_text(text, encoding="utf-8")
        paths[name] = run_dir / file
    paths.update(write_series(run, summary, run_dir))
    logger.info(
        "report of %s (%d trials) rendered in %.2f s",
        run_dir,
        summary.totals.trials,
        time.monotonic() - started,
    )
    return paths
