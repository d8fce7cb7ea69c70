"""report.html renders in headless Chromium with its plots: a screenshot that is not blank
and shows the charts' colours, and a DOM with the SVG charts in it. Needs no cluster:
the run directory is built like the unit tests' (tests/unit/report/rundirs.py).
scripts/test.sh installs Debian's chromium when it is missing."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from chaoskit.report import render
from chaoskit.report.svg import PALETTE, SHADE
from tests.unit.report.rundirs import SUITE_SLOS, TrialSpec, write_run

WIDTH, HEIGHT = 1200, 3200


def _chromium() -> list[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not on PATH (scripts/test.sh installs Debian's chromium)")
    # As root Chromium needs --no-sandbox; no GPU in a container or CI runner.
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)


def _pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB pixels) of an 8-bit RGB or RGBA PNG, as Chromium writes it."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), f"unexpected PNG format: depth {depth}, type {color}"
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]  # type: ignore[misc]
        previous = line
    return width, height, pixels


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One experiment, one trial: its timeline falls within the screenshot."""
    folder = tmp_path_factory.mktemp("render") / "run"
    spec = TrialSpec(recovery_s=6.0, error_seconds=4, failures_per_s=10)
    return render(write_run(folder, [spec], slos=SUITE_SLOS))["html"]


def test_the_report_renders_with_its_plots_in_headless_chromium(
    report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    proc = _run(
        [*_chromium(), "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
         f"--screenshot={shot}", report.as_uri()]
    )  # fmt: skip
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    width, height, pixels = _pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colors = Counter(pixels)
    background, most = colors.most_common(1)[0]
    assert most < 0.97 * len(pixels), f"the page is nearly blank ({background} everywhere)"
    assert len(colors) > 50
    # The shaded fault window of each panel, and each series' colour.
    assert colors[_rgb(SHADE)] > 2000, "no fault window in the screenshot"
    for series in PALETTE[:3]:
        assert colors[_rgb(series)] > 30, f"no pixels of the series colour {series}"


def test_the_dom_holds_the_svg_charts(report: Path) -> None:
    proc = _run([*_chromium(), "--dump-dom", report.as_uri()])
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert len(re.findall(r'<svg[^>]*class="chart timeline"', dom)) == 1
    assert len(re.findall(r'<svg[^>]*class="chart bars"', dom)) == 1
    assert len(re.findall(r'<path class="series"', dom)) == 3
    assert len(re.findall(r'<rect class="fault-window"', dom)) == 3
    assert 'data-marker="injected"' in dom and 'data-marker="recovered"' in dom
    assert re.search(r'<span class="score" id="score">\d+\.\d</span>', dom)
