"""The Train screen's Experiment tab: an experiment's table, baseline against pretrain ->
finetune over seeds, updated as its runs finish (docs/ARCHITECTURE.md, "Experiments").

It renders what the screen's worker read through `engine.experiment` (the plan, one row per
job, the arms' mean ± sd and the paired interval of each finetune's gain) and reads no file.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Select, Static, TabPane

from engine.textsafe import one_line
from nlq_tui.widgets.train_view import fmt_duration, progress_text

KEYS = ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5", "mIoU")
STATE_STYLES = {"running": "green", "done": "cyan", "stopped": "yellow", "failed": "red", "pending": "dim"}
NO_EXPERIMENT = "no experiment yet: press e to start one (baseline vs pretrain -> finetune over seeds)"


def _num(x: Any, sign: bool = False) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return "—"
    return f"{x:+.2f}" if sign else f"{x:.2f}"


def _mean_sd(stat: Any) -> str:
    mean, sd = stat if isinstance(stat, (tuple, list)) and len(stat) == 2 else (None, None)
    if mean is None:
        return "—"
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if isinstance(sd, (int, float)) else "")


def _interval(gain: Any) -> Text:
    """`+13.1 [+12.2, +14.0]`, green when the interval excludes 0."""
    if not isinstance(gain, dict) or not isinstance(gain.get("mean"), (int, float)):
        return Text("—", style="dim")
    lo, hi = gain.get("lo"), gain.get("hi")
    text = f"{gain['mean']:+.2f}"
    style = ""
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        text += f" [{lo:+.2f}, {hi:+.2f}]"
        style = "green" if lo > 0 else "red" if hi < 0 else ""
    return Text(text, style=style)


def arms_table(view: dict) -> Table:
    """One row per arm: seeds done, mean ± sd of each figure, and a finetune's gain over the baseline."""
    plan, rows = view["plan"], view["rows"]
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold", expand=False)
    table.add_column("arm", no_wrap=True)
    table.add_column("seeds", justify="right")
    for key in KEYS:
        table.add_column(key, justify="right", no_wrap=True)
    table.add_column("gain R1@0.3 (95%)", justify="right", no_wrap=True)
    for arm in plan.arms():
        summary = view["arms"].get(arm) or {}
        stats = summary.get("stats") or {}
        done = len(summary.get("per_seed") or {})
        total = len([r for r in rows if r["arm"] == arm])
        gain = (view["gains"].get(arm) or {}).get("R1@0.3") if arm.startswith("finetune:") else None
        table.add_row(
            Text(one_line(arm, 40)),
            f"{done}/{total}",
            *(_mean_sd(stats.get(k)) for k in KEYS),
            _interval(gain) if arm.startswith("finetune:") else Text(""),
        )
    return table


def jobs_table(rows: list[dict]) -> Table:
    """One row per run of the experiment: its state, progress and best val figures."""
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold", expand=False)
    for name, justify in (("job", "left"), ("state", "left"), ("progress", "right"), ("R1@0.3", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("elapsed", justify="right")
    table.add_column("run", no_wrap=True)
    for r in rows:
        state = one_line(r.get("state"), 12)
        best = r.get("best") or {}
        table.add_row(
            Text(one_line(r.get("key"), 60)),
            Text(state, style=STATE_STYLES.get(state, "")),
            progress_text({"step": r.get("step"), "total_steps": r.get("total_steps")}).split(" e")[0],
            _num(best.get("R1@0.3")),
            fmt_duration(r.get("elapsed_s")),
            Text(one_line(r.get("run_id") or "—", 60), style="dim"),
        )
    return table


class ExperimentPane(TabPane):
    """A choice of the workspace's experiments (newest first) and the chosen one's tables."""

    def __init__(self) -> None:
        super().__init__("Experiment", id="experiment-pane")
        self.choice = Select([], prompt="the newest experiment", id="exp-pick", compact=True)
        self.body = Static(Text(NO_EXPERIMENT, style="dim"), id="exp-table")
        self._ids: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield self.choice
        with VerticalScroll(id="exp-scroll"):
            yield self.body

    def chosen(self) -> str | None:
        return None if self.choice.is_blank() else str(self.choice.value)

    def show(self, ids: list[str], view: dict | None) -> None:
        """`ids`: every experiment, newest first; `view`: the shown one (plan, rows, arms, gains)."""
        if tuple(ids) != self._ids:
            self._ids = tuple(ids)
            current = self.chosen()
            self.choice.set_options([(Text(one_line(i, 60)), i) for i in ids])
            if current in ids:
                self.choice.value = current
        if view is None:
            self.body.update(Text(NO_EXPERIMENT, style="dim"))
            return
        plan, rows = view["plan"], view["rows"]
        done = sum(1 for r in rows if r["state"] == "done")
        sources = ", ".join(one_line(s.label, 40) for s in plan.sources)
        head = Text.assemble(
            (one_line(plan.id, 60), "bold"),
            f" · seeds {' '.join(map(str, plan.seeds))} · pretraining: {sources} · {done}/{len(rows)} runs done",
        )
        note = view.get("state") or ""
        if note:
            head.append(f" · {one_line(note, 120)}", style="dim")
        self.body.update(Group(head, Text(""), arms_table(view), Text(""), jobs_table(rows)))
