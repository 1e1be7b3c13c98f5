"""An Input that draws control characters in its value visibly (docs/ARCHITECTURE.md, "Trust").

Textual's Input hands its value to the terminal as it is; a path or a question holding ESC
would reach the terminal when it is shown for editing. SafeInput keeps the value unchanged (a
path with odd characters still loads) and only draws each unsafe character as one visible
one, so the cursor and selection still line up.
"""

from __future__ import annotations

from rich.text import Text
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
