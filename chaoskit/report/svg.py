"""Small inline SVG charts, written by hand: no plotting library, no script, no fonts to
fetch, the same bytes for the same data. Every text is escaped.

- :func:`timeline_chart`: panels stacked on one time axis (RPS, p99, errors per second),
  the fault window shaded and the injection and recovery marked;
- :func:`bar_chart`: horizontal bars with their values (recovery by component);
- :func:`spread_chart`: min, median and max ranges (trials of an experiment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = "font-family:system-ui,sans-serif"
AXIS = "#6b7280"
GRID = "#e5e7eb"
SHADE = "#fde2e1"
PALETTE = ("#2563eb", "#d97706", "#dc2626", "#059669", "#7c3aed", "#0891b2")


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    """A coordinate: short and stable."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``count`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step) * step
    out = []
    value = first
    while value <= hi + step * 1e-9:
        out.append(round(value, 10))
        value += step
    return out


def label(value: float) -> str:
    """A tick label: 1.5, 20, 1.2k."""
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:g}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float | None]]
    """(x, y); y None (or NaN) breaks the line."""
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    lines: Sequence[Line]
    height: int = 110


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    color: str = "#b91c1c"
    dashed: bool = True


@dataclass
class _Frame:
    width: float
    left: float = 60
    right: float = 16
    x0: float = 0.0
    x1: float = 1.0
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        inner = self.width - self.left - self.right
        span = self.x1 - self.x0 or 1.0
        return self.left + (value - self.x0) / span * inner


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{_n(x)},{_n(y)}" for i, (x, y) in enumerate(points))


def _segments(
    line: Line, to_xy: tuple[_Frame, float, float, float, float]
) -> list[list[tuple[float, float]]]:
    frame, top, height, y0, y1 = to_xy
    out: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in line.points:
        if y is None or not math.isfinite(y) or not frame.x0 <= x <= frame.x1:
            if current:
                out.append(current)
            current = []
            continue
        py = top + height - (y - y0) / ((y1 - y0) or 1.0) * height
        current.append((frame.x(x), py))
    if current:
        out.append(current)
    return out


def _y_max(panel: Panel) -> float:
    values = [y for ln in panel.lines for _, y in ln.points if y is not None and math.isfinite(y)]
    peak = max(values, default=0.0)
    if peak <= 0:
        return 1.0
    step = nice_step(peak, 3)
    return max(step, math.ceil(peak / step) * step)


def _panel(frame: _Frame, panel: Panel, top: float, shade: tuple[float, float] | None) -> None:
    """One panel of a timeline: title, fault window, grid, lines, legend, axis."""
    parts = frame.parts
    y1 = _y_max(panel)
    h = float(panel.height)
    right = frame.width - frame.right
    unit = f" ({_e(panel.unit)})" if panel.unit else ""
    parts.append(
        f'<g class="panel" data-panel="{_e(panel.title)}"><text x="{_n(frame.left)}" '
        f'y="{_n(top - 5)}" font-size="12" font-weight="600" fill="#111827">'
        f"{_e(panel.title)}{unit}</text>"
    )
    if shade is not None:
        a, b = (max(frame.x0, shade[0]), min(frame.x1, shade[1]))
        if b > a:
            parts.append(
                f'<rect class="fault-window" x="{_n(frame.x(a))}" y="{_n(top)}" '
                f'width="{_n(frame.x(b) - frame.x(a))}" height="{_n(h)}" fill="{SHADE}"/>'
            )
    for tick in ticks(0.0, y1, 3):
        py = top + h - tick / y1 * h
        parts.append(
            f'<line x1="{_n(frame.left)}" x2="{_n(right)}" y1="{_n(py)}" y2="{_n(py)}" '
            f'stroke="{GRID}"/><text x="{_n(frame.left - 6)}" y="{_n(py + 4)}" '
            f'font-size="10" text-anchor="end" fill="{AXIS}">{_e(label(tick))}</text>'
        )
    for line in panel.lines:
        for segment in _segments(line, (frame, top, h, 0.0, y1)):
            if len(segment) == 1:
                cx, cy = segment[0]
                parts.append(
                    f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="1.5" fill="{_e(line.color)}"/>'
                )
                continue
            parts.append(
                f'<path class="series" data-series="{_e(line.label)}" d="{_path(segment)}" '
                f'fill="none" stroke="{_e(line.color)}" stroke-width="1.5"/>'
            )
    if len(panel.lines) > 1:
        for n, line in enumerate(reversed(panel.lines)):
            parts.append(
                f'<text x="{_n(right)}" y="{_n(top - 5)}" dx="{-n * 90}" font-size="10" '
                f'text-anchor="end" fill="{_e(line.color)}">{_e(line.label)}</text>'
            )
    parts.append(
        f'<line x1="{_n(frame.left)}" x2="{_n(right)}" y1="{_n(top + h)}" y2="{_n(top + h)}" '
        f'stroke="{AXIS}"/></g>'
    )


