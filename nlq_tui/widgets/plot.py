"""A line plot drawn with braille dots (2x4 per cell): loss curves, overlaid recall curves.

Each series is bucketed into the plot's dot columns first (min..max of the points that land in
a column, joined to the next column by a line), so drawing costs the same for 100 points or
100,000; a live loss curve can be redrawn twice a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

BRAILLE = 0x2800
# bit of the dot at (x % 2, y % 4) inside one cell, y counted from the top
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
LABEL_W = 7


@dataclass
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    style: str = ""
    legend: bool = True
    _finite: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def finite(self):
        """(x, y) arrays of the finite points, converted once per series."""
        if self._finite is None:
            self._finite = finite_points(self.xs, self.ys)
        return self._finite


@dataclass
class Canvas:
    """Braille dots on a grid of `cols` x `rows` cells; each cell keeps the style last drawn in it."""

    cols: int
    rows: int
    bits: list[list[int]] = field(init=False)
    owner: list[list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.bits = [[0] * self.cols for _ in range(self.rows)]
        self.owner = [[""] * self.cols for _ in range(self.rows)]

    @property
    def width(self) -> int:
        return self.cols * 2

    @property
    def height(self) -> int:
        return self.rows * 4

    def dot(self, x: int, y: int, style: str) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            r, c = y >> 2, x >> 1
            self.bits[r][c] |= DOT_BITS[x & 1][y & 3]
            self.owner[r][c] = style

    def vline(self, x: int, y0: int, y1: int, style: str) -> None:
        for y in range(min(y0, y1), max(y0, y1) + 1):
            self.dot(x, y, style)

    def line(self, x0: int, y0: int, x1: int, y1: int, style: str) -> None:
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, style)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text_rows(self, base_style: str = "") -> list[Text]:
        out = []
        for r in range(self.rows):
            t = Text()
            for c in range(self.cols):
                b = self.bits[r][c]
                t.append(chr(BRAILLE + b) if b else " ", self.owner[r][c] or base_style)
            out.append(t)
        return out


def finite_points(xs: Sequence[float], ys: Sequence[float]):
    """(x, y) float arrays of the points where both are finite."""
    import numpy as np

    n = min(len(xs), len(ys))
    x = np.fromiter(xs, dtype=np.float64, count=n) if not isinstance(xs, np.ndarray) else xs[:n].astype(np.float64)
    y = np.fromiter(ys, dtype=np.float64, count=n) if not isinstance(ys, np.ndarray) else ys[:n].astype(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def data_range(series: Sequence[Series], y_min: float | None = None) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) over every finite point; a flat range is widened so it maps to the middle."""
    lo_x = lo_y = float("inf")
    hi_x = hi_y = float("-inf")
    for s in series:
        x, y = s.finite()
        if len(x):
            lo_x, hi_x = min(lo_x, float(x.min())), max(hi_x, float(x.max()))
            lo_y, hi_y = min(lo_y, float(y.min())), max(hi_y, float(y.max()))
    if lo_x == float("inf"):
        return None
    x0, x1, y0, y1 = lo_x, hi_x, lo_y, hi_y
    if y_min is not None:
        y0 = min(y0, y_min)
    # a range within rounding error (one value, or a value and its own EMA) is a flat line
    if x1 - x0 <= 1e-9 * max(1.0, abs(x0)):
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 - y0 <= 1e-9 * max(1.0, abs(y0)):
        pad = abs(y0) * 0.1 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    return x0, x1, y0, y1


