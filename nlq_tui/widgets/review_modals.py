"""The Review screen's dialogs: reject reason, filters, bulk step, confirmation, export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.store import DEFAULT_REASON, FLAG_NAMES, REJECT_REASONS, STATUSES, Filter
from engine.textsafe import visible
from nlq_tui.bindings import (
    REVIEW_BULK_BINDINGS,
    REVIEW_CONFIRM_BINDINGS,
    REVIEW_EXPORT_BINDINGS,
    REVIEW_FILTER_BINDINGS,
    reject_reason_bindings,
)
from nlq_tui.safe_text import plain_text

if TYPE_CHECKING:
    from engine.store import CandidateStore


class RejectReasonScreen(ModalScreen[str | None]):
    """`1`-`9` picks a reason, Enter the default one, Escape goes back without rejecting."""

    BINDINGS = reject_reason_bindings(REJECT_REASONS)

    def compose(self) -> ComposeResult:
        lines = ["[b]Reject: why?[/b]", ""]
        for i, (key, text) in enumerate(REJECT_REASONS):
            mark = "  [dim](Enter)[/dim]" if key == DEFAULT_REASON else ""
            lines.append(f" [b]{i + 1}[/b]  {escape(text)}{mark}")
        lines += ["", "[dim]Esc: back without rejecting[/dim]"]
        yield Static("\n".join(lines), id="reason-box")

    def action_pick(self, i: int) -> None:
        self.dismiss(REJECT_REASONS[i][0])

    def action_pick_default(self) -> None:
        self.dismiss(DEFAULT_REASON)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


STATUS_CHOICES = [
    ("open (pending, skipped, flagged)", "open"),
    ("all", "all"),
    *((s, s) for s in STATUSES),
    ("reviewed (accepted, edited, rejected)", "accepted,edited,rejected"),
]
FLAG_CHOICES = [("any", "any"), ("no flags", "none"), *((n, n) for n in FLAG_NAMES.values())]


def _choices(values: list[str]) -> list[tuple[Text, str]]:
    # Labels from the data (models, templates, variants) are plain text, never markup.
    return [(plain_text(v, limit=80, newlines=False) if v else Text("(none)"), v) for v in values]


class FilterScreen(ModalScreen[Filter | None]):
    """Every filter of the queue; Enter applies, Escape keeps the old ones."""

    BINDINGS = REVIEW_FILTER_BINDINGS

    def __init__(self, current: Filter, facets: dict[str, list[str]], focus_text: bool = False) -> None:
        super().__init__()
        self.current = current
        self.facets = facets
        self.focus_text = focus_text

    def compose(self) -> ComposeResult:
        f = self.current
        status = f.status if isinstance(f.status, str) else ",".join(sorted(f.status))
        with Vertical(id="filter-box"):
            yield Label("[b]Filter the queue[/b]  [dim]Enter: apply · Esc: cancel · Ctrl+R: clear[/dim]")
            with Grid(id="filter-grid"):
                yield Label("text")
                yield Input(f.text, placeholder="words in the question", id="f-text")
                yield Label("status")
                yield Select(
                    STATUS_CHOICES,
                    value=status if status in dict((v, k) for k, v in STATUS_CHOICES) else "open",
                    allow_blank=False,
                    id="f-status",
                )
                yield Label("backend/model")
                yield Select(
                    _choices(self.facets["backend_model"]),
                    value=f.backend_model or Select.NULL,
                    prompt="any",
                    id="f-model",
                )
                yield Label("variant")
                yield Select(
                    _choices(self.facets.get("variant", [])),
                    value=next(iter(f.variants)) if len(f.variants) == 1 else Select.NULL,
                    prompt="any",
                    id="f-variant",
                )
                yield Label("prompt version")
                yield Select(
                    _choices(self.facets["prompt_version"]),
                    value=f.prompt_version or Select.NULL,
                    prompt="any",
                    id="f-prompt",
                )
                yield Label("flags")
                yield Select(FLAG_CHOICES, value=f.flags, allow_blank=False, id="f-flags")
                yield Label("max ambiguity")
                yield Input(
                    "" if f.max_ambiguity is None else str(f.max_ambiguity),
                    placeholder="any",
                    type="integer",
                    id="f-ambiguity",
                )
                yield Label("template")
                yield Select(
                    _choices(self.facets["template"]), value=f.template or Select.NULL, prompt="any", id="f-template"
                )
                yield Label("video")
                yield Input(f.video, placeholder="video uid or its start", id="f-video")
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="f-apply")
                yield Button("Cancel", id="f-cancel")

    def on_mount(self) -> None:
        self.query_one("#f-text" if self.focus_text else "#f-status").focus()

    def _value(self, sel: str) -> str:
        v = self.query_one(sel, Select).value
        return "" if v is Select.NULL or v is None else str(v)

    def result(self) -> Filter:
        amb = self.query_one("#f-ambiguity", Input).value.strip()
        return Filter(
            status=self._value("#f-status") or "open",
            backend_model=self._value("#f-model"),
            prompt_version=self._value("#f-prompt"),
            flags=self._value("#f-flags") or "any",
            max_ambiguity=int(amb) if amb.lstrip("-").isdigit() else None,
            template=self._value("#f-template"),
            video=self.query_one("#f-video", Input).value.strip(),
            text=self.query_one("#f-text", Input).value.strip(),
            variants=frozenset({self._value("#f-variant")}) - {""},
        )

    @on(Input.Submitted)
    @on(Button.Pressed, "#f-apply")
    def apply(self) -> None:
        self.dismiss(self.result())

    @on(Button.Pressed, "#f-cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_clear(self) -> None:
        self.dismiss(Filter())


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; `y` or Enter confirms, `n` or Escape declines."""

    BINDINGS = REVIEW_CONFIRM_BINDINGS

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-text")
            yield Static("[b]y[/b] / Enter: yes    [b]n[/b] / Esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


@dataclass
class BulkChoice:
    """What a bulk step will do: the action, the rule shown, and exactly the ids it previewed."""

    action: str
    rule: Filter
    ids: list[str]
    sample: list[str] = field(default_factory=list)


class BulkScreen(ModalScreen[BulkChoice | None]):
    """Accept or reject every candidate that matches a rule, with its count and a sample first.

    The rule keeps the current filter's statuses, less "flagged" (a candidate set aside for a
    later look) unless the flagged field says to include them; what Apply hands back is the
    very set the preview counted.
    """

    BINDINGS = REVIEW_BULK_BINDINGS

    def __init__(self, store: CandidateStore, base: Filter) -> None:
        super().__init__()
        self.store = store
        self.base = base
        self.ids: list[str] = []
        self.sample: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="bulk-box"):
            yield Label(
                Text.assemble(("Bulk decision", "bold"), ("  candidates of the current filter that also match:", "dim"))
            )
            yield Static(plain_text(self.base.describe(), limit=500), classes="hint")
            with Grid(id="bulk-grid"):
                yield Label("action")
                yield Select(
                    [("accept", "accept"), ("reject", "reject")], value="accept", allow_blank=False, id="b-action"
                )
                yield Label("flags")
                yield Select(FLAG_CHOICES, value="none", allow_blank=False, id="b-flags")
                yield Label("max ambiguity")
                yield Input("0", placeholder="any", type="integer", id="b-ambiguity")
                yield Label("flagged for later")
                yield Select(
                    [("leave them", "leave"), ("include them", "include")],
                    value="leave",
                    allow_blank=False,
                    id="b-held",
                )
            yield Static("", id="b-preview")
            with Horizontal(classes="buttons"):
                yield Button("Apply…", variant="warning", id="b-apply")
                yield Button("Cancel", id="b-cancel")

    def on_mount(self) -> None:
        self.update_preview()
        self.query_one("#b-action").focus()

    def rule(self) -> Filter:
        amb = self.query_one("#b-ambiguity", Input).value.strip()
        flags = self.query_one("#b-flags", Select).value
        statuses = self.base.statuses()
        statuses = frozenset(STATUSES) if statuses is None else statuses
        if self.query_one("#b-held", Select).value != "include":
            statuses = statuses - {"flagged"}
        return Filter(
            status=",".join(s for s in STATUSES if s in statuses),
            backend_model=self.base.backend_model,
            prompt_version=self.base.prompt_version,
            flags=str(flags),
            template=self.base.template,
            video=self.base.video,
            text=self.base.text,
            max_ambiguity=int(amb) if amb.lstrip("-").isdigit() else self.base.max_ambiguity,
            variants=self.base.variants,
        )

    def count(self) -> int:
        return len(self.ids)

    @on(Select.Changed)
    @on(Input.Changed)
    def update_preview(self) -> None:
        rule = self.rule()
        self.ids, rows = self.store.bulk_preview(rule, sample=5, seed=0)
        self.sample = [self.store.query_text(r.id) for r in rows]
        action = self.query_one("#b-action", Select).value
        text = Text.assemble(
            (f"{len(self.ids):,}", "bold"),
            f" candidates would be {'accepted' if action == 'accept' else 'rejected'}  ",
            (f"({visible(rule.describe(), 500)})", "dim"),
        )
        for q in self.sample:
            text.append("\n  · " + visible(q, 90), style="dim")
        self.query_one("#b-preview", Static).update(text)

    @on(Input.Submitted)
    @on(Button.Pressed, "#b-apply")
    def apply(self) -> None:
        action = str(self.query_one("#b-action", Select).value)
        self.dismiss(BulkChoice(action, self.rule(), list(self.ids), list(self.sample)))

    @on(Button.Pressed, "#b-cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)


@dataclass
class ExportChoice:
    """Where the export goes, which statuses, which format, and the variants it keeps (empty: all)."""

    path: str
    statuses: str
    fmt: str = "nlq"
    variants: frozenset[str] = frozenset()


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Where to write the NLQ file (or a flat table), which statuses and variants go in it."""

    BINDINGS = REVIEW_EXPORT_BINDINGS

    def __init__(self, default_path: str, variants: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.default_path = default_path
        self.variants = variants  # the queue filter's variants, offered as the export's

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Label("[b]Export to an NLQ file[/b]  [dim](a manifest is written beside it)[/dim]")
            with Grid(id="export-grid"):
                yield Label("file")
                yield Input(self.default_path, id="e-path")
                yield Label("statuses")
                yield Select(
                    [
                        ("accepted and edited", "accepted,edited"),
                        ("all valid, not rejected", "all"),
                        ("accepted only", "accepted"),
                    ],
                    value="accepted,edited",
                    allow_blank=False,
                    id="e-status",
                )
                yield Label("format")
                yield Select(
                    [("NLQ (official nesting)", "nlq"), ("JSON lines, one row each", "jsonl"), ("Parquet", "parquet")],
                    value="nlq",
                    allow_blank=False,
                    id="e-format",
                )
                yield Label("variants")
                shown = visible(", ".join(sorted(self.variants)), 60)
                yield Select(
                    [(Text("all variants"), "all")]
                    + ([(Text(f"the filter's: {shown}"), "filter")] if self.variants else []),
                    value="filter" if self.variants else "all",
                    allow_blank=False,
                    id="e-variants",
                )
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="e-go")
                yield Button("Cancel", id="e-cancel")

    def on_mount(self) -> None:
        self.query_one("#e-path").focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#e-go")
    def go(self) -> None:
        path = self.query_one("#e-path", Input).value.strip()
        if path:
            keep = self.variants if self.query_one("#e-variants", Select).value == "filter" else frozenset()
            status, fmt = self.query_one("#e-status", Select).value, self.query_one("#e-format", Select).value
            self.dismiss(ExportChoice(path, str(status), str(fmt), keep))

    @on(Button.Pressed, "#e-cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)
