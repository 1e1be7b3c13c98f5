"""The Train screen's New run tab: a preset and one field per training setting
(docs/ARCHITECTURE.md, "Training").

The fields come from the settings' declarations (`engine.training.config.settings()`: label,
help, choices, range, the stages each applies to, whether the schedule rule picks it), so the
form, the `nlq-tui train` flags and the settings table never disagree. The short form comes
first (what a user changes most), the other settings below it. A blank field is "not set", as
an absent flag: its placeholder says what the run then gets (the default, the pretrain run's
value for a finetune, or the schedule rule's choice for this training set, previewed).

`read()` returns the values `engine.run_config.start_run` takes, or the first problem as one line
naming the field. The form starts nothing: the Launch button posts `NewRunPane.Launch`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TabPane

from engine.errors import ConfigError
from engine.textsafe import one_line
from nlq_tui.widgets.train_view import short_id

PRESETS = [
    ("Baseline: the official train split", "baseline"),
    ("Pretrain: an exported file", "pretrain"),
    ("Finetune: from a pretrain run", "finetune"),
]
# the short form, in this order; every other setting follows in its declaration order
FIRST = ("train_file", "epochs", "lr", "batch_size", "dim", "text_encoder", "text_path", "features", "device")
SKIP = ("stage", "data_root")  # the preset, and the app's data root (the Data screen)
# ids the tests and the stylesheet know these fields by
IDS = {"batch_size": "f-batch", "text_encoder": "f-text"}
# a finetune keeps these from its pretrain run (engine.training.config INHERITED + the model shape)
FROM_PRETRAIN = "the pretrain run's"
MAX_NPROC = 64


def field_id(name: str) -> str:
    return IDS.get(name, "f-" + name.replace("_", "-"))


def _value(select: Select) -> str | None:
    return None if select.is_blank() else str(select.value)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value not in (None, "") else "none"


class SettingField:
    """One setting's widget (an Input, or a Select for choices and switches) and its parsing."""

    def __init__(self, info: Any) -> None:
        self.info = info
        self.name: str = info.name
        s = info.setting
        tip = s.help + (f" ({info.describe_range()})" if info.describe_range() else "") + f"  [{info.flag}]"
        self.widget: Input | Select
        if s.choices or info.type is bool:
            options = [(str(c), str(c)) for c in s.choices] if s.choices else [("yes", "yes"), ("no", "no")]
            self.widget = Select(options, prompt=self.default_text(""), id=field_id(self.name), compact=True)
        else:
            kind = "integer" if info.type is int else "text"
            self.widget = Input(id=field_id(self.name), compact=True, type=kind, placeholder=self.default_text(""))
        self.widget.tooltip = Text(tip)  # a str tooltip is parsed as markup ([--lr] would be a tag)

    def default_text(self, why: str) -> str:
        return why or f"default ({_shown(self.info.default)})"

    def hint(self, text: str) -> None:
        """What a blank field means for this preset."""
        if isinstance(self.widget, Input):
            self.widget.placeholder = text
        else:
            self.widget.prompt = text

    def raw(self) -> str | None:
        if isinstance(self.widget, Select):
            return _value(self.widget)
        return self.widget.value.strip() or None

    def read(self) -> Any:
        """The typed value, None when blank; ConfigError (one line naming the field) when it does not parse."""
        raw = self.raw()
        return None if raw is None else self.info.parse(raw)