def draw_series(canvas: Canvas, s: Series, rng: tuple[float, float, float, float]) -> None:
    """Bucket the points into dot columns (first, min, max, last y of each), draw each column's
    span and join neighbouring columns: the cost is the canvas's, not the number of points."""
    import numpy as np

    x0, x1, y0, y1 = rng
    w, h = canvas.width, canvas.height
    x, y = s.finite()
    if not len(x):
        return
    px = np.clip(((x - x0) / (x1 - x0) * (w - 1) + 0.5).astype(np.int64), 0, w - 1)
    py = np.clip(((y1 - y) / (y1 - y0) * (h - 1) + 0.5).astype(np.int64), 0, h - 1)
    order = np.argsort(px, kind="stable")  # keeps the series' own order inside a column
    px, py = px[order], py[order]
    cols, starts = np.unique(px, return_index=True)
    ends = np.append(starts[1:], len(px)) - 1
    lo = np.minimum.reduceat(py, starts)
    hi = np.maximum.reduceat(py, starts)
    first, last = py[starts], py[ends]
    prev: tuple[int, int] | None = None
    for c, f, a, b, l in zip(cols.tolist(), first.tolist(), lo.tolist(), hi.tolist(), last.tolist()):
        if prev is not None:
            canvas.line(prev[0], prev[1], c, f, s.style)
        canvas.vline(c, a, b, s.style)
        prev = (c, l)


def fmt_tick(v: float) -> str:
    a = abs(v)
    if a >= 10000:
        return f"{v / 1000:.0f}k"
    if a >= 1000:
        return f"{v / 1000:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.2f}"
    return f"{v:.0e}"


def render_plot(
    series: Sequence[Series],
    width: int,
    height: int,
    *,
    y_min: float | None = None,
    empty: str = "no data yet",
    x_label: str = "",
) -> Text:
    """The plot as Text of `height` lines: y ticks on the left, x range and legend below."""
    width, height = max(width, 1), max(height, 1)
    rng = data_range(series, y_min)
    plot_cols = width - LABEL_W - 1
    plot_rows = height - 1
    if rng is None or plot_cols < 4 or plot_rows < 1:
        return Text(empty, style="dim")
    canvas = Canvas(plot_cols, plot_rows)
    for s in series:
        draw_series(canvas, s, rng)
    x0, x1, y0, y1 = rng
    rows = canvas.text_rows()
    out = Text()
    for r, row in enumerate(rows):
        if r == 0:
            label = fmt_tick(y1)
        elif r == plot_rows - 1:
            label = fmt_tick(y0)
        elif plot_rows >= 5 and r == (plot_rows - 1) // 2:
            label = fmt_tick((y0 + y1) / 2)
        else:
            label = ""
        out.append(label.rjust(LABEL_W)[:LABEL_W] + "┤" if label else " " * LABEL_W + "│", style="dim")
        out.append_text(row)
        out.append("\n")
    left, right = fmt_tick(x0), fmt_tick(x1) + (f" {x_label}" if x_label else "")
    legend = Text()
    for s in series:
        if s.legend and s.name:
            if legend.plain:
                legend.append("  ")
            legend.append("━ ", style=s.style)
            legend.append(s.name, style="dim")
    bottom = Text(" " * LABEL_W + "└" + left, style="dim")
    gap = plot_cols - len(left) - len(right)
    if legend.plain and gap >= len(legend.plain) + 2:
        pad = gap - len(legend.plain)
        bottom.append(" " * (pad // 2))
        bottom.append_text(legend)
        bottom.append(" " * (pad - pad // 2))
    else:
        bottom.append(" " * max(gap, 1))
    bottom.append(right, style="dim")
    out.append_text(bottom)
    return out


class LinePlot(Widget):
    """Series drawn as braille lines over a shared x (steps) and y range."""

    DEFAULT_CSS = """
    LinePlot { height: 8; }
    """

    def __init__(
        self,
        *,
        empty: str = "no data yet",
        y_min: float | None = None,
        x_label: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.series: list[Series] = []
        self.empty = empty
        self.y_min = y_min
        self.x_label = x_label

    def set_series(self, series: Sequence[Series], *, empty: str | None = None) -> None:
        self.series = list(series)
        if empty is not None:
            self.empty = empty
        self.refresh()

    def render(self) -> Text:
        region = self.content_region
        return render_plot(
            self.series, region.width, region.height, y_min=self.y_min, empty=self.empty, x_label=self.x_label
        )
