"""The Train screen's New run tab: a preset and the short form of `nlq-tui train`'s settings
(docs/ARCHITECTURE.md, "Runs").

`read()` turns the fields into the settings `engine.run_config.start_run` takes (blank: not
set, as an absent flag) or the first problem as one line naming the field. The form starts
nothing itself: the Launch button posts `NewRunPane.Launch`, the screen starts the run.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, TabPane

from engine.textsafe import one_line
from nlq_tui.widgets.train_view import short_id

PRESETS = [
    ("Baseline: the official train split", "baseline"),
    ("Pretrain: an exported file", "pretrain"),
    ("Finetune: from a pretrain run", "finetune"),
]
# (setting, label, type, the baseline's placeholder, a finetune's)
NUMBERS = (
    ("epochs", "epochs", int, "10", "the pretrain run's"),
    ("lr", "lr", float, "1e-4", "half the pretrain run's"),
    ("batch_size", "batch size", int, "32", "the pretrain run's"),
)


def read_overrides(values: dict[str, str]) -> dict | str:
    """epochs, lr and batch_size from the form's text fields (blank: not set), or the first
    problem as one line naming the field."""
    out: dict[str, Any] = {}
    for key, label, kind, _base, _ft in NUMBERS:
        text = values.get(key, "").strip()
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            return f"{label}: {text!r} is not a {'whole ' if kind is int else ''}number"
        if value != value or (kind is int and value < (0 if key == "epochs" else 1)) or (kind is float and value <= 0):
            return f"{label}: {text} is out of range"
        out[key] = value
    return out


def _value(select: Select) -> str | None:
    return None if select.is_blank() else str(select.value)


class NewRunPane(TabPane):
    """The preset, the fields, and the Launch button with the launch message beside it."""

    class Launch(Message):
        """The Launch button was pressed (F5 goes through the screen's action)."""

    def __init__(self, features_placeholder: str = "") -> None:
        super().__init__("New run", id="new-pane")
        self.stage = Select(PRESETS, value="baseline", allow_blank=False, id="f-stage", compact=True)
        self.train_file = Input(id="f-train-file", compact=True, placeholder="official nlq_train.json")
        self.from_run = Select([], prompt="a pretrain run with a checkpoint", id="f-from", compact=True)
        self.numbers = {
            "epochs": Input(id="f-epochs", compact=True, type="integer", placeholder="10"),
            "lr": Input(id="f-lr", compact=True, placeholder="1e-4"),
            "batch_size": Input(id="f-batch", compact=True, type="integer", placeholder="32"),
        }
        self.dim = Input(id="f-dim", compact=True, type="integer", placeholder="128")
        self.text_encoder = Select(
            [(n, n) for n in ("minilm", "bert", "glove")], prompt="default (minilm)", id="f-text", compact=True
        )
        self.text_path = Input(id="f-text-path", compact=True, placeholder="glove: vectors .txt; bert: model folder")
        self.features = Input(id="f-features", compact=True, placeholder=features_placeholder)
        self.device = Select(
            [(n, n) for n in ("auto", "cpu", "cuda")],
            prompt="default (auto; finetune: its run's)",
            id="f-device",
            compact=True,
        )
        self.launch_button = Button("Launch (F5)", id="f-launch", variant="primary", compact=True)
        self.message = Static("", id="launch-msg")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-scroll"):
            with Grid(id="form"):
                for label, widget in (
                    ("preset", self.stage),
                    ("train file", self.train_file),
                    ("from run", self.from_run),
                    ("epochs", self.numbers["epochs"]),
                    ("lr", self.numbers["lr"]),
                    ("batch size", self.numbers["batch_size"]),
                    ("width (dim)", self.dim),
                    ("text encoder", self.text_encoder),
                    ("text path", self.text_path),
                    ("features", self.features),
                    ("device", self.device),
                ):
                    yield Label(label)
                    yield widget
            with Horizontal(id="form-actions"):
                yield self.launch_button
                yield self.message

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button is self.launch_button:
            event.stop()
            self.post_message(self.Launch())

    # what the screen tells the form ----------------------------------------------------------------
    def say(self, text: str, style: str = "") -> None:
        """One line beside the Launch button (plain text: it may quote a path or a run id)."""
        self.message.update(Text(one_line(text, 400), style=style))

    def show_stage(self, stage: str, latest_export: str | None) -> None:
        """Enable the fields the preset uses; placeholders say what a blank field means."""
        self.train_file.disabled = stage == "finetune"
        self.from_run.disabled = stage != "finetune"
        if stage == "pretrain":
            self.train_file.placeholder = (
                f"latest export: {one_line(latest_export, 80)}"
                if latest_export
                else "no export yet: give an NLQ-format file"
            )
        elif stage == "baseline":
            self.train_file.placeholder = "official nlq_train.json"
        else:
            self.train_file.placeholder = "the official train split"
        for key, _label, _kind, base, ft in NUMBERS:
            self.numbers[key].placeholder = ft if stage == "finetune" else base

    def set_from_options(self, summaries: list[dict]) -> None:
        """The finetune's choices: runs that have a checkpoint, pretrain runs first."""
        options = []
        for s in sorted(summaries, key=lambda s: s.get("stage") != "pretrain"):
            if s.get("has_checkpoint"):
                best = s.get("best_R1@0.3")
                shown = f"{best:.2f}" if isinstance(best, (int, float)) else "—"
                # a Text prompt: a str one would be parsed as markup
                options.append((Text(one_line(f"{short_id(s['id'])} {s['stage']} R1@0.3 {shown}", 80)), s["id"]))
        current = self.from_run.value
        self.from_run.set_options(options)
        if current in {v for _, v in options}:
            self.from_run.value = current

    # what the form asks for -------------------------------------------------------------------------
    def read(self) -> dict | str:
        """The settings of `engine.run_config.start_run` (blank: not set, as an absent
        `nlq-tui train` flag), or the first problem as one line naming the field."""
        stage = str(self.stage.value)
        numbers = read_overrides({k: w.value for k, w in self.numbers.items()})
        if isinstance(numbers, str):
            return numbers
        settings: dict[str, Any] = {"stage": stage, **numbers}
        dim_text = self.dim.value.strip()
        if dim_text:
            try:
                settings["dim"] = int(dim_text)
            except ValueError:
                return f"width: {dim_text!r} is not a whole number"
        settings["text_encoder"] = _value(self.text_encoder)
        settings["text_path"] = self.text_path.value.strip() or None
        settings["device"] = _value(self.device)
        settings["features"] = self.features.value.strip() or None
        settings["from_run"] = None
        if stage == "finetune":
            settings["from_run"] = _value(self.from_run)
            if settings["from_run"] is None:
                return "from run: choose the pretrain run to start from"
        settings["train_file"] = (self.train_file.value.strip() or None) if stage != "finetune" else None
        return settings
