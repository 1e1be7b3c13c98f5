"""Keys as data: every key binding of the shell, the Data screen and the Lab screen.

Each binding has a stable `id` so that a user can remap it: the workspace setting "keymap"
({binding id: "key[,key...]"}) is applied with `App.set_keymap` at start-up.
Other screens keep their bindings next to their code but follow the same `id` scheme
("<screen>.<action>").
"""

from __future__ import annotations

from textual.binding import Binding

# The screens in navigation order: key "1" opens the first, and so on.
SCREEN_ORDER: tuple[str, ...] = ("data", "lab", "generate", "review", "train")

SCREEN_TITLES: dict[str, str] = {
    "data": "Data",
    "lab": "Lab",
    "generate": "Generate",
    "review": "Review",
    "train": "Train",
}

SCREEN_HELP: dict[str, str] = {
    "data": "choose the Ego4D root and feature folder, load and check it",
    "lab": "groups and windows, recomputed live as k, alpha, min window change",
    "generate": "ask an LLM for one question per narration of each group",
    "review": "accept, reject, edit the generated questions",
    "train": "train VSLNet and watch loss and recall",
}

GLOBAL_BINDINGS: list[Binding] = [
    *(
        Binding(str(n), f"show_screen('{name}')", SCREEN_TITLES[name], show=False, id=f"app.screen.{name}")
        for n, name in enumerate(SCREEN_ORDER, start=1)
    ),
    Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
    Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
]

DATA_BINDINGS: list[Binding] = [
    Binding("ctrl+l", "focus_root", "Root", id="data.focus_root", tooltip="Edit the data root path"),
    Binding("o", "browse", "Browse", id="data.browse", tooltip="Pick the data root from a folder tree"),
    Binding("ctrl+r", "reload", "Reload", id="data.reload", tooltip="Load the data root again"),
    Binding("f", "focus_features", "Features", id="data.focus_features", tooltip="Choose the feature folder"),
    Binding("i", "focus_issues", "Issues", id="data.focus_issues", tooltip="Go to the list of warnings and errors"),
    Binding(
        "escape",
        "leave_input",
        "Done",
        show=False,
        id="data.leave_input",
        tooltip="Leave the path input (keys 1-5 switch screens again)",
    ),
    Binding(
        "c",
        "full_check",
        "Full check",
        id="data.full_check",
        tooltip="Check every file, opening a sample of feature files",
    ),
]

LAB_BINDINGS: list[Binding] = [
    Binding("p", "focus_params", "Params", id="lab.focus_params", tooltip="Edit k, alpha, min window, pass"),
    Binding("u", "show_tab('usable')", "Usable", id="lab.usable", tooltip="Table of usable windows"),
    Binding("n", "show_tab('unusable')", "Not usable", id="lab.unusable", tooltip="Table of not-usable windows"),
    Binding("r", "focus_reason", "Reason", id="lab.reason", tooltip="Filter not-usable windows by reason"),
    Binding("v", "focus_video", "Video", id="lab.video", tooltip="Filter windows by video uid"),
    Binding("x", "defaults", "Defaults", id="lab.defaults", tooltip="Reset k, alpha, min window, pass"),
    Binding(
        "escape",
        "leave_input",
        "Done",
        show=False,
        id="lab.leave_input",
        tooltip="Leave the input (keys 1-5 switch screens again)",
    ),
]

GROUP_BINDINGS: list[Binding] = [
    Binding("escape,q", "dismiss", "Close", id="group.close"),
]

TABLE_BINDINGS: list[Binding] = [
    Binding("enter", "select_cursor", "Open", show=True, id="table.open"),
    Binding("up,k", "cursor_up", "Up", show=False, id="table.up"),
    Binding("down,j", "cursor_down", "Down", show=False, id="table.down"),
    Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
    Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down"),
    Binding("home,g", "first", "First", show=False, id="table.first"),
    Binding("end,G", "last", "Last", show=False, id="table.last"),
]
