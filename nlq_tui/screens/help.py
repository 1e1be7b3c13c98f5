"""`?`: every key of the app, the current screen's first, read from the bindings themselves."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from nlq_tui.bindings import (
    GLOBAL_BINDINGS,
    GROUP_BINDINGS,
    HELP_BINDINGS,
    SCREEN_HELP,
    SCREEN_ORDER,
    SCREEN_TITLES,
    TABLE_BINDINGS,
)
from nlq_tui.registry import screen_bindings
from nlq_tui.safe_text import plain_text


def _bindings_of(name: str) -> list[Binding] | None:
    """The BINDINGS of screen `name`, or None when its module fails to import."""
    try:
        return screen_bindings(name)
    except Exception:  # a broken screen module: the help must still open (the app reports it)
        return None


class HelpScreen(ModalScreen[None]):
    """All keys, grouped by where they work."""

    BINDINGS = HELP_BINDINGS

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("[b]nlq-tui keys[/]  [dim]esc: close · ctrl+p: command palette (every action by name)[/]")
            with VerticalScroll():
                yield Static(self._table(), id="help-table")

    def _keys(self, b: Binding) -> str:
        keys = self.app._keymap.get(b.id, b.key) if b.id else b.key  # noqa: SLF001 - remapped keys
        shown = []
        for key in keys.split(","):
            key = key.strip()
            if b.key_display and key == b.key.split(",")[0]:
                shown.append(b.key_display)
            else:
                shown.append(self.app.get_key_display(Binding(key, b.action)))
        return " ".join(shown)

    def _section(self, parts: list, title: str, bindings: list[Binding] | None) -> None:
        parts.append(Text(title, style="bold underline"))
        if bindings is None:
            parts.append(Text("  this screen failed to load", style="dim"))
        else:
            grid = Table.grid(padding=(0, 2), expand=True)
            grid.add_column(width=14, justify="right", style="bold", no_wrap=True)
            grid.add_column(ratio=1)
            for b in bindings:
                if b.description:
                    grid.add_row(plain_text(self._keys(b)), plain_text(b.tooltip or b.description))
            parts.append(grid)
        parts.append(Text(""))

    def _table(self) -> Group:
        parts: list = []
        self._section(parts, "Everywhere", GLOBAL_BINDINGS)
        current = getattr(self.app, "current_mode", None)
        for n in sorted(SCREEN_ORDER, key=lambda n: n != current):
            title = f"{SCREEN_ORDER.index(n) + 1} {SCREEN_TITLES[n]}: {SCREEN_HELP[n]}"
            self._section(parts, title, _bindings_of(n))
        self._section(parts, "Tables", TABLE_BINDINGS)
        self._section(parts, "Group view (Lab)", GROUP_BINDINGS)
        return Group(*parts)

    def action_dismiss(self) -> None:
        self.dismiss(None)
