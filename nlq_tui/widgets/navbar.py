"""The one-line screen switcher at the top of every screen: `1 Data  2 Lab  ...` and the data."""

from __future__ import annotations

import importlib.util

from rich.markup import escape
from textual.widget import Widget

from nlq_tui.bindings import SCREEN_ORDER, SCREEN_TITLES


def _installed(name: str) -> bool:
    from nlq_tui.app import SCREENS

    module = SCREENS[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


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

    def render(self) -> str:
        app = self.app
        current = getattr(app, "current_mode", "")
        parts = []
        for n, name in enumerate(SCREEN_ORDER, start=1):
            label = f" {n} {SCREEN_TITLES[name]} "
            if name == current:
                parts.append(f"[reverse b]{label}[/]")
            elif _installed(name):
                parts.append(f"[@click=app.show_screen('{name}')]{label}[/]")
            else:
                parts.append(f"[dim]{label}[/]")
        ctx = getattr(app, "ctx", None)
        status = ""
        if ctx is not None:
            if ctx.index is not None and ctx.data_root is not None:
                status = f"{escape(ctx.data_root.name)} · {escape(ctx.features)} · {ctx.index.n_videos:,} videos"
            elif ctx.data_root is not None:
                status = f"{escape(ctx.data_root.name)} · not loaded"
            else:
                status = "no data"
        return "".join(parts) + f"  [dim]{status}[/]"
