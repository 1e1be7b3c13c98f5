"""An Input that draws control characters in its value visibly (docs/ARCHITECTURE.md, "Trust").

Textual's Input hands its value to the terminal as it is; a path or a question holding ESC
would reach the terminal when it is shown for editing. SafeInput keeps the value unchanged (a
path with odd characters still loads) and only draws each unsafe character as one visible
one, so the cursor and selection still line up. The suggestion shown after the value (a
completion read from the disk) is drawn safely too.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widgets import Input

from engine.textsafe import visible_same_length


class SafeInput(Input):
    """`textual.widgets.Input` for values that come from outside (paths, uids, questions)."""

    @property
    def _value(self) -> Text:
        if self.password:
            return super()._value
        text = Text(visible_same_length(self.value), no_wrap=True, overflow="ignore", end="")
        if self.highlighter is not None:
            text = self.highlighter(text)
        return text

    def render_line(self, y: int) -> Strip:
        # The value is made safe in `_value`; a suggestion (a folder name from the disk) is drawn
        # by Input from `_suggestion` itself, so its segments are made safe here.
        strip = super().render_line(y)
        segments = list(strip)
        if not any(visible_same_length(seg.text) != seg.text for seg in segments):
            return strip
        safe = [Segment(visible_same_length(seg.text), seg.style, seg.control) for seg in segments]
        return Strip(safe).adjust_cell_length(strip.cell_length)
