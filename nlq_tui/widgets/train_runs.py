"""The Train screen's Runs tab: the runs list, and the selected run's header, loss plot,
evaluations and log tail (docs/ARCHITECTURE.md, "Runs").

It renders what the screen hands it (summaries, a `RunView`, a GPU reading) and reads no
file. Every piece of text from a run folder (ids, stages, errors, log lines, GPU names) goes
on screen as plain `Text` through the safe-text rule: never markup, controls made visible.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, TabPane

from engine.textsafe import one_line, visible
from nlq_tui.widgets.plot import LinePlot, Series
from nlq_tui.widgets.train_view import EVAL_KEYS, RunView, fmt_duration, progress_text, short_id
from nlq_tui.widgets.vtable import Column, VirtualTable

RUNS_ROWS, RUNS_ROWS_NARROW = 8, 4  # runs shown before the list scrolls (>= 100 columns, below)
STATE_COLORS = {"running": "green", "done": "cyan", "stopped": "yellow", "failed": "red"}


def whole(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def number(x: Any, fmt: str = ".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "—"


def shown_state(state: Any, pid: Any) -> str:
    """A running run without a pid yet is still importing torch and loading data: "starting"."""
    return "starting" if state == "running" and not pid else one_line(state or "?", 20)


def summary_cells(s: dict, picked: bool) -> tuple[str, ...]:
    return (
        short_id(one_line(s["id"], 80)),
        one_line(s.get("stage", "?"), 20),
        shown_state(s.get("state"), s.get("pid")),
        progress_text(s),
        number(s.get("best_R1@0.3")),
        fmt_duration(s.get("elapsed_s")),
        "✓" if picked else "",
    )


def gpu_text(lines: list[str] | None, available: bool) -> Text:
    if lines is None:
        return Text("GPU …", style="dim")
    if not available:
        return Text(one_line(lines[0], 200), style="dim")
    return Text(" · ".join(one_line(x, 80) for x in lines))


class RunsPane(TabPane):
    """Runs list on top; below it the selected run: header, loss plot beside the evaluations, log."""

    def __init__(self) -> None:
        super().__init__("Runs", id="runs-pane")
        self.table = VirtualTable(
            [
                Column("run", 16),
                Column("stage", 8),
                Column("state", 8),
                Column("progress", 11, hide_below=60),
                Column("R1@0.3", 6, "right"),
                Column("elapsed", 8, "right", hide_below=50),
                Column("pick", 4, hide_below=70),
            ],
            id="runs",
            empty_text="no runs yet: press n for a new run",
        )
        self.head = Static("", id="run-head")
        self.plot = LinePlot(id="loss-plot", empty="no loss rows yet", x_label="step")
        self.evals_box = VerticalScroll(id="evals-box")
        self.evals = Static("", id="evals")
        self.log_view = Static("", id="run-log")
        self._list_key: tuple = ()

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.head
        with Horizontal(id="run-body"):
            yield self.plot
            with self.evals_box:
                yield self.evals
        yield self.log_view

    # the list ------------------------------------------------------------------------------------
    def forget_list(self) -> None:
        """Redraw the list on the next `show_summaries` (the pick column or the width changed)."""
        self._list_key = ()

    def show_summaries(self, summaries: list[dict], picked: list[str], narrow: bool) -> bool:
        """Show the list; False when nothing a row shows changed (and nothing was redrawn)."""
        key = tuple(
            (s["id"], s["state"], bool(s.get("pid")), s.get("step"), s.get("best_R1@0.3"), int(s.get("elapsed_s") or 0))
            for s in summaries
        )
        if key == self._list_key:
            return False
        self._list_key = key
        rows = [summary_cells(s, s["id"] in picked) for s in summaries]
        self.table.set_source(len(rows), lambda i: rows[i], keep_cursor=True)
        # as tall as the list (the plot gets the rest), up to a few rows
        most = RUNS_ROWS_NARROW if narrow else RUNS_ROWS
        self.table.styles.height = max(2, min(len(rows), most) + 1)
        return True

    # the selected run ----------------------------------------------------------------------------
    def show_nothing(self, gpu: Text, problem: str | None = None) -> None:
        head = Text("No run selected. Press ", style="dim")
        head.append("n", style="bold")
        head.append(" for a new run: presets Baseline, Pretrain, Finetune.\n")
        head.append_text(gpu)
        if problem:
            head.append("\n" + one_line(problem, 400), style="red")
        self.head.update(head)
        self.plot.set_series([], empty="no run selected")
        self.evals.update("")
        self.log_view.update("")

    def show_head(self, view: RunView, config: dict | None, summary: dict, gpu: Text, smoothing: float) -> None:
        st = view.status or {}
        state = st.get("state", "…")
        color = STATE_COLORS.get(state, "white")
        cfg = config or {}
        train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
        batch = whole(train.get("batch_size"))
        nproc = whole(cfg.get("nproc")) or 1
        step = whole(st.get("step"))
        if view.last_train and whole(view.last_train.get("step")) is not None:
            step = max(step or 0, view.last_train["step"])
        total = whole(st.get("total_steps"))
        stage = cfg.get("stage", summary.get("stage", "?"))
        line = Text.assemble(
            (visible(view.run_id, 80), "bold"),
            " · ",
            one_line(stage, 20),
            " · ",
            (shown_state(state, st.get("pid")), f"bold {color}"),
        )
        if step is not None:
            line.append(f" · step {step:,}" + (f"/{total:,}" if total is not None else ""))
        epochs = whole(st.get("epochs"))
        if epochs is not None:
            epoch = min((whole(st.get("epoch")) or 0) + (1 if state == "running" else 0), epochs)
            line.append(f" · epoch {epoch}/{epochs}")
        parts = []
        if state == "running":
            rate = view.steps_per_s(batch, nproc)
            parts.append(f"{rate:.2f} step/s" if rate else "— step/s")
            eta = view.eta_s(batch, nproc)
            parts.append(f"ETA {fmt_duration(eta)}" if eta is not None else "ETA —")
        else:
            parts.append(f"took {fmt_duration(summary.get('elapsed_s'))}")
        if view.lrs:
            parts.append(f"lr {view.lrs[-1]:.2e}")
        if view.losses:
            parts.append(f"loss {view.losses[-1]:.4f}")
        parts.append(f"smoothing {smoothing:.2f} ")
        second = Text(" · ".join(parts))
        second.append("[ ]", style="dim")
        out = Text("\n").join([line, second, gpu])
        if state == "failed" and st.get("error"):
            out.append("\n" + one_line(st["error"], 400), style="red")
        elif view.gone:
            out.append("\nthe run folder was deleted", style="red")
        self.head.update(out)

    def show_log(self, lines: list[str]) -> None:
        """The last lines of train.log that fit, cut at the panel's width (newest at the bottom)."""
        height = max(1, self.log_view.content_region.height or 4)
        shown = "\n".join(visible(line, 1000) for line in lines[-height:])
        self.log_view.update(Text(shown, no_wrap=True, overflow="ellipsis", style="dim"))

    def show_plot(self, view: RunView | None) -> None:
        if view is None:
            self.plot.set_series([], empty="no run selected")
            return
        self.plot.set_series(
            [
                Series("raw", view.steps, view.losses, style="grey50"),
                Series(f"smoothed {view.smoothing:.2f}", view.steps, view.smoothed, style="bold cyan"),
            ],
            empty="no loss rows yet" if not view.gone else "the run folder was deleted",
        )

    def show_evals(self, view: RunView | None) -> None:
        if view is None or not view.evals:
            self.evals.update(Text("no evaluation yet", style="dim"))
            return
        best = view.best_eval()
        # one space between columns: the table fits the 38-column panel of an 80x24 terminal
        table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 1), header_style="bold", expand=False)
        table.add_column("step", justify="right")
        for key in EVAL_KEYS:
            table.add_column(key.replace("@0.", "@."), justify="right")
        for row in view.evals:
            mark = row is best
            step = row.get("step", "?")
            table.add_row(
                Text(("★" if mark else "") + (str(step) if whole(step) is not None else "?")),
                *(number(row.get(k)) for k in EVAL_KEYS),
                style="bold green" if mark else "",
            )
        self.evals.update(table)
        self.evals_box.scroll_end(animate=False)
