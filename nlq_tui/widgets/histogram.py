"""A small vertical-bar histogram drawn with block characters (eighths of a cell)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}"


def resample(counts: Sequence[int], width: int) -> list[int]:
    """Counts merged into at most `width` bins (adjacent bins summed)."""
    n = len(counts)
    if n <= width:
        return [int(c) for c in counts]
    out = [0] * width
    for i, c in enumerate(counts):
        out[i * width // n] += int(c)
    return out


class Histogram(Widget):
    """Bars of `counts` over bin `edges` (len(counts) + 1), with the range below the bars."""

    DEFAULT_CSS = """
    Histogram { height: 6; }
    """

    def __init__(
        self, *, unit: str = "s", name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.counts: list[int] = []
        self.edges: list[float] = []
        self.unit = unit

    def set_data(self, counts: Sequence[int], edges: Sequence[float]) -> None:
        self.counts = [int(c) for c in counts]
        self.edges = [float(e) for e in edges]
        self.refresh()

    def render(self) -> Text:
        width = max(self.content_region.width, 1)
        height = max(self.content_region.height - 1, 1)
        if not self.counts or sum(self.counts) == 0:
            return Text("no windows", style="dim")
        bins = resample(self.counts, width)
        bar_w = max(width // len(bins), 1)
        peak = max(bins) or 1
        levels = [round(c / peak * height * 8) for c in bins]
        lines = []
        for row in range(height, 0, -1):
            floor = (row - 1) * 8
            line = "".join(BLOCKS[max(0, min(8, lv - floor))] * bar_w for lv in levels)
            lines.append(line)
        lo, hi = _fmt(self.edges[0]), _fmt(self.edges[-1]) + self.unit
        span = len(bins) * bar_w
        axis = lo + " " * max(span - len(lo) - len(hi), 1) + hi
        text = Text("\n".join(lines), style="bold")
        text.append("\n" + axis, style="dim")
        return text
