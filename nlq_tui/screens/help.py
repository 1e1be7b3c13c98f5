"""`?`: every key of the app, the current screen's first, read from the bindings themselves."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from nlq_tui.bindings import GLOBAL_BINDINGS, GROUP_BINDINGS, SCREEN_HELP, SCREEN_ORDER, SCREEN_TITLES, TABLE_BINDINGS


def _bindings_of(name: str) -> list[Binding] | None:
    """The BINDINGS of screen `name`, or None when it is not installed."""
    from nlq_tui.app import ScreenNotInstalled, resolve_screen

    try:
        cls = resolve_screen(name)
    except ScreenNotInstalled:
        return None
    except Exception:  # a broken screen module: the help must still open
        return None
    out: list[Binding] = []
    for b in getattr(cls, "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple) and len(b) >= 2:
            out.append(Binding(*b))
    return out


class HelpScreen(ModalScreen[None]):
    """All keys, grouped by where they work."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

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

    def _section(self, table: Table, title: str, bindings: list[Binding]) -> None:
        table.add_row(f"[b u]{escape(title)}[/]", "")
        for b in bindings:
            if not b.description:
                continue
            table.add_row(escape(self._keys(b)), escape(b.tooltip or b.description))
        table.add_row("", "")

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(width=16, justify="right", style="bold")
        table.add_column(ratio=1)
        self._section(table, "Everywhere", GLOBAL_BINDINGS)
        current = getattr(self.app, "current_mode", None)
        order = sorted(SCREEN_ORDER, key=lambda n: n != current)
        for n in order:
            bindings = _bindings_of(n)
            title = f"{SCREEN_ORDER.index(n) + 1} {SCREEN_TITLES[n]}: {SCREEN_HELP[n]}"
            if bindings is None:
                table.add_row(f"[dim]{escape(title.split(':')[0])}[/]", "[dim]not installed in this build[/]")
                table.add_row("", "")
                continue
            self._section(table, title, bindings)
        self._section(table, "Tables", TABLE_BINDINGS)
        self._section(table, "Group view (Lab)", GROUP_BINDINGS)
        return table

    def action_dismiss(self) -> None:
        self.dismiss(None)
