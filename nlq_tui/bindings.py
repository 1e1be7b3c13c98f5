"""Keys as data: every key binding of the app, its screens and their modals.

Each binding has a stable `id` ("<screen>.<action>") so that a user can remap it: the "keymap"
table of the user config or the workspace setting ({binding id: "key[,key...]"}) is applied
with `App.set_keymap` at start-up. Every screen and modal takes its BINDINGS from here.
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
    "generate": "questions for each group of narrations, from an LLM or the built-in templates",
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

HELP_BINDINGS: list[Binding] = [
    Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    # A modal screen hides the app's keys; the screen keys go on working from here.
    *(Binding(str(n), f"app.show_screen('{name}')", show=False) for n, name in enumerate(SCREEN_ORDER, start=1)),
]

# Review screen
REVIEW_BINDINGS: list[Binding] = [
    Binding("a", "accept", "Accept", id="review.accept", tooltip="Accept this question"),
    Binding(
        "x", "reject", "Reject", id="review.reject", tooltip="Reject it; then 1-9 picks the reason, Enter the default"
    ),
    Binding("space", "skip", "Skip", id="review.skip", tooltip="Leave it for later and show the next"),
    Binding("e", "edit", "Edit", id="review.edit", tooltip="Edit the question in place; saving also accepts it"),
    Binding(
        "u,backspace",
        "undo",
        "Undo",
        id="review.undo",
        tooltip="Undo the last decision (many levels; one bulk step at a time)",
    ),
    Binding("f", "flag", "Flag", id="review.flag", tooltip="Flag it for a later look"),
    Binding("slash", "filter(True)", "Search", key_display="/", id="review.search", tooltip="Search the question text"),
    Binding(
        "ctrl+f",
        "filter(False)",
        "Filters",
        id="review.filters",
        tooltip="Filter by status, model, prompt, flags, template, video",
    ),
    Binding(
        "b",
        "bulk",
        "Bulk",
        id="review.bulk",
        tooltip="Accept or reject every candidate matching a rule, after a preview",
    ),
    Binding(
        "tab", "recent", "Recent", show=False, id="review.recent", tooltip="Go to the last ten decisions to change one"
    ),
    Binding(
        "r",
        "refresh",
        "Refresh",
        show=False,
        id="review.refresh",
        tooltip="Pick up candidates generated since the queue was built",
    ),
    Binding(
        "ctrl+e",
        "export",
        "Export",
        id="review.export",
        tooltip="Write the accepted and edited questions to an NLQ file",
    ),
]


def reject_reason_bindings(reasons) -> list[Binding]:
    """The reject-reason modal's keys: `1`-`9` for the reasons (key, text) in order, Enter, Escape."""
    return [
        *(
            Binding(str(i + 1), f"pick({i})", key, show=False, id=f"review.reason.{key}")
            for i, (key, _) in enumerate(reasons)
        ),
        Binding("enter", "pick_default", "Default reason", id="review.reason.default"),
        Binding("escape", "dismiss_none", "Cancel", id="review.reason.cancel"),
    ]


REVIEW_CONFIRM_BINDINGS: list[Binding] = [
    Binding("y,enter", "answer(True)", "Yes", id="review.confirm.yes"),
    Binding("n,escape", "answer(False)", "No", id="review.confirm.no"),
]

REVIEW_FILTER_BINDINGS: list[Binding] = [
    Binding("escape", "dismiss_none", "Cancel", id="review.filter.cancel"),
    Binding("ctrl+r", "clear", "Clear all", id="review.filter.clear"),
]

REVIEW_BULK_BINDINGS: list[Binding] = [Binding("escape", "dismiss_none", "Cancel", id="review.bulk.cancel")]

REVIEW_EXPORT_BINDINGS: list[Binding] = [Binding("escape", "dismiss_none", "Cancel", id="review.export.cancel")]


# Generate screen
GENERATE_BINDINGS: list[Binding] = [
    Binding(
        "f2",
        "dry_run",
        "Dry run",
        id="generate.dry_run",
        tooltip="Send one group; show the raw answer and its validation",
    ),
    Binding(
        "f5",
        "start",
        "Start",
        id="generate.start",
        tooltip="Generate for the selected groups (resumes: done groups are skipped)",
    ),
    Binding("f6", "pause", "Pause/resume", id="generate.pause", tooltip="Pause or resume the running job"),
    Binding("f8", "cancel", "Cancel", id="generate.cancel", tooltip="Stop the running job; done groups stay stored"),
    Binding(
        "ctrl+s", "save_prompt", "Save prompt", id="generate.save_prompt", tooltip="Save the prompt as a new version"
    ),
    Binding("ctrl+g", "focus_group", "Group", id="generate.group", tooltip="Choose the group to preview and dry-run"),
    Binding(
        "ctrl+o",
        "reset_prompt",
        "Default prompt",
        id="generate.reset_prompt",
        tooltip="Put the default prompt in the editor",
    ),
    Binding("f3", "show_variants", "Variants", id="generate.variants", tooltip="Variants side by side; compare two"),
    Binding(
        "escape",
        "leave_input",
        "Done",
        show=False,
        id="generate.leave_input",
        tooltip="Leave the text field (keys 1-5 switch screens again)",
    ),
]