def timeline_chart(
    panels: Sequence[Panel],
    *,
    x_range: tuple[float, float],
    x_title: str,
    markers: Sequence[Marker] = (),
    shade: tuple[float, float] | None = None,
    title: str = "",
    width: int = 760,
) -> str:
    """Panels stacked on one x axis; ``shade`` is the fault window, ``markers`` its edges."""
    frame = _Frame(width=width, x0=x_range[0], x1=max(x_range[1], x_range[0] + 1))
    top = 18.0
    parts = frame.parts
    for index, panel in enumerate(panels):
        _panel(frame, panel, top, shade)
        top += panel.height + (26 if index < len(panels) - 1 else 0)
    bottom = top
    first_top = 18.0
    for marker in markers:
        if not frame.x0 <= marker.x <= frame.x1:
            continue
        mx = frame.x(marker.x)
        dash = ' stroke-dasharray="4 3"' if marker.dashed else ""
        parts.append(
            f'<g class="marker" data-marker="{_e(marker.label)}"><line x1="{_n(mx)}" '
            f'x2="{_n(mx)}" y1="{_n(first_top)}" y2="{_n(bottom)}" stroke="{_e(marker.color)}" '
            f'stroke-width="1.2"{dash}/><text x="{_n(mx + 3)}" y="{_n(first_top + 10)}" '
            f'font-size="10" fill="{_e(marker.color)}">{_e(marker.label)}</text></g>'
        )
    for tick in ticks(frame.x0, frame.x1, 8):
        tx = frame.x(tick)
        parts.append(
            f'<line x1="{_n(tx)}" x2="{_n(tx)}" y1="{_n(bottom)}" y2="{_n(bottom + 4)}" '
            f'stroke="{AXIS}"/><text x="{_n(tx)}" y="{_n(bottom + 15)}" font-size="10" '
            f'text-anchor="middle" fill="{AXIS}">{_e(label(tick))}</text>'
        )
    parts.append(
        f'<text x="{_n(frame.x((frame.x0 + frame.x1) / 2))}" y="{_n(bottom + 30)}" '
        f'font-size="11" text-anchor="middle" fill="{AXIS}">{_e(x_title)}</text>'
    )
    height = bottom + 38
    return _svg("chart timeline", width, height, title, parts)


def _svg(css_class: str, width: float, height: float, title: str, parts: list[str]) -> str:
    """Inline in HTML: the parser puts ``<svg>`` in the SVG namespace, no xmlns needed."""
    return (
        f'<svg class="{css_class}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" '
        f'role="img" aria-label="{_e(title)}" style="{FONT}"><title>{_e(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )


def bar_chart(
    items: Sequence[tuple[str, float]], *, unit: str = "s", title: str = "", width: int = 760
) -> str:
    """One horizontal bar per (label, value), the value written at its end."""
    left, right, row = 300.0, 70.0, 22.0
    top = 8.0
    peak = max((v for _, v in items), default=0.0) or 1.0
    inner = width - left - right
    parts = []
    for index, (name, value) in enumerate(items):
        y = top + index * row
        length = max(value, 0.0) / peak * inner
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<g class="bar" data-label="{_e(name)}"><text x="{_n(left - 8)}" '
            f'y="{_n(y + 14)}" font-size="11" text-anchor="end" fill="#111827">{_e(name)}</text>'
            f'<rect x="{_n(left)}" y="{_n(y + 3)}" width="{_n(max(length, 1.0))}" height="14" '
            f'fill="{color}"/><text x="{_n(left + length + 5)}" y="{_n(y + 14)}" '
            f'font-size="11" fill="#111827">{_e(f"{value:.2f} {unit}")}</text></g>'
        )
    height = top * 2 + row * max(len(items), 1)
    return _svg("chart bars", width, height, title, parts)


def spread_chart(
    rows: Sequence[tuple[str, float, float, float]],
    *,
    unit: str,
    title: str = "",
    width: int = 760,
) -> str:
    """One min to max range per (label, min, median, max), the median as a dot."""
    left, right, row = 220.0, 120.0, 24.0
    top = 8.0
    lo = min((r[1] for r in rows), default=0.0)
    hi = max((r[3] for r in rows), default=1.0)
    lo = min(lo, 0.0)
    hi = hi if hi > lo else lo + 1.0
    frame = _Frame(width=width, left=left, right=right, x0=lo, x1=hi)
    bottom = top + row * max(len(rows), 1) + 4
    parts = []
    for tick in ticks(lo, hi, 6):
        tx = frame.x(tick)
        parts.append(
            f'<line x1="{_n(tx)}" x2="{_n(tx)}" y1="{_n(top)}" y2="{_n(bottom)}" '
            f'stroke="{GRID}"/><text x="{_n(tx)}" y="{_n(bottom + 12)}" font-size="10" '
            f'text-anchor="middle" fill="{AXIS}">{_e(label(tick))}</text>'
        )
    for index, (name, low, mid, high) in enumerate(rows):
        y = top + index * row + 12
        parts.append(
            f'<g class="range" data-label="{_e(name)}"><text x="{_n(left - 8)}" y="{_n(y + 4)}" '
            f'font-size="11" text-anchor="end" fill="#111827">{_e(name)}</text>'
            f'<line x1="{_n(frame.x(low))}" x2="{_n(frame.x(high))}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="{PALETTE[0]}" stroke-width="3"/><circle cx="{_n(frame.x(mid))}" '
            f'cy="{_n(y)}" r="4" fill="#111827"/><text x="{_n(width - right + 8)}" '
            f'y="{_n(y + 4)}" font-size="10" fill="{AXIS}">'
            f"{_e(f'{low:.3g} / {mid:.3g} / {high:.3g} {unit}')}</text></g>"
        )
    return _svg("chart spread", width, bottom + 18, title, parts)
