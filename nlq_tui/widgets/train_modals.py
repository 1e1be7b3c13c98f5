"""The Train screen's dialogs: a yes/no confirmation (stop, delete) and the run folder's path."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class TrainConfirm(ModalScreen[bool]):
    """`y` confirms, `n` or Escape goes back without doing anything."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="train.confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="train.confirm.no"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="train-confirm-box"):
            yield Static(f"[b]{escape(self.question)}[/b]", id="train-confirm-question")
            if self.detail:
                yield Static(f"[dim]{escape(self.detail)}[/dim]", id="train-confirm-detail")
            yield Static("[b]y[/b] yes    [b]n[/b] / Esc no", id="train-confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class RunFolderScreen(ModalScreen[None]):
    """The run folder's path, selectable, with what is in it (it was also put on the clipboard)."""

    BINDINGS = [Binding("escape,enter,q,o", "close", "Close", id="train.folder.close")]

    def __init__(self, path: str, entries: list[str]) -> None:
        super().__init__()
        self.path = path
        self.entries = entries

    def compose(self) -> ComposeResult:
        with Vertical(id="train-folder-box"):
            yield Static("[b]Run folder[/b] [dim](copied to the clipboard)[/dim]")
            yield Static(escape(self.path), id="train-folder-path")
            listing = "  ".join(escape(e) for e in self.entries) or "(empty)"
            yield Static(f"[dim]{listing}[/dim]", id="train-folder-list")
            yield Static("[dim]Esc: close[/dim]")

    def action_close(self) -> None:
        self.dismiss(None)
