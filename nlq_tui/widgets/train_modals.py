"""The Train screen's dialogs: a yes/no confirmation (stop, delete) and the run folder's path."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from engine.textsafe import one_line, visible
from nlq_tui.bindings import TRAIN_CONFIRM_BINDINGS, TRAIN_FOLDER_BINDINGS


class TrainConfirm(ModalScreen[bool]):
    """`y` confirms, `n` or Escape goes back without doing anything."""

    BINDINGS = TRAIN_CONFIRM_BINDINGS

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="train-confirm-box"):
            # the question names a run and the detail its path: plain text, never markup
            yield Static(Text(one_line(self.question, 300), style="bold"), id="train-confirm-question")
            if self.detail:
                yield Static(Text(visible(self.detail, 2000), style="dim"), id="train-confirm-detail")
            yield Static(Text.assemble(("y", "bold"), " yes    ", ("n", "bold"), " / Esc no"), id="train-confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RunFolderScreen(ModalScreen[None]):
    """The run folder's path, selectable, with what is in it (it was also put on the clipboard)."""

    BINDINGS = TRAIN_FOLDER_BINDINGS

    def __init__(self, path: str, entries: list[str]) -> None:
        super().__init__()
        self.path = path
        self.entries = entries

    def compose(self) -> ComposeResult:
        with Vertical(id="train-folder-box"):
            yield Static(Text.assemble(("Run folder", "bold"), " ", ("(copied to the clipboard)", "dim")))
            yield Static(Text(visible(self.path, 2000)), id="train-folder-path")
            listing = "  ".join(one_line(e, 200) for e in self.entries[:200]) or "(empty)"
            yield Static(Text(listing, style="dim"), id="train-folder-list")
            yield Static(Text("Esc: close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
