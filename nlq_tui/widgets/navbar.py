"""The one-line screen switcher at the top of every screen: `1 Data  2 Lab  ...` and the data."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from nlq_tui.bindings import SCREEN_ORDER, SCREEN_TITLES
from nlq_tui.safe_text import visible


class NavBar(Widget):
    """Screens by number (the current one highlighted, clickable) and the loaded data root."""

    DEFAULT_CSS = """
    NavBar { height: 1; }
    """

    def on_mount(self) -> None:
        app = self.app
        app.mode_change_signal.subscribe(self, lambda _mode: self.refresh())
        signal = getattr(app, "index_signal", None)
        if signal is not None:
            signal.subscribe(self, lambda _msg: self.refresh())

    def render(self) -> Content:
        app = self.app
        current = getattr(app, "current_mode", "")
        parts = []
        for n, name in enumerate(SCREEN_ORDER, start=1):
            label = f" {n} {SCREEN_TITLES[name]} "
            if name == current:
                parts.append(f"[reverse b]{label}[/]")
            else:
                parts.append(f"[@click=app.show_screen('{name}')]{label}[/]")
        ctx = getattr(app, "ctx", None)
        status = ""
        if ctx is not None:
            if ctx.index is not None and ctx.data_root is not None:
                status = (
                    f"{visible(ctx.data_root.name, 80)} · {visible(ctx.features, 80)} · {ctx.index.n_videos:,} videos"
                )
            elif ctx.data_root is not None:
                status = f"{visible(ctx.data_root.name, 80)} · not loaded"
            else:
                status = "no data"
        # The screens are markup of ours; the root name and feature folder are data, never parsed.
        return Content.assemble(Content.from_markup("".join(parts)), "  ", Content.styled(status, "dim"))
