"""Windows drawn on a clip: where in the parent clip a group's narrations and windows lie.

A group spans seconds of a clip that lasts minutes, so the widget draws two scales:

    clip ───────────────[█]──────────────────────────── 0s … 480s    the whole clip, group marked
         12.3s                                    24.8s    the group's span, zoomed
      1  ├───●───┤
      2        ├───●───┤
      3  !              ├─●─┤                               a mark with a problem, in its style

Use it anywhere a window must be seen against its clip (the Lab's group view, the review
queue): `ClipTimeline().set_clip(start, end, marks)` with `TimelineMark`s. Times are in the
same unit as the clip bounds (seconds of the video); labels are shown relative to `origin`
(default: the clip start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True)
class TimelineMark:
    """One window [start, end] with its narration time `t`, drawn on its own row."""

    start: float
    end: float
    t: float | None = None
    label: str = ""
    style: str = ""  # Rich style of the bar, e.g. "red" for a window with a problem
    flag: str = ""  # one character shown before the bar (e.g. "!" for not usable)


def _fmt_time(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s >= 60:
        m, sec = divmod(s, 60)
        return f"{sign}{int(m)}:{sec:04.1f}"
    return f"{sign}{s:.1f}s"


class ClipTimeline(Widget):
    """A clip's time axis with windows drawn on it, zoomed on the windows' span."""

    DEFAULT_CSS = """
    ClipTimeline { height: auto; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.clip_start = 0.0
        self.clip_end = 0.0
        self.origin = 0.0
        self.marks: list[TimelineMark] = []
        self.span: tuple[float, float] | None = None

    def set_clip(
        self,
        clip_start: float,
        clip_end: float,
        marks: Sequence[TimelineMark],
        *,
        origin: float | None = None,
        padding: float = 0.05,
    ) -> None:
        """Draw `marks` on the clip [clip_start, clip_end]; zoom on their span plus `padding` (fraction)."""
        rows = len(self.marks)
        self.clip_start = float(clip_start)
        self.clip_end = float(clip_end)
        self.origin = float(clip_start if origin is None else origin)
        self.marks = list(marks)
        if self.marks:
            lo = min(min(m.start, m.t if m.t is not None else m.start) for m in self.marks)
            hi = max(max(m.end, m.t if m.t is not None else m.end) for m in self.marks)
            pad = max((hi - lo) * padding, 0.5)
            self.span = (max(self.clip_start, lo - pad), min(self.clip_end, hi + pad))
            if self.span[1] <= self.span[0]:
                self.span = (lo - 0.5, hi + 0.5)
        else:
            self.span = None
        # The height follows the number of marks: a (whole-screen) layout pass only when it changes.
        self.refresh(layout=len(self.marks) != rows)

    def get_content_height(self, container, viewport, width: int) -> int:
        return 2 + len(self.marks) if self.marks else 1

    @staticmethod
    def _col(x: float, lo: float, hi: float, width: int) -> int:
        if hi <= lo:
            return 0
        return max(0, min(width - 1, int((x - lo) / (hi - lo) * (width - 1) + 0.5)))

    def render(self) -> Text:
        width = self.content_region.width
        gutter = 5
        bar_w = max(width - gutter, 10)
        text = Text(no_wrap=True, overflow="crop")
        if self.clip_end <= self.clip_start:
            return Text("no clip", style="dim")
        # Overview: the whole clip, the group's span as a block.
        lo_lbl = _fmt_time(self.clip_start - self.origin)
        hi_lbl = _fmt_time(self.clip_end - self.origin)
        ov_w = max(bar_w - len(lo_lbl) - len(hi_lbl) - 2, 5)
        line = ["─"] * ov_w
        if self.span is not None:
            a = self._col(self.span[0], self.clip_start, self.clip_end, ov_w)
            b = self._col(self.span[1], self.clip_start, self.clip_end, ov_w)
            for i in range(a, b + 1):
                line[i] = "█"
        text.append("clip ".ljust(gutter), style="dim")
        text.append(lo_lbl + " ", style="dim")
        text.append("".join(line), style="cyan")
        text.append(" " + hi_lbl, style="dim")
        if not self.marks or self.span is None:
            return text
        lo, hi = self.span
        # Zoomed axis labels.
        a_lbl, b_lbl = _fmt_time(lo - self.origin), _fmt_time(hi - self.origin)
        text.append("\n" + " " * gutter)
        text.append(a_lbl + " " * max(bar_w - len(a_lbl) - len(b_lbl), 1) + b_lbl, style="dim")
        for mark in self.marks:
            row = [" "] * bar_w
            a = self._col(mark.start, lo, hi, bar_w)
            b = self._col(mark.end, lo, hi, bar_w)
            if b > a:
                for i in range(a, b + 1):
                    row[i] = "─"
                row[a], row[b] = "├", "┤"
            else:
                row[a] = "│"  # a collapsed window is a single tick
            if mark.t is not None:
                row[self._col(mark.t, lo, hi, bar_w)] = "●"
            label = (mark.label[:3]).rjust(3) + " " + (mark.flag[:1] or " ")
            text.append("\n" + label.ljust(gutter), style="bold")
            text.append("".join(row), style=mark.style or "green")
        return text