class NewRunPane(TabPane):
    """The preset, one field per setting, and the Launch button with the launch message beside it."""

    class Launch(Message):
        """The Launch button was pressed (F5 goes through the screen's action)."""

    def __init__(self) -> None:
        from engine.training.config import settings

        super().__init__("New run", id="new-pane")
        self.stage = Select(PRESETS, value="baseline", allow_blank=False, id="f-stage", compact=True)
        self.from_run = Select([], prompt="a pretrain run with a checkpoint", id="f-from", compact=True)
        self.nproc = Input(id="f-nproc", compact=True, type="integer", placeholder="1")
        self.nproc.tooltip = Text("GPUs to train on with torchrun / DDP (the run is always detached)  [--nproc]")
        infos = {i.name: i for i in settings() if i.name not in SKIP}
        order = [n for n in FIRST if n in infos] + [n for n in infos if n not in FIRST]
        self.fields: dict[str, SettingField] = {n: SettingField(infos[n]) for n in order}
        self.schedule: dict[str, Any] | None = None  # the rule's preview for the current preset
        self.launch_button = Button("Launch (F5)", id="f-launch", variant="primary", compact=True)
        self.message = Static("", id="launch-msg")
        self.preview = Static("", id="form-schedule")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form-scroll"):
            with Grid(id="form"):
                rows: list[tuple[str, Widget]] = [("preset", self.stage)]
                for name, f in self.fields.items():
                    rows.append((f.info.label, f.widget))
                    if name == "train_file":
                        rows.append(("from run", self.from_run))
                    if name == "device":
                        rows.append(("GPUs (nproc)", self.nproc))
                for label, widget in rows:
                    yield Label(one_line(label, 40))
                    yield widget
            yield self.preview
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
        if "red" in style:  # a reason not to launch: scrolled into view with the button it is beside
            self.message.scroll_visible()

    def show_stage(self, stage: str, latest_export: str | None, features: str = "") -> None:
        """Enable the fields the preset uses; placeholders say what a blank field means."""
        from engine.training.config import INHERITED, MODEL_SHAPE

        self.from_run.disabled = stage != "finetune"
        for name, f in self.fields.items():
            f.widget.disabled = stage not in f.info.setting.stages or (name == "train_file" and stage == "finetune")
            why = ""
            if stage == "finetune" and (name in INHERITED or name in MODEL_SHAPE):
                why = FROM_PRETRAIN
            elif self.schedule and name in self.schedule["chosen"] and f.info.setting.auto:
                why = f"rule: {_shown(self.schedule['chosen'][name])}"
            elif f.info.setting.auto:
                why = "the schedule rule picks it"
            elif name == "features" and features:
                why = f"default ({one_line(features, 60)})"
            elif name == "train_file":
                why = {
                    "pretrain": f"latest export: {one_line(latest_export, 80)}"
                    if latest_export
                    else "no export yet: give an NLQ-format file",
                    "baseline": "official nlq_train.json",
                }.get(stage, "the official train split")
            f.hint(f.default_text(why))

    def show_schedule(self, preview: dict[str, Any] | None, note: str = "") -> None:
        """The rule's choices for this preset's training set (None: unknown, `note` says why)."""
        self.schedule = preview
        if preview is None:
            self.preview.update(Text(one_line(note, 300), style="dim") if note else "")
            return
        chosen = ", ".join(f"{k} {_shown(v)}" for k, v in preview["chosen"].items())
        line = f"schedule rule for ≈{preview['n']:,} training queries (settings left blank): {chosen}"
        self.preview.update(Text(one_line(line, 300), style="dim"))

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
        """{"values": {setting: value or None, "from_run": id}, "nproc": n} for
        `engine.run_config.start_run`, or the first problem as one line naming the field."""
        stage = str(self.stage.value)
        values: dict[str, Any] = {"stage": stage}
        try:
            for name, f in self.fields.items():
                if not f.widget.disabled:
                    values[name] = f.read()
        except ConfigError as exc:
            return str(exc)
        values["from_run"] = None
        if stage == "finetune":
            values["from_run"] = _value(self.from_run)
            if values["from_run"] is None:
                return "from run: choose the pretrain run to start from"
        text = self.nproc.value.strip()
        if text and (not text.isdigit() or not 1 <= int(text) <= MAX_NPROC):
            return f"--nproc / the GPUs (nproc) field: {text[:20]!r} is not a whole number from 1 to {MAX_NPROC}"
        return {"values": values, "nproc": int(text) if text else 1}
