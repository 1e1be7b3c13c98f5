"""The Generate screen's dialogs: how to start a prepared job (here, detached, or not), and quitting
while a job runs. Every figure or name in them is shown as plain text."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from nlq_tui.bindings import GENERATE_QUIT_BINDINGS, GENERATE_START_BINDINGS
from nlq_tui.safe_text import content, plain_content

CSS = Path(__file__).with_name("generate_modals.tcss")
PAID_CONFIRM_GROUPS = 200  # above this many groups on a paid endpoint, the dialog asks for the cost


def needs_cost_confirmation(estimate: dict | None, groups: int) -> bool:
    return bool(estimate and estimate.get("paid")) and groups > PAID_CONFIRM_GROUPS


def estimate_text(est: dict | None) -> str:
    if not est:
        return "estimate: not available"
    if est.get("error"):
        return f"estimate: not available ({est['error']})"
    if est.get("llm") is False:  # the built-in templates: no tokens, no price to set
        return f"estimate: {est.get('groups', 0):,} groups, no LLM (built-in templates), free"
    cost = est.get("cost")
    money = f"${cost:,.2f}" if cost is not None else "no price set ($/1M fields)"
    return (
        f"estimate: {est.get('requests', 0):,} requests, {est.get('prompt_tokens', 0):,} prompt + "
        f"{est.get('completion_tokens', 0):,} completion tokens, {money}"
    )


class StartJobModal(ModalScreen[str | None]):
    """`enter` runs the job in the app, `d` detaches it (its own process), `escape` starts nothing."""

    BINDINGS = GENERATE_START_BINDINGS
    CSS_PATH = CSS

    def __init__(self, summary: str, estimate: dict | None, todo: int) -> None:
        super().__init__()
        self.summary = summary
        self.estimate = estimate
        self.todo = todo
        self.confirm_cost = needs_cost_confirmation(estimate, todo)

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.confirm_cost:
                cost = (self.estimate or {}).get("cost")
                money = f"about ${cost:,.2f}" if cost is not None else "a cost (no price set)"
                yield Static(
                    plain_content(f"{self.todo:,} groups on a paid endpoint: this job costs {money}. Start it?"),
                    id="start-warn",
                )
            yield Static(plain_content(self.summary), id="start-summary")
            yield Static(plain_content(estimate_text(self.estimate)), id="start-estimate")
            yield Static(
                Content(
                    "Detached, the job is its own process: it goes on when the app closes, and this "
                    "screen shows it again from any session."
                ),  # fmt: skip
                classes="muted",
            )
            with Horizontal():
                yield Button("Start here (enter)", id="here", variant="primary")
                yield Button("Detach (d)", id="detach")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"here": "here", "detach": "detach"}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class QuitWhileRunningModal(ModalScreen[bool]):
    """Quitting while an in-app job runs: `y` stops it cleanly and quits, `n` stays."""

    BINDINGS = GENERATE_QUIT_BINDINGS
    CSS_PATH = CSS

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(content((self.reason, "bold")))
            yield Static(
                "Quit anyway? The job stops cleanly: the requests in flight finish and are stored, the "
                "candidates lock is released, and the same settings resume it later (F5)."
            )
            with Horizontal():
                yield Button("Stop and quit (y)", id="yes", variant="warning")
                yield Button("Stay (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
