"""The Train screen: launch runs in the background and watch them live; stop, resume, compare.

Runs are folders plus a process (engine/runs.py): the screen holds nothing a run needs, so
quitting it (or losing the SSH connection) leaves runs running, and opening it again shows them
live again. Every half second a thread worker reads only what is new: the selected run's
metrics rows through `RunTail` (new bytes only), its status.json, train.log's tail when its
size changed, the runs list every second and the GPUs every two seconds. The screen keeps the
rows; a worker never touches what the screen draws.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, SelectionList, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from nlq_tui.widgets import Column, NavBar, VirtualTable
from nlq_tui.widgets.plot import LinePlot, Series
from nlq_tui.widgets.train_modals import RunFolderScreen, TrainConfirm
from nlq_tui.widgets.train_view import (
    EVAL_KEYS,
    SMOOTHING_STEPS,
    RunView,
    compare_rows,
    fmt_duration,
    pick_baseline,
    progress_text,
    short_id,
)

if TYPE_CHECKING:
    from engine.gpu import GpuReading
    from engine.runs import RunTail, TailUpdate

POLL_S = 0.5
LIST_EVERY = 2  # ticks: the runs list every second
GPU_EVERY = 4  # ticks: the GPUs every two seconds
COMPARE_EVERY = 6  # ticks: compared runs every three seconds while the Compare tab shows
LOG_BYTES = 8192
RUNS_ROWS, RUNS_ROWS_NARROW = 8, 4  # runs shown before the list scrolls (>= 100 columns, below)
COMPARE_COLORS = ("cyan", "magenta", "yellow", "green", "red", "bright_blue", "white")

TRAIN_BINDINGS: list[Binding] = [
    Binding("n", "show_tab('new')", "New run", id="train.new", tooltip="Presets and the short form for a new run"),
    Binding(
        "f5",
        "launch",
        "Launch",
        id="train.launch",
        tooltip="Start the run in the form, detached (as `nlq-tui train --detach`)",
    ),
    Binding(
        "s", "stop", "Stop", id="train.stop", tooltip="SIGTERM the selected run: it saves last.pt and ends stopped"
    ),
    Binding(
        "r",
        "resume",
        "Resume",
        id="train.resume",
        tooltip="Continue the selected stopped or failed run from its last.pt",
    ),
    Binding(
        "o",
        "folder",
        "Folder",
        id="train.folder",
        tooltip="Show the selected run's folder path and copy it to the clipboard",
    ),
    Binding("x", "delete", "Delete", id="train.delete", tooltip="Delete the selected run's folder (not while it runs)"),
    Binding("p", "pick", "Pick", id="train.pick", tooltip="Add the selected run to the comparison, or take it out"),
    Binding(
        "c",
        "show_tab('compare')",
        "Compare",
        id="train.compare",
        tooltip="Overlay the picked runs' loss and val R1 and their best figures",
    ),
    Binding(
        "v,escape",
        "show_tab('runs')",
        "Runs",
        id="train.runs",
        tooltip="The runs list and the selected run",
        show=False,
    ),
    # shown in the run's header line instead of the footer, which is full at 80 columns
    Binding(
        "left_square_bracket",
        "smoothing(-1)",
        "Less smoothing",
        key_display="[",
        id="train.smooth_less",
        show=False,
        tooltip="Less loss smoothing",
    ),
    Binding(
        "right_square_bracket",
        "smoothing(1)",
        "More smoothing",
        key_display="]",
        id="train.smooth_more",
        show=False,
        tooltip="More loss smoothing",
    ),
]

PRESETS = [
    ("Baseline: the official train split", "baseline"),
    ("Pretrain: an exported file", "pretrain"),
    ("Finetune: from a pretrain run", "finetune"),
]


@dataclass
class PollResult:
    token: int
    run_id: str | None
    update: TailUpdate | None
    log: list[str] | None  # None: train.log did not change
    log_size: int
    config: dict | None
    summaries: list[dict] | None


@dataclass
class CompareResult:
    picked: list[dict]  # {"id", "stage", "rows"}


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _num(x: Any, fmt: str = ".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "—"


def read_overrides(values: dict[str, str]) -> dict | str:
    """epochs, lr and batch_size from the form's text fields (blank: not set), or the first
    problem as one line naming the field."""
    out: dict[str, Any] = {}
    for key, label, kind in (("epochs", "epochs", int), ("lr", "lr", float), ("batch_size", "batch size", int)):
        text = values.get(key, "").strip()
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            return f"{label}: {text!r} is not a {'whole ' if kind is int else ''}number"
        if (kind is int and value < (0 if key == "epochs" else 1)) or (kind is float and value <= 0):
            return f"{label}: {text} is out of range"
        out[key] = value
    return out


class TrainScreen(Screen):
    """Runs list, the selected run live, the launch form and the comparison."""

    CSS_PATH = Path(__file__).with_name("train.tcss")
    BINDINGS = TRAIN_BINDINGS
    AUTO_FOCUS = "#runs"

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[dict] = []
        self.selected: str | None = None
        self.view: RunView | None = None
        self.config: dict | None = None
        self.gpu: GpuReading | None = None
        self.picked: list[str] = []
        self.smoothing_i = SMOOTHING_STEPS.index(0.8)
        self._tail: RunTail | None = None
        self._token = 0
        self._log_size = -1
        self._ticks = 0
        self._poll_busy = False
        self._poll_again = False
        self._cmp_busy = False
        self._cmp_tails: dict[str, tuple[Any, list[dict]]] = {}  # compare worker's own state
        self._summary_cache: dict[str, tuple[Any, dict]] = {}  # poll worker's own state
        self._gpu_monitor = None
        self._gpu_busy = False
        self._launching = False
        self._last_error: str | None = None
        self._list_key: tuple = ()
        self._pick_ids: tuple = ()
        self.polls = 0  # applied poll results (tests wait on it)

    # layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NavBar()
        with TabbedContent(id="train-tabs", initial="runs-pane"):
            with TabPane("Runs", id="runs-pane"):
                yield VirtualTable(
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
                yield Static("", id="run-head")
                with Horizontal(id="run-body"):
                    yield LinePlot(id="loss-plot", empty="no loss rows yet", x_label="step")
                    with VerticalScroll(id="evals-box"):
                        yield Static("", id="evals")
                yield Static("", id="run-log")
            with TabPane("New run", id="new-pane"):
                with VerticalScroll(id="form-scroll"):
                    with Grid(id="form"):
                        yield Label("preset")
                        yield Select(PRESETS, value="baseline", allow_blank=False, id="f-stage", compact=True)
                        yield Label("train file")
                        yield Input(id="f-train-file", compact=True, placeholder="official nlq_train.json")
                        yield Label("from run")
                        yield Select([], prompt="a pretrain run with a checkpoint", id="f-from", compact=True)
                        yield Label("epochs")
                        yield Input(id="f-epochs", compact=True, type="integer", placeholder="10")
                        yield Label("lr")
                        yield Input(id="f-lr", compact=True, placeholder="1e-4")
                        yield Label("batch size")
                        yield Input(id="f-batch", compact=True, type="integer", placeholder="32")
                        yield Label("width (dim)")
                        yield Input(id="f-dim", compact=True, type="integer", placeholder="128")
                        yield Label("text encoder")
                        yield Select(
                            [(n, n) for n in ("minilm", "bert", "glove")],
                            prompt="default (minilm)",
                            id="f-text",
                            compact=True,
                        )
                        yield Label("text path")
                        yield Input(
                            id="f-text-path", compact=True, placeholder="glove: vectors .txt; bert: model folder"
                        )
                        yield Label("features")
                        yield Input(id="f-features", compact=True)
                        yield Label("device")
                        yield Select(
                            [(n, n) for n in ("auto", "cpu", "cuda")],
                            prompt="default (auto; finetune: its run's)",
                            id="f-device",
                            compact=True,
                        )
                    with Horizontal(id="form-actions"):
                        yield Button("Launch (F5)", id="f-launch", variant="primary", compact=True)
                        yield Static("", id="launch-msg")
            with TabPane("Compare", id="compare-pane"):
                with Horizontal(id="cmp-body"):
                    yield SelectionList[str](id="cmp-pick")
                    with Vertical(id="cmp-right"):
                        yield Static("[b]loss[/] [dim](smoothed)[/]", classes="plot-title")
                        yield LinePlot(
                            id="cmp-loss", empty="pick runs on the left (or p on the Runs tab)", x_label="step"
                        )
                        yield Static("[b]val R1@0.3[/]", classes="plot-title")
                        yield LinePlot(id="cmp-r1", empty="no evaluations yet", y_min=0.0, x_label="step")
                        yield Static("", id="cmp-table")
        yield Footer()

    def on_mount(self) -> None:
        ctx = self.app.ctx
        self.query_one("#f-features", Input).placeholder = ctx.features
        self._stage_changed_to("baseline")
        self._render_detail_empty()
        self.set_interval(POLL_S, self._tick)
        self._start_poll(full=True)

    # polling -----------------------------------------------------------------------------------
    def _active(self) -> bool:
        return getattr(self.app, "current_mode", "train") == "train"

    def _tick(self) -> None:
        self._ticks += 1
        if not self._active():
            return
        if not self._poll_busy:  # a slow poll (a loaded box) is not queued behind itself
            self._start_poll(full=False)
        if self._ticks % GPU_EVERY == 0:
            self._start_gpu()
        if self._ticks % COMPARE_EVERY == 0 and self.query_one(TabbedContent).active == "compare-pane":
            self._start_compare()

    def _start_poll(self, full: bool) -> None:
        if self._poll_busy:
            self._poll_again = True
            return
        self._poll_busy = True
        self._poll_again = False
        want_list = full or self._ticks % LIST_EVERY == 0
        self._poll(self._tail, self._token, self._log_size, self.config is None and self._tail is not None, want_list)
        if full:
            self._start_gpu()

    def _start_gpu(self) -> None:
        # its own worker: a slow or hung nvidia-smi (2 s timeout) never holds up the metrics
        if self._gpu_busy:
            return
        self._gpu_busy = True
        if self._gpu_monitor is None:
            from engine.gpu import GpuMonitor

            self._gpu_monitor = GpuMonitor()
        self._read_gpu(self._gpu_monitor)

    @work(thread=True, exclusive=True, group="train-gpu", exit_on_error=False, name="train-gpu")
    def _read_gpu(self, monitor) -> GpuReading:
        return monitor.read()

    @work(thread=True, exclusive=True, group="train-poll", exit_on_error=False, name="train-poll")
    def _poll(self, tail: RunTail | None, token: int, log_size: int, want_config: bool, want_list: bool) -> PollResult:
        from engine.runs import list_runs, read_json

        summaries = None
        if want_list:
            summaries = self._list_summaries(list_runs(self.app.ctx.workspace))
        update = config = log = None
        size = log_size
        if tail is not None:
            update = safe_poll(tail)
            if want_config:
                config = read_json(tail.run.config_path) or {}
            try:
                size = os.stat(tail.run.log_path).st_size
            except OSError:
                size = -1
            if size != log_size:
                log = tail.log_tail(LOG_BYTES) if size >= 0 else []
        return PollResult(token, tail.run.id if tail else None, update, log, size, config, summaries)

    def _list_summaries(self, runs: list) -> list[dict]:
        """Summaries, newest first. A run that has ended is summarised again only when its
        status.json changes, so a long list costs one stat per ended run per refresh.
        (Poll worker only: one runs at a time and owns the cache.)"""
        cache = self._summary_cache
        out = []
        seen = set()
        for run in reversed(runs):
            seen.add(run.id)
            try:
                st = os.stat(run.status_path)
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            hit = cache.get(run.id)
            if hit is not None and hit[0] == stamp and stamp is not None and hit[1]["state"] != "running":
                out.append(hit[1])
                continue
            try:
                summary = run.summary()
            except OSError:
                continue  # deleted between the listing and the read
            except Exception as exc:  # a status.json with fields of the wrong type
                summary = {
                    "id": run.id,
                    "path": str(run.path),
                    "stage": "?",
                    "state": "failed",
                    "error": unreadable(run, exc),
                    "elapsed_s": None,
                }
            cache[run.id] = (stamp, summary)
            out.append(summary)
        for gone in set(cache) - seen:
            del cache[gone]
        return out

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        group = worker.group
        if group not in ("train-poll", "train-compare", "train-action", "train-gpu"):
            return
        if event.state == WorkerState.SUCCESS:
            if group == "train-gpu":
                self._gpu_busy = False
                self._apply_gpu(worker.result)
            elif group == "train-poll":
                self._poll_busy = False
                self._apply_poll(worker.result)
                if self._poll_again:
                    self._start_poll(full=False)
            elif group == "train-compare":
                self._cmp_busy = False
                self._apply_compare(worker.result)
            else:
                done = worker.result
                if callable(done):
                    done()
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            if group == "train-poll":
                self._poll_busy = False
            elif group == "train-compare":
                self._cmp_busy = False
            elif group == "train-gpu":
                self._gpu_busy = False
            elif worker.name == "train-launch":
                self._launching = False
            if event.state == WorkerState.ERROR:
                self._report(worker.error, worker.name)

    def _report(self, exc: BaseException | None, what: str) -> None:
        from engine.errors import UserError

        if isinstance(exc, UserError):
            message = str(exc)
        else:  # a bug: say so, keep the screen alive
            message = f"unexpected {type(exc).__name__} in {what}: {exc}"
        if what == "train-launch":
            self.query_one("#launch-msg", Static).update(f"[red]{escape(message)}[/]")
        elif what in ("train-poll", "train-gpu", "train-compare"):
            # these run every second or so: say a repeating failure once
            if self._last_error == message:
                return
            self._last_error = message
        self.notify(message, title="Train", severity="error", timeout=8)

    # applying a poll ---------------------------------------------------------------------------
    def _apply_gpu(self, reading: GpuReading) -> None:
        changed = self.gpu is None or reading.lines() != self.gpu.lines()
        self.gpu = reading
        if changed:
            if self.view is None:
                self._render_detail_empty()
            else:
                self._render_head()

    def _apply_poll(self, res: PollResult) -> None:
        self.polls += 1
        self._last_error = None
        if res.summaries is not None:
            self._apply_summaries(res.summaries)
        if self.view is None:
            return
        if res.token != self._token or res.update is None:
            return
        view = self.view
        upd = res.update
        if upd.reset:
            view.reset()
        rows_changed = view.add_rows(upd.rows) or upd.reset
        view.status = upd.status
        view.gone = upd.gone
        if res.config is not None:
            self.config = res.config
        self._log_size = res.log_size
        if res.log is not None:
            view.log = res.log
            self._render_log()
        self._render_head()
        if rows_changed:
            self._render_plot()
            self._render_evals()

    def _apply_summaries(self, summaries: list[dict]) -> None:
        key = tuple(
            (s["id"], s["state"], bool(s.get("pid")), s.get("step"), s.get("best_R1@0.3"), int(s.get("elapsed_s") or 0))
            for s in summaries
        )
        ids = tuple(s["id"] for s in summaries)
        self.summaries = summaries
        if key != self._list_key:
            self._list_key = key
            table = self.query_one("#runs", VirtualTable)
            rows = [self._summary_cells(s) for s in summaries]
            table.set_source(len(rows), lambda i: rows[i], keep_cursor=True)
            # as tall as the list (the plot gets the rest), up to a few rows
            most = RUNS_ROWS_NARROW if self.has_class("-narrow") else RUNS_ROWS
            table.styles.height = max(2, min(len(rows), most) + 1)
            if self.selected in ids:
                if table.cursor_row != ids.index(self.selected):
                    table.cursor_row = ids.index(self.selected)
            elif summaries:
                # reopened: the newest running run is the one the user came back for
                row = next((i for i, s in enumerate(summaries) if s["state"] == "running"), 0)
                table.cursor_row = row
                self._select(summaries[row]["id"])
            else:
                self._select(None)
        if ids != self._pick_ids:
            self._pick_ids = ids
            self.picked = [p for p in self.picked if p in ids]
            pick = self.query_one("#cmp-pick", SelectionList)
            pick.clear_options()
            pick.add_options(
                [(f"{short_id(s['id'])[6:]} {s['stage']}", s["id"], s["id"] in self.picked) for s in summaries]
            )
            self._refresh_from_options(summaries)

    def _summary_cells(self, s: dict) -> tuple[str, ...]:
        best = s.get("best_R1@0.3")
        return (
            short_id(s["id"]),
            str(s.get("stage", "?")),
            shown_state(s.get("state"), s.get("pid")),
            progress_text(s),
            _num(best),
            fmt_duration(s.get("elapsed_s")),
            "✓" if s["id"] in self.picked else "",
        )

    def _refresh_from_options(self, summaries: list[dict]) -> None:
        """The finetune form's choices: runs that have a checkpoint, pretrain runs first."""
        from engine.runs import Run

        options = []
        for s in sorted(summaries, key=lambda s: s.get("stage") != "pretrain"):
            run = Run(s["path"])
            if run.best_path.exists() or run.last_path.exists():
                best = s.get("best_R1@0.3")
                options.append((f"{short_id(s['id'])} {s['stage']} R1@0.3 {_num(best)}", s["id"]))
        sel = self.query_one("#f-from", Select)
        current = sel.value
        sel.set_options(options)
        if current in {v for _, v in options}:
            sel.value = current

    # selection -----------------------------------------------------------------------------------
    @on(VirtualTable.RowSelected, "#runs")
    def _row_selected(self, event: VirtualTable.RowSelected) -> None:
        self.action_folder()

    @on(VirtualTable.RowHighlighted, "#runs")
    def _row_highlighted(self, event: VirtualTable.RowHighlighted) -> None:
        if 0 <= event.row < len(self.summaries):
            self._select(self.summaries[event.row]["id"])

    def _select(self, run_id: str | None) -> None:
        if run_id == self.selected:
            return
        from engine.runs import Run, RunTail

        self.selected = run_id
        self._token += 1
        self._log_size = -1
        self.config = None
        self.query_one("#run-log", Static).update("")
        if run_id is None:
            self._tail, self.view = None, None
            self._render_detail_empty()
            return
        summary = next((s for s in self.summaries if s["id"] == run_id), None)
        path = Path(summary["path"]) if summary else self.app.ctx.workspace.runs_dir / run_id
        self._tail = RunTail(Run(path))
        self.view = RunView(run_id, smoothing=SMOOTHING_STEPS[self.smoothing_i])
        self._render_head()
        self._render_plot()
        self._render_evals()
        self._start_poll(full=False)

    def selected_summary(self) -> dict | None:
        return next((s for s in self.summaries if s["id"] == self.selected), None)

    def cursor_summary(self) -> dict | None:
        """The run under the list's cursor. Actions use it rather than `selected`: a key
        typed right after a cursor move may arrive before the highlight message does."""
        row = self.query_one("#runs", VirtualTable).cursor_row
        return self.summaries[row] if 0 <= row < len(self.summaries) else None

    # rendering -----------------------------------------------------------------------------------
    def _render_detail_empty(self) -> None:
        self.query_one("#run-head", Static).update(
            "[dim]No run selected. Press [b]n[/b] for a new run: presets Baseline, Pretrain, Finetune.[/]\n"
            + self._gpu_text()
        )
        self.query_one("#loss-plot", LinePlot).set_series([], empty="no run selected")
        self.query_one("#evals", Static).update("")

    def _gpu_text(self) -> str:
        if self.gpu is None:
            return "[dim]GPU …[/]"
        lines = self.gpu.lines()
        if not self.gpu.available:
            return f"[dim]{escape(lines[0])}[/]"
        return " · ".join(escape(x) for x in lines)

    def _render_head(self) -> None:
        view = self.view
        if view is None:
            return
        st = view.status or {}
        state = str(st.get("state", "…"))
        color = {"running": "green", "done": "cyan", "stopped": "yellow", "failed": "red"}.get(state, "white")
        shown = shown_state(state, st.get("pid"))
        cfg = self.config or {}
        train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
        batch = train.get("batch_size") if isinstance(train.get("batch_size"), int) else None
        nproc = cfg.get("nproc") if isinstance(cfg.get("nproc"), int) else 1
        summary = self.selected_summary() or {}
        step = _int(st.get("step"))
        if view.last_train and isinstance(view.last_train.get("step"), int):
            step = max(step or 0, view.last_train["step"])
        total = _int(st.get("total_steps"))
        line1 = (
            f"[b]{escape(view.run_id)}[/] · {escape(str(cfg.get('stage', summary.get('stage', '?'))))} · "
            f"[b {color}]{escape(shown)}[/]"
        )
        if step is not None:
            line1 += f" · step {step:,}" + (f"/{total:,}" if isinstance(total, int) else "")
        epochs = _int(st.get("epochs"))
        if epochs is not None:
            line1 += f" · epoch {min((_int(st.get('epoch')) or 0) + (1 if state == 'running' else 0), epochs)}/{epochs}"
        rate = view.steps_per_s(batch, nproc)
        parts = []
        if state == "running":
            parts.append(f"{rate:.2f} step/s" if rate else "— step/s")
            eta = view.eta_s(batch, nproc)
            parts.append(f"ETA {fmt_duration(eta)}" if eta is not None else "ETA —")
        if state != "running":
            parts.append(f"took {fmt_duration(summary.get('elapsed_s'))}")
        if view.lrs:
            parts.append(f"lr {view.lrs[-1]:.2e}")
        if view.losses:
            parts.append(f"loss {view.losses[-1]:.4f}")
        parts.append(f"smoothing {SMOOTHING_STEPS[self.smoothing_i]:.2f} [dim]\\[ ][/]")
        line2 = " · ".join(parts)
        lines = [line1, line2, self._gpu_text()]
        if state == "failed" and st.get("error"):
            lines.append(f"[red]{escape(str(st['error']))}[/]")
        elif view.gone:
            lines.append("[red]the run folder was deleted[/]")
        self.query_one("#run-head", Static).update("\n".join(lines))

    def _render_log(self) -> None:
        """The last lines of train.log that fit, cut at the panel's width (newest at the bottom)."""
        box = self.query_one("#run-log", Static)
        lines = self.view.log if self.view is not None else []
        height = max(1, box.content_region.height or 4)
        box.update(Text("\n".join(lines[-height:]), no_wrap=True, overflow="ellipsis", style="dim"))

    def _render_plot(self) -> None:
        view = self.view
        plot = self.query_one("#loss-plot", LinePlot)
        if view is None:
            plot.set_series([], empty="no run selected")
            return
        plot.set_series(
            [
                Series("raw", view.steps, view.losses, style="grey50"),
                Series(f"smoothed {view.smoothing:.2f}", view.steps, view.smoothed, style="bold cyan"),
            ],
            empty="no loss rows yet" if not view.gone else "the run folder was deleted",
        )

    def _render_evals(self) -> None:
        view = self.view
        box = self.query_one("#evals", Static)
        if view is None or not view.evals:
            box.update("[dim]no evaluation yet[/]")
            return
        best = view.best_eval()
        # one space between columns: the table fits the 38-column panel of an 80x24 terminal
        table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 1), header_style="bold", expand=False)
        table.add_column("step", justify="right")
        for key in EVAL_KEYS:
            table.add_column(key.replace("@0.", "@."), justify="right")
        for row in view.evals:
            mark = row is best
            table.add_row(
                ("★" if mark else "") + f"{row.get('step', '?')}",
                *(_num(row.get(k)) for k in EVAL_KEYS),
                style="bold green" if mark else "",
            )
        box.update(table)
        self.query_one("#evals-box", VerticalScroll).scroll_end(animate=False)

    # compare ---------------------------------------------------------------------------------------
    @on(SelectionList.SelectedChanged, "#cmp-pick")
    def _picks_changed(self, event: SelectionList.SelectedChanged) -> None:
        picked = list(event.selection_list.selected)
        if picked == self.picked:
            return
        self.picked = [s["id"] for s in self.summaries if s["id"] in picked]  # newest first, as listed
        self._list_key = ()  # redraw the pick column
        self._apply_summaries(self.summaries)
        self._start_compare()

    def _start_compare(self) -> None:
        if self._cmp_busy:
            return
        self._cmp_busy = True
        by_id = {s["id"]: s for s in self.summaries}
        self._compare([(i, by_id[i]["path"], by_id[i]["stage"]) for i in reversed(self.picked) if i in by_id])

    @work(thread=True, exclusive=True, group="train-compare", exit_on_error=False, name="train-compare")
    def _compare(self, picked: list[tuple[str, str, str]]) -> CompareResult:
        from engine.runs import RunTail

        keep = {i for i, _p, _s in picked}
        for gone in set(self._cmp_tails) - keep:
            del self._cmp_tails[gone]
        out = []
        for run_id, path, stage in picked:
            tail, rows = self._cmp_tails.get(run_id) or (RunTail(path), [])
            upd = safe_poll(tail)
            if upd.reset:
                rows = []
            rows = rows + upd.rows
            self._cmp_tails[run_id] = (tail, rows)
            out.append({"id": run_id, "stage": stage, "rows": rows})
        return CompareResult(out)

    def _apply_compare(self, res: CompareResult) -> None:
        from nlq_tui.widgets.train_view import ema

        weight = SMOOTHING_STEPS[self.smoothing_i]
        loss_series, r1_series = [], []
        for n, p in enumerate(res.picked):
            color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
            train = [
                r for r in p["rows"] if "loss" in r and "split" not in r and isinstance(r.get("loss"), (int, float))
            ]
            evals = [r for r in p["rows"] if r.get("split") == "val" and isinstance(r.get("R1@0.3"), (int, float))]
            label = f"{short_id(p['id'])[-4:]} {p['stage']}"
            loss_series.append(
                Series(label, [r["step"] for r in train], ema([r["loss"] for r in train], weight)[0], style=color)
            )
            r1_series.append(Series(label, [r["step"] for r in evals], [r["R1@0.3"] for r in evals], style=color))
        self.query_one("#cmp-loss", LinePlot).set_series(
            loss_series, empty="pick runs on the left (or p on the Runs tab)"
        )
        self.query_one("#cmp-r1", LinePlot).set_series(r1_series, empty="no evaluations yet")
        # one column per run, one row per figure: three runs fit the 80-column layout
        table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold", expand=False)
        table.add_column("best val", no_wrap=True)
        ref = pick_baseline(res.picked)
        compared = compare_rows(res.picked)
        for n, (p, _best, _diff) in enumerate(compared):
            color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
            head = Text(short_id(p["id"])[6:], style=f"bold {color}")
            head.append("\n" + p["stage"] + (" (ref)" if p is ref and len(compared) > 1 else ""), style="dim")
            table.add_column(head, justify="right", no_wrap=True)
        for key in EVAL_KEYS:
            cells = []
            for _p, best, diff in compared:
                if best is None or not isinstance(best.get(key), (int, float)):
                    cells.append(Text("—", style="dim"))
                    continue
                t = Text(f"{best[key]:.2f}")
                if diff is not None and key in diff:
                    d = diff[key]
                    t.append(f" {d:+.2f}", style="green" if d > 0 else "red" if d < 0 else "dim")
                cells.append(t)
            table.add_row(key, *cells)
        if not res.picked:
            self.query_one("#cmp-table", Static).update("")
            return
        note = Text(f"differences against {short_id(ref['id'])[6:]} ({ref['stage']})", style="dim")
        self.query_one("#cmp-table", Static).update(Group(table, note))

    # the form ----------------------------------------------------------------------------------------
    @on(Select.Changed, "#f-stage")
    def _stage_select(self, event: Select.Changed) -> None:
        self._stage_changed_to(str(event.value))

    def _stage_changed_to(self, stage: str) -> None:
        train_file = self.query_one("#f-train-file", Input)
        train_file.disabled = stage == "finetune"
        if stage == "finetune":  # a pretrain run may have written its first best.pt since
            self._refresh_from_options(self.summaries)
        self.query_one("#f-from", Select).disabled = stage != "finetune"
        if stage == "pretrain":
            from engine.run_config import latest_export

            latest = latest_export(self.app.ctx.workspace)
            train_file.placeholder = (
                f"latest export: {latest.name}" if latest else "no export yet: give an NLQ-format file"
            )
        elif stage == "baseline":
            train_file.placeholder = "official nlq_train.json"
        else:
            train_file.placeholder = "the official train split"
        for field_id, base, ft in (
            ("#f-epochs", "10", "the pretrain run's"),
            ("#f-lr", "1e-4", "half the pretrain run's"),
            ("#f-batch", "32", "the pretrain run's"),
        ):
            self.query_one(field_id, Input).placeholder = ft if stage == "finetune" else base

    def read_form(self) -> dict | str:
        """What the form asks for, as settings of `engine.runs.start_run` (blank: not set, as an
        absent `nlq-tui train` flag), or the first problem as one line naming the field."""
        stage = str(self.query_one("#f-stage", Select).value)
        values = {
            k: self.query_one(f"#f-{f}", Input).value
            for k, f in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch"))
        }
        numbers = read_overrides(values)
        if isinstance(numbers, str):
            return numbers
        settings: dict[str, Any] = {"stage": stage, **numbers}
        dim_text = self.query_one("#f-dim", Input).value.strip()
        if dim_text:
            try:
                settings["dim"] = int(dim_text)
            except ValueError:
                return f"width: {dim_text!r} is not a whole number"
        settings["text_encoder"] = _select_value(self.query_one("#f-text", Select))
        settings["text_path"] = self.query_one("#f-text-path", Input).value.strip() or None
        settings["device"] = _select_value(self.query_one("#f-device", Select))
        settings["features"] = self.query_one("#f-features", Input).value.strip() or None
        settings["from_run"] = None
        if stage == "finetune":
            settings["from_run"] = _select_value(self.query_one("#f-from", Select))
            if settings["from_run"] is None:
                return "from run: choose the pretrain run to start from"
        settings["train_file"] = (
            (self.query_one("#f-train-file", Input).value.strip() or None) if stage != "finetune" else None
        )
        return settings

    @on(Button.Pressed, "#f-launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active != "new-pane":
            # F5 from the runs list must not start a run nobody looked at
            self.action_show_tab("new")
            self.query_one("#launch-msg", Static).update("[b]check the form, then F5 (or the button) to launch[/]")
            return
        form = self.read_form()
        msg = self.query_one("#launch-msg", Static)
        if isinstance(form, str):
            msg.update(f"[red]{escape(form)}[/]")
            self.query_one(TabbedContent).active = "new-pane"
            return
        if self._launching:
            return  # a second F5 while the first launch is on its way
        self._launching = True
        msg.update("[dim]starting…[/]")
        ctx = self.app.ctx
        self._launch(ctx.workspace, ctx.data_root, form)

    @work(thread=True, exclusive=False, group="train-action", exit_on_error=False, name="train-launch")
    def _launch(self, workspace, data_root, form: dict):
        from engine.run_config import start_run

        # the same call `nlq-tui train --detach` makes, so both start the same run
        run = start_run(workspace, data_root=data_root, detach=True, **form)
        return lambda: self._launched(run.id)

    def _launched(self, run_id: str) -> None:
        self._launching = False
        self.query_one("#launch-msg", Static).update(f"[green]started {escape(run_id)}[/]")
        self.notify(f"run {run_id} started in the background", title="Train")
        self.query_one(TabbedContent).active = "runs-pane"
        self.query_one("#runs", VirtualTable).focus()
        self._select(run_id)
        self._start_poll(full=True)

    # actions on the selected run ---------------------------------------------------------------------
    def _selected_run(self):
        from engine.runs import Run

        s = self.cursor_summary()
        if s is None:
            self.notify("no run selected", title="Train", severity="warning")
            return None
        return Run(s["path"])

    def action_stop(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        st = run.status()
        if st["state"] != "running":
            self.notify(f"{run.id} is {st['state']}; nothing to stop", title="Train", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._act(lambda: _stop(run), f"stopping {run.id}: it saves last.pt and ends stopped")

        self.app.push_screen(
            TrainConfirm(f"Stop {run.id}?", "SIGTERM: the run saves last.pt and ends `stopped`; r resumes it."), answer
        )

    def action_resume(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        from engine.errors import UserError
        from engine.runs import check_resumable

        try:
            check_resumable(run)
        except UserError as exc:
            self.notify(str(exc), title="Train", severity="warning", markup=False)
            return

        workspace = self.app.ctx.workspace

        def resume() -> None:
            from engine.run_config import secret_env_names
            from engine.runs import resume_run

            resume_run(run, secret_env=secret_env_names(workspace))

        self._act(resume, f"resuming {run.id}")

    def action_folder(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        path = str(run.path)
        try:
            self.app.copy_to_clipboard(path)
        except Exception:
            pass  # a terminal without OSC 52 still shows the path below
        try:
            entries = sorted(p.name + ("/" if p.is_dir() else "") for p in run.path.iterdir())
        except OSError:
            entries = ["(the folder is gone)"]
        self.app.push_screen(RunFolderScreen(path, entries))

    def action_delete(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        st = run.status()
        if st["state"] == "running":
            self.notify(f"{run.id} is running: stop it (s) before deleting it", title="Train", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._act(lambda: _delete(run), f"deleted {run.id}")

        self.app.push_screen(
            TrainConfirm(
                f"Delete {run.id}?", f"Removes {run.path} with its checkpoints and predictions. This cannot be undone."
            ),
            answer,
        )

    def _act(self, fn, done_message: str) -> None:
        self._action(fn, done_message)

    @work(thread=True, exclusive=False, group="train-action", exit_on_error=False, name="train-action")
    def _action(self, fn, done_message: str):
        fn()

        def done() -> None:
            self.notify(done_message, title="Train")
            self._start_poll(full=True)

        return done

    def action_pick(self) -> None:
        s = self.cursor_summary()
        if s is None:
            return
        pick = self.query_one("#cmp-pick", SelectionList)
        try:
            pick.toggle(s["id"])
        except Exception:
            return

    def action_smoothing(self, delta: int) -> None:
        self.smoothing_i = max(0, min(len(SMOOTHING_STEPS) - 1, self.smoothing_i + delta))
        if self.view is not None:
            self.view.set_smoothing(SMOOTHING_STEPS[self.smoothing_i])
            self._render_plot()
            self._render_head()
        if self.picked:
            self._start_compare()

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = f"{tab}-pane"
        if tab == "runs":
            self.query_one("#runs", VirtualTable).focus()
        elif tab == "new":
            self.query_one("#f-stage", Select).focus()
        else:
            self.query_one("#cmp-pick", SelectionList).focus()
            self._start_compare()

    def on_resize(self) -> None:
        # the app marks screens on its own resizes; a screen opened first may miss that
        self.set_class(self.app.size.width < 100, "-narrow")
        self._list_key = ()  # the runs list's height depends on the width class
        self.call_after_refresh(self._render_log)

    def on_screen_resume(self) -> None:
        self._start_poll(full=True)


def shown_state(state: Any, pid: Any) -> str:
    """A running run without a pid yet is still importing torch and loading data: "starting"."""
    return "starting" if state == "running" and not pid else str(state or "?")


def unreadable(run, exc: BaseException) -> str:
    return f"{run.status_path}: unreadable ({type(exc).__name__}: {exc})"


def safe_poll(tail: RunTail) -> TailUpdate:
    """`tail.poll()`, except that a status.json the engine cannot make sense of reads as a
    failed run instead of raising after the new rows were consumed."""
    from engine.runs import TailUpdate

    if not tail.run.path.is_dir():
        return tail.poll()
    rows, reset = tail.read_new()
    try:
        status = tail.run.status()
    except OSError:
        status = {"state": "failed", "error": "the run folder was deleted"}
    except Exception as exc:
        status = {"state": "failed", "error": unreadable(tail.run, exc)}
    return TailUpdate(rows=rows, reset=reset, status=status)


def _select_value(select: Select) -> str | None:
    return None if select.is_blank() else str(select.value)


def _stop(run) -> None:
    from engine.runs import stop_run

    stop_run(run)


def _delete(run) -> None:
    from engine.runs import delete_run

    delete_run(run)
