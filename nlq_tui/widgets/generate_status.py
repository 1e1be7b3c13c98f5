"""The Generate screen's job panes: the live feed of a job's events, and its progress bar and figures.

A job (in the app or detached) reports through events (`engine.generation.pipeline`) and a stats
dict (`Stats.as_json`); these widgets only draw them. Questions, narrations, answers and server
errors are data: every line is built from plain text, never from a markup string, and wraps at
the pane's width instead of being cut.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, RichLog, Static

from engine.textsafe import one_line, visible
from nlq_tui.safe_text import plain_content

FEED_LINES = 400
FEED_GROUPS = 40  # groups shown per batch of events: at template speed a sample is all a person reads
RAW_SHOWN = 2000  # characters of a rejected raw answer in the feed


def feed_line(*parts: str | tuple[str, str], limit: int | None = None) -> Text:
    """A Rich Text line from plain parts (str, or (str, style)), every part made visible: RichLog
    wraps Rich Text at its width (a Textual Content it would not)."""
    line = Text()
    for part in parts:
        text, style = part if isinstance(part, tuple) else (part, "")
        line.append(visible(text, limit), style=style)
    return line


class JobFeed(RichLog):
    """The job's live feed: questions as they are stored, rejections, failed requests, steps."""

    def __init__(self, **kw: Any) -> None:
        # min_width 1: lines wrap at the pane's width (the default 78 cut them in a narrow pane)
        super().__init__(max_lines=FEED_LINES, wrap=True, markup=False, min_width=1, **kw)

    def say(self, *parts: str | tuple[str, str], limit: int | None = None) -> None:
        self.write(feed_line(*parts, limit=limit))

    def show_events(self, events: list[dict]) -> tuple[dict | None, str | None, bool]:
        """Draw a batch of job events; (the last progress stats, the last step, whether a step came)."""
        last_progress, step, stepped, shown = None, None, False, 0
        for ev in events:
            kind = ev.get("type")
            if kind == "progress":
                last_progress = ev["stats"]
            elif kind == "step":
                step, stepped = (ev.get("text") or None), True
                if step:
                    self.say(("… ", "dim"), step)
            elif kind == "failure":
                self.say(("! ", "bold red"), ev["group_key"], ": request failed, ",
                         (one_line(ev["reason"], 60), "bold"), " ", one_line(ev.get("detail") or ""))  # fmt: skip
            elif kind == "group" and shown < FEED_GROUPS:
                shown += 1
                self.show_group(ev)
        return last_progress, step, stepped

    def show_group(self, ev: dict) -> None:
        from engine.candidate import Candidate

        for c in ev["candidates"][:5]:
            cand = Candidate.from_json(c) if isinstance(c, dict) else c
            flags = cand.flag_names()
            self.say(("+ ", "green"), cand.query, " ", (cand.checks.template or "", "dim"),
                     (" " + " ".join(flags) if flags else "", "yellow"))  # fmt: skip
        for r in ev["rejected"][:5]:
            raw = r.get("raw")
            raw = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False) if raw is not None else ""
            self.say(("✗ ", "red"), (one_line(r["reason"], 60), "bold"), " ", one_line(r.get("detail") or ""),
                     " ", (raw, "dim"), limit=RAW_SHOWN)  # fmt: skip


def stats_lines(st: dict, eta: float | None, prefix: str = "", step: str | None = None) -> str:
    """Two lines: state, groups, percent, rate, ETA (and the step); then valid, rejected, failed,
    tokens and cost, so that the figures that cost money fit at 80 columns."""
    from engine.generation.jobs import progress_parts

    p = progress_parts(st, eta)
    head = " ".join(x for x in (prefix, st["state"]) if x)
    shown_step = f"  {step}" if step and st["state"] in ("running", "paused", "idle") else ""
    line1 = f"{head}  {p['groups']} ({st['groups_skipped']:,} done before)  {p['pct']}  {p['rate']}  {p['eta']}"
    pending = st.get("checks_pending")
    checks = f"checks pending {pending:,}" if isinstance(pending, int) and pending > 0 else ""
    line2 = "  ".join(x for x in (p["valid"], p["rejected"], p["failed"], p["tokens"], p["cost"], checks) if x)
    return f"{line1}{shown_step}\n{line2}"


class JobStatus(Vertical):
    """The progress bar (100% once a job is done) and the two lines of figures under it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        # A total from the start: a bar without one animates as if work were under way (idle).
        self.bar = ProgressBar(total=1, id="gen-bar", show_eta=False)
        self.text = Static("idle", id="gen-stats")

    def compose(self) -> ComposeResult:
        yield self.bar
        yield self.text

    def show(self, st: dict, eta: float | None, prefix: str = "", step: str | None = None) -> None:
        todo = max(0, st["groups_total"] - st["groups_skipped"])
        done = st["groups_done"] + st["groups_failed"]
        total = max(1, todo)
        self.bar.update(total=total, progress=total if st["state"] == "done" else min(done, total))
        self.set_text(stats_lines(st, eta, prefix, step))

    def set_text(self, text: str) -> None:
        self.text.update(plain_content(text))