GENERATE_START_BINDINGS: list[Binding] = [
    Binding("enter,s", "choose('here')", "Start here", id="generate.start.here"),
    Binding("d", "choose('detach')", "Detach", id="generate.start.detach"),
    Binding("escape,n", "choose(None)", "Cancel", id="generate.start.cancel"),
]

GENERATE_QUIT_BINDINGS: list[Binding] = [
    Binding("y,enter", "answer(True)", "Quit", id="generate.quit.yes"),
    Binding("n,escape", "answer(False)", "Stay", id="generate.quit.no"),
]


# Data screen's folder picker
DATA_PICKER_BINDINGS: list[Binding] = [
    Binding("escape", "dismiss_none", "Cancel", id="data.picker.cancel"),
    Binding("backspace", "up", "Parent folder", id="data.picker.up", tooltip="Browse the folder above this one"),
]


# Train screen
TRAIN_BINDINGS: list[Binding] = [
    Binding("n", "show_tab('new')", "New run", id="train.new", tooltip="Presets and the short form for a new run"),
    Binding(
        "f5",
        "launch",
        "Launch",
        id="train.launch",
        tooltip="Start the run in the form, detached (as `nlq-tui train --detach`)",
    ),
    Binding(
        "s", "stop", "Stop", id="train.stop", tooltip="SIGTERM the selected run: it saves last.pt and ends stopped"
    ),
    Binding(
        "r",
        "resume",
        "Resume",
        id="train.resume",
        tooltip="Continue the selected stopped or failed run from its last.pt",
    ),
    Binding(
        "o",
        "folder",
        "Folder",
        id="train.folder",
        tooltip="Show the selected run's folder path and copy it to the clipboard",
    ),
    Binding("x", "delete", "Delete", id="train.delete", tooltip="Delete the selected run's folder (not while it runs)"),
    Binding("p", "pick", "Pick", id="train.pick", tooltip="Add the selected run to the comparison, or take it out"),
    Binding(
        "c",
        "show_tab('compare')",
        "Compare",
        id="train.compare",
        tooltip="Overlay the picked runs' loss and val R1 and their best figures",
    ),
    Binding(
        "e",
        "experiment",
        "Experiment",
        id="train.experiment",
        tooltip="Start an experiment (baseline vs pretrain -> finetune over seeds) and show its table",
    ),
    Binding(
        "E",
        "show_tab('experiment')",
        "Experiments",
        id="train.experiments",
        tooltip="The experiments' tables, updated as their runs finish",
        show=False,
    ),
    Binding(
        "v,escape",
        "show_tab('runs')",
        "Runs",
        id="train.runs",
        tooltip="The runs list and the selected run",
        show=False,
    ),
    # shown in the run's header line instead of the footer, which is full at 80 columns
    Binding(
        "left_square_bracket",
        "smoothing(-1)",
        "Less smoothing",
        key_display="[",
        id="train.smooth_less",
        show=False,
        tooltip="Less loss smoothing",
    ),
    Binding(
        "right_square_bracket",
        "smoothing(1)",
        "More smoothing",
        key_display="]",
        id="train.smooth_more",
        show=False,
        tooltip="More loss smoothing",
    ),
]


# Train screen's dialogs
TRAIN_CONFIRM_BINDINGS: list[Binding] = [
    Binding("y", "answer(True)", "Yes", id="train.confirm.yes"),
    Binding("n,escape", "answer(False)", "No", id="train.confirm.no"),
]
TRAIN_FOLDER_BINDINGS: list[Binding] = [Binding("escape,enter,q,o", "close", "Close", id="train.folder.close")]
TRAIN_EXPERIMENT_BINDINGS: list[Binding] = [
    Binding("escape", "cancel", "Cancel", id="train.experiment.cancel"),
    Binding("ctrl+s", "start", "Start", id="train.experiment.start", tooltip="Start the experiment"),
]


# Each screen's own keys, for the command palette's actions of the screens not shown (the
# shown one's come from its active bindings, focused widgets' included).
SCREEN_BINDINGS: dict[str, list[Binding]] = {
    "data": DATA_BINDINGS,
    "lab": LAB_BINDINGS,
    "generate": GENERATE_BINDINGS,
    "review": REVIEW_BINDINGS,
    "train": TRAIN_BINDINGS,
}
