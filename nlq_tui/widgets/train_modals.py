"""The Train screen's dialogs: a yes/no confirmation (stop, delete), the run folder's path, and
what an experiment compares."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.textsafe import one_line, visible
from nlq_tui.bindings import TRAIN_CONFIRM_BINDINGS, TRAIN_EXPERIMENT_BINDINGS, TRAIN_FOLDER_BINDINGS


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


class ExperimentDialog(ModalScreen[tuple[list[str], list[int]] | None]):
    """What an experiment compares: the pretraining files or variants, and the seeds. Enter
    starts it (as `nlq-tui experiment --pretrain ... --seeds ... --detach`), Esc goes back."""

    BINDINGS = TRAIN_EXPERIMENT_BINDINGS

    def __init__(self, pretrain: str = "", seeds: str = "1 2 3") -> None:
        super().__init__()
        self.pretrain = Input(pretrain, id="exp-pretrain", placeholder="an exported NLQ file or a variant name")
        self.seeds = Input(seeds, id="exp-seeds", placeholder="1 2 3")
        self.problem = Static("", id="exp-problem")

    def compose(self) -> ComposeResult:
        with Vertical(id="train-exp-box"):
            yield Static(Text("Start an experiment", style="bold"))
            yield Static(
                Text(
                    "Baseline vs pretrain -> finetune for each pretraining file, per seed; its runs show in the "
                    "runs list and its table on the Experiment tab. Rerunning reuses finished runs.",
                    style="dim",
                )
            )
            yield Label("pretraining files or variants (space between)")
            yield self.pretrain
            yield Label("seeds")
            yield self.seeds
            yield self.problem
            yield Static(Text.assemble(("Enter", "bold"), " start    ", ("Esc", "bold"), " cancel"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def action_start(self) -> None:
        specs = self.pretrain.value.split()
        try:
            seeds = [int(s) for s in self.seeds.value.replace(",", " ").split()]
        except ValueError:
            seeds = []
        if not specs:
            self.problem.update(Text("give at least one pretraining file or variant", style="red"))
            return
        if not seeds or len(set(seeds)) != len(seeds):
            self.problem.update(Text("seeds: one or more distinct whole numbers, e.g. 1 2 3", style="red"))
            return
        self.dismiss((specs, seeds))

    def action_cancel(self) -> None:
        self.dismiss(None)
