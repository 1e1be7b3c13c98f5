"""The app's screens by name, imported on first use (docs/ARCHITECTURE.md, "Packages and their rooms").

The registry lives apart from the app so that the help screen, the nav bar and the app can all
read it without importing each other. A screen module is imported only when the screen is first
shown (or its keys are listed), so start-up loads only the screen it opens on.
"""

from __future__ import annotations

import importlib

from textual.binding import Binding
from textual.screen import Screen

# name -> "module:Class", in navigation order (bindings.SCREEN_ORDER has the same names).
SCREENS: dict[str, str] = {
    "data": "nlq_tui.screens.data:DataScreen",
    "lab": "nlq_tui.screens.lab:LabScreen",
    "generate": "nlq_tui.screens.generate:GenerateScreen",
    "review": "nlq_tui.screens.review:ReviewScreen",
    "train": "nlq_tui.screens.train:TrainScreen",
}


def resolve_screen(name: str) -> type[Screen]:
    """The screen class registered as `name` (importing its module); errors propagate."""
    module_name, _, class_name = SCREENS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def screen_bindings(name: str) -> list[Binding]:
    """The key bindings of screen `name` as Binding objects (tuples converted)."""
    out: list[Binding] = []
    for b in getattr(resolve_screen(name), "BINDINGS", []):
        if isinstance(b, Binding):
            out.append(b)
        elif isinstance(b, tuple) and len(b) >= 2:
            out.append(Binding(*b))
    return out
