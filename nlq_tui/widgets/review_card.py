"""What the Review screen's card shows, as plain `Text` (docs/ARCHITECTURE.md, "Trust").

Candidate text, uids, narrations and reject notes come from outside: every one goes through
`visible` (controls and ESC made visible, size bounded) into `Text` parts, never into a markup
string, so `[/]` or an OSC sequence in a narration is shown as the characters it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text

from engine.candidate import FLAG_WINDOW, Candidate
from engine.store import REJECT_REASONS
from engine.textsafe import visible
from nlq_tui.widgets.timeline import TimelineMark

if TYPE_CHECKING:
    from engine.store import Step

REASON_TEXT = dict(REJECT_REASONS)
STATUS_STYLE = {
    "pending": "dim",
    "accepted": "bold green",
    "edited": "bold cyan",
    "rejected": "bold red",
    "skipped": "yellow",
    "flagged": "bold magenta",
}
TEXT_LIMIT = 2000  # characters of one question or narration on the card
ID_LIMIT = 200


def _clock(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


def reason_text(reason: str | None) -> str:
    return visible(REASON_TEXT.get(reason or "", reason or ""), 80)


def card_head(where: str, c: Candidate, status: str, review: dict | None, blind: bool = False) -> Text:
    """The card's first line: place in the queue, the decision (hidden when blind), the source."""
    if blind:
        state = Text("SECOND OPINION (the first decision is hidden)", style="bold magenta")
    else:
        review = review or {}
        state = Text.assemble((status.upper(), STATUS_STYLE.get(status, "")))
        if status == "rejected" and review.get("reason"):
            state.append(f" ({reason_text(review['reason'])})", style="red")
        if review.get("reviewer"):
            state.append(f" by {visible(review['reviewer'], 80)}", style="dim")
    source = (
        f"{visible(c.id, ID_LIMIT)}  ·  video {visible(c.video_uid, ID_LIMIT)}  ·  "
        f"{visible(c.backend, 80)}/{visible(c.model, 80)}  ·  prompt {visible(c.prompt_version, 40)}  ·  "
        f"variant {visible(c.variant_name(), 80)}"
    )
    return Text.assemble((where, "bold"), "   ", state, "   ", (source, "dim"))


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    h, rem = divmod(int(seconds), 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def progress_line(p: dict, reviewer: str, second: tuple[int, int] | None, read_only: bool, reading: int | None) -> Text:
    """The progress line: decisions so far by status, rate and ETA, the reviewer; `second`: a
    second opinion's (given, drawn); `reading`: the candidates read so far while the rest come in."""
    c = p["counts"]
    line = Text.assemble(
        "reviewed ",
        (f"{p['reviewed']:,}", "bold"),
        f" / {p['total']:,}   ",
        (f"✓ {c['accepted']:,}", "green"),
        " ",
        (f"✎ {c['edited']:,}", "cyan"),
        " ",
        (f"✗ {c['rejected']:,}", "red"),
        " ",
        (f"skipped {c['skipped']:,}", "yellow"),
        " ",
        (f"flagged {c['flagged']:,}", "magenta"),
        f"   {p['per_hour']:,.0f}/h   ETA {_eta(p['eta_s'])}   reviewer ",
        (visible(reviewer, 80), "bold"),
    )
    if second is not None:
        line.append(f"  second opinion: {second[0]:,}/{second[1]:,}", style="bold magenta")
    if read_only:
        line.append("  READ-ONLY", style="bold yellow")
    if reading is not None:
        line.append(f"  reading candidates… {reading:,}", style="dim")
    return line


def question(text: str) -> Text:
    return Text(visible(text, TEXT_LIMIT), style="bold")


def original(text: str, query: str) -> Text | str:
    if text == query:
        return ""
    return Text.assemble(("original: ", "dim"), (visible(query, TEXT_LIMIT), "dim italic"))


def badges(c: Candidate) -> Text:
    checks = c.checks
    out = Text()

    def badge(label: str, style: str) -> None:
        out.append(f" {label} ", style=style)
        out.append(" ")

    if checks.pending:
        badge("checks pending", "black on grey70")  # the embedding checks fill in when they catch up
    elif checks.ambiguity < 0:
        badge("ambiguity ?", "black on grey70")  # not computed (no sentence encoder in that run)
    else:
        badge(f"ambiguity {checks.ambiguity}", "black on green" if not checks.ambiguity else "black on yellow")
    if checks.duplicate_of:
        badge(f"duplicate of {visible(checks.duplicate_of, ID_LIMIT)}", "white on red")
    if checks.near_duplicate_of:
        badge(f"near-duplicate of {visible(checks.near_duplicate_of, ID_LIMIT)}", "black on yellow")
    for problem in checks.window_problems:
        badge(f"window: {visible(problem, 80)}", "white on red")
    for reason in checks.flagged:
        badge(f"validation: {visible(reason, 80)}", "black on magenta")
    if checks.template:
        badge(f"template: {visible(checks.template, 120)}", "white on blue")
    return out


def narrations(c: Candidate) -> Text:
    w = c.window
    origin = w.clip_start or 0.0
    target = c.narration_uid
    out = Text()
    for i, n in enumerate(c.group_narrations, start=1):
        is_target = bool(target) and n.get("uid") == target
        t = _num(n.get("t"), 0.0)
        line = Text.assemble(
            ("▶ " if is_target else "  ", "bold yellow"),
            (f"{i}. ", "bold" if is_target else "dim"),
            (f"{_clock(t - origin):>7} ", "cyan" if is_target else "dim"),
            (visible(n.get("text") or "", TEXT_LIMIT), "bold reverse" if is_target else ""),
        )
        if out:
            out.append("\n")
        out.append(line)
    if target:
        rs, re_ = w.clip_rel_start, w.clip_rel_end
        if rs is None or re_ is None:
            out.append("\n  no usable window", style="bold red")
        else:
            out.append(f"\n  window {_clock(rs)}–{_clock(re_)} of the clip ({re_ - rs:.1f} s)", style="dim")
    return out


def _num(x: object, default: float) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return default
    return float(x)


def timeline_marks(c: Candidate, flags: int) -> list[TimelineMark]:
    """One mark per narration of the group; the target's window drawn red when it has a problem."""
    w = c.window
    marks = []
    bad = bool(flags & FLAG_WINDOW)
    for i, n in enumerate(c.group_narrations, start=1):
        t = _num(n.get("t"), 0.0)
        if c.narration_uid and n.get("uid") == c.narration_uid:
            # A window with a problem may have no bounds: draw the narration time alone.
            start = t if w.start is None else w.start
            end = t if w.end is None else w.end
            style, flag = ("bold red", "!") if bad else ("bold yellow", "▶")
            marks.append(TimelineMark(start, end, t, label=str(i), style=style, flag=flag))
        else:
            marks.append(TimelineMark(t, t, t, label=str(i), style="dim"))
    return marks


def step_label(step: Step, text: str | None) -> Text:
    """A line of the recent-decisions list: time, status, the reject reason, the question."""
    when = datetime.fromtimestamp(step.t).strftime("%H:%M:%S")
    style = STATUS_STYLE.get(step.status, "")
    if step.op == "bulk":
        label = Text.assemble((f"{when} ", "dim"), (f"bulk {step.status} ", style), f"{len(step.ids):,} candidates")
    else:
        label = Text.assemble((f"{when} ", "dim"), (f"{step.status:<8} ", style))
        if step.second:
            label.append("2nd ", style="magenta")
        label.append(visible(text or "", 60))
    if step.status == "rejected" and step.reason:
        label.append(f"  ({reason_text(step.reason)})", style="red")
    return label
