"""Charts for the HTML report, drawn as inline SVG by hand.

Why not a plotting library: the report must open offline and stay small. pygal or plotly
would inline their JavaScript (plotly alone is over 3 MB) and matplotlib is a 40 MB
dependency for a few lines and dots. The charts here are a time axis or a value axis, lines, a
band, markers and shaded spans: a few hundred lines of SVG text, no script, nothing to load,
the same in every browser and on paper. Every number is rounded to 0.1 px, and long series are
thinned to MAX_POINTS by keeping each group's highest value (a spike must survive).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 28
MIN_SPAN = 5.0  # px: the narrowest shaded span
MAX_POINTS = 1200  # per series: a line never needs more points than the chart has pixels

INK, GRID, LINE, EXPECTED, BAND, FLAG, SHADE = "#333", "#ddd", "#1565c0", "#555", "#90caf9", "#c62828", "#ffcdd2"
PALETTE = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#ad1457", "#4e342e")

Point = tuple[datetime, float]


@dataclass
class Plot:
    """What one time chart shows; `svg()` draws it."""

    title: str
    y_label: str
    lines: dict[str, list[Point]] = field(default_factory=dict)  # name -> points, drawn in PALETTE order
    expected: list[Point] = field(default_factory=list)  # dashed
    band: list[tuple[datetime, float, float]] = field(default_factory=list)  # (t, low, high), filled
    flagged: list[tuple[datetime, float, str]] = field(default_factory=list)  # markers with a tooltip
    spans: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # shaded (incidents)
    levels: list[tuple[float, str, str]] = field(default_factory=list)  # horizontal rules: (y, label, colour)
    y_floor: float = 0.0
    height: int = HEIGHT

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.lines.values())

    def svg(self) -> str:
        height = self.height
        times = [t for pts in self.lines.values() for t, _ in pts] + [t for t, _ in self.expected]
        times += [t for t, _, _ in self.band] + [s for s, _, _ in self.spans] + [e for _, e, _ in self.spans]
        if not times:
            return ""
        t0, t1 = min(times), max(times)
        if t1 <= t0:
            t1 = t0 + timedelta(hours=1)
        values = [v for pts in self.lines.values() for _, v in pts] + [v for _, v in self.expected]
        values += [hi for _, _, hi in self.band] + [y for y, _, _ in self.levels]
        top = nice_top(max(values, default=1.0) * 1.05)
        frame = Frame(t0, t1, self.y_floor, top, height)
        out = [frame.open(self.title, self.count), frame.axes(self.y_label)]
        for start, end, label in self.spans:
            # At least MIN_SPAN px wide, with a red tick on top: an hour in six weeks stays visible.
            x0, x1 = frame.x(start), frame.x(end)
            width = max(x1 - x0, MIN_SPAN)
            x0 -= (width - (x1 - x0)) / 2
            out.append(f'<rect class="span" x="{x0:.1f}" y="{TOP}" width="{width:.1f}" height="{frame.plot_h:.1f}" '
                       f'fill="{SHADE}" opacity="0.7"><title>{escape(label)}</title></rect>'
                       f'<rect x="{x0:.1f}" y="{TOP}" width="{width:.1f}" height="5" fill="{FLAG}"/>')
        if self.band:
            upper = [(frame.x(t), frame.y(hi)) for t, _, hi in self.band]
            lower = [(frame.x(t), frame.y(max(lo, self.y_floor))) for t, lo, _ in reversed(self.band)]
            out.append(f'<polygon points="{coords(upper + lower)}" fill="{BAND}" opacity="0.45"/>')
        for i, (y, label, colour) in enumerate(self.levels):  # labels alternate right and left
            py = frame.y(y)
            x, anchor = (WIDTH - RIGHT - 4, "end") if i % 2 else (LEFT + 4, "start")
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="{colour}" '
                       f'stroke-dasharray="6 3"/><text x="{x}" y="{py - 3:.1f}" '
                       f'text-anchor="{anchor}" fill="{colour}" font-size="10">{escape(label)}</text>')
        if self.expected:
            out.append(polyline(frame, thin(self.expected), EXPECTED, 'stroke-dasharray="4 3"', "expected"))
        for i, (name, pts) in enumerate(self.lines.items()):
            out.append(polyline(frame, thin(pts), PALETTE[i % len(PALETTE)], "", name))
        for t, v, label in self.flagged:
            out.append(f'<circle class="flag" cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="4.5" fill="{FLAG}">'
                       f'<title>{escape(label)}</title></circle>')
        out.append(self.legend())
        out.append("</svg>")
        return "".join(out)


    def legend(self) -> str:
        """Top right, right to left: what each mark means."""
        entries = [(f'<line x1="0" x2="14" y1="0" y2="0" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="2"/>',
                    name) for i, name in enumerate(self.lines)]
        if self.expected:
            entries.append((f'<line x1="0" x2="14" y1="0" y2="0" stroke="{EXPECTED}" stroke-dasharray="4 3"/>',
                            "expected"))
        if self.band:
            entries.append((f'<rect x="0" y="-4" width="14" height="8" fill="{BAND}" opacity="0.45"/>', "expected band"))
        if self.flagged:
            entries.append((f'<circle cx="7" cy="0" r="4" fill="{FLAG}"/>', "flagged"))
        if self.spans:
            entries.append((f'<rect x="0" y="-4" width="14" height="8" fill="{SHADE}"/>', "incident"))
        out, x = [], WIDTH - RIGHT - 8
        for mark, name in reversed(entries):
            x -= 22 + 6 * len(name)
            out.append(f'<g transform="translate({x} {TOP + 10})">{mark}<text x="18" y="3.5" font-size="10" '
                       f'fill="{INK}">{escape(name.replace("_", " "))}</text></g>')
        return f'<g class="legend">{"".join(out)}</g>'


@dataclass
class Dots:
    """A scatter on a time axis: one dot per measured thing, its area by `size`."""

    title: str
    y_label: str
    dots: list[tuple[datetime, float, float, str, str]] = field(default_factory=list)  # t, y, size, colour, tooltip
    zero_line: bool = True
    height: int = HEIGHT
    legend: list[tuple[str, str]] = field(default_factory=list)  # (name, colour)

    @property
    def count(self) -> int:
        return len(self.dots)

    def svg(self) -> str:
        height = self.height
        if not self.dots:
            return ""
        times = [d[0] for d in self.dots]
        t0, t1 = min(times) - timedelta(hours=6), max(times) + timedelta(hours=6)
        ys = [d[1] for d in self.dots]
        step = nice_top((max(max(ys), 0.0) - min(min(ys), 0.0)) * 1.1 / 5 or 1.0)
        low, high = math.floor(min(min(ys), 0.0) * 1.1 / step) * step, math.ceil(max(max(ys), 0.0) * 1.1 / step) * step
        frame = Frame(t0, t1, low, high or step, height)
        biggest = max(abs(d[2]) for d in self.dots) or 1.0
        out = [frame.open(self.title, self.count), frame.axes(self.y_label)]
        if self.zero_line and low < 0:
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{frame.y(0):.1f}" y2="{frame.y(0):.1f}" '
                       f'stroke="{INK}"/>')
        for t, y, size, colour, tip in sorted(self.dots, key=lambda d: -abs(d[2])):  # small ones on top
            r = 3 + 17 * math.sqrt(abs(size) / biggest)
            out.append(f'<circle class="dot" cx="{frame.x(t):.1f}" cy="{frame.y(y):.1f}" r="{r:.1f}" '
                       f'fill="{colour}" fill-opacity="0.6" stroke="{colour}"><title>{escape(tip)}</title></circle>')
        x = WIDTH - RIGHT - 8
        for name, colour in reversed(self.legend):
            x -= 22 + 6 * len(name)
            out.append(f'<g class="legend" transform="translate({x} {TOP + 10})"><circle cx="7" cy="0" r="4" '
                       f'fill="{colour}" fill-opacity="0.6" stroke="{colour}"/><text x="18" y="3.5" font-size="10" '
                       f'fill="{INK}">{escape(name)}</text></g>')
        out.append("</svg>")
        return "".join(out)


class Frame:
    """Scales from (time, value) to SVG pixels, and the axes with their ticks."""

    def __init__(self, t0: datetime, t1: datetime, low: float, high: float, height: int) -> None:
        self.t0, self.t1, self.low, self.high, self.height = t0, t1, low, max(high, low + 1e-9), height
        self.plot_w = WIDTH - LEFT - RIGHT
        self.plot_h = height - TOP - BOTTOM

    def x(self, t: datetime) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * self.plot_w

    def y(self, v: float) -> float:
        return TOP + (1 - (v - self.low) / (self.high - self.low)) * self.plot_h

    def open(self, title: str, count: int) -> str:
        return (f'<svg class="chart" viewBox="0 0 {WIDTH} {self.height}" '
                f'role="img" aria-label="{escape(title)}" data-points="{count}" font-family="sans-serif">'
                f"<title>{escape(title)}</title>")

    def axes(self, y_label: str) -> str:
        out = []
        for v in ticks(self.low, self.high):
            py = self.y(v)
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="{GRID}"/>'
                       f'<text x="{LEFT - 6}" y="{py + 3:.1f}" text-anchor="end" font-size="10" fill="{INK}">'
                       f"{v:g}</text>")
        span = self.t1 - self.t0
        step = time_step(span)
        t = first_tick(self.t0, step)
        fmt = "%H:%M" if step < timedelta(days=1) else "%b %d"
        while t <= self.t1:
            px = self.x(t)
            label = t.strftime("%b %d %H:%M" if fmt == "%H:%M" and t.hour == 0 and t.minute == 0 else fmt)
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{TOP + self.plot_h:.1f}" stroke="{GRID}"/>'
                       f'<text x="{px:.1f}" y="{self.height - 10}" text-anchor="middle" font-size="10" '
                       f'fill="{INK}">{label}</text>')
            t += step
        bottom = TOP + self.plot_h
        out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom:.1f}" stroke="{INK}"/>'
                   f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom:.1f}" y2="{bottom:.1f}" stroke="{INK}"/>'
                   f'<text transform="translate(12 {TOP + self.plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
                   f'font-size="10" fill="{INK}">{escape(y_label)}</text>')
        return "".join(out)


def polyline(frame: Frame, points: Sequence[Point], colour: str, extra: str, name: str) -> str:
    xy = [(frame.x(t), frame.y(v)) for t, v in points]
    return (f'<polyline class="series" data-series="{escape(name)}" points="{coords(xy)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5" {extra}><title>{escape(name)}</title></polyline>')


def coords(points: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> Sequence[Point]:
    """At most `limit` points: consecutive groups, each kept as its highest point."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / limit)
    return [max(points[i:i + size], key=lambda p: p[1]) for i in range(0, len(points), size)]


def nice_top(value: float) -> float:
    """The axis end above `value`: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = nice_top((high - low) / count)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


STEPS = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 180, 360, 720)] + \
        [timedelta(days=d) for d in (1, 2, 7, 14, 28)]


def time_step(span: timedelta, count: int = 8) -> timedelta:
    return next((s for s in STEPS if span / s <= count), STEPS[-1])


def first_tick(t0: datetime, step: timedelta) -> datetime:
    """The first multiple of `step` (from midnight, or from a Monday for weeks) at or after t0."""
    base = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    if step >= timedelta(days=7):
        base -= timedelta(days=base.weekday())
    t = base
    while t < t0:
        t += step
    return t
