"""The Train screen: launch runs in the background and watch them live; stop, resume, compare
(docs/ARCHITECTURE.md, "Runs").

Runs are folders plus a process (engine/runs.py): the screen holds nothing a run needs, so
quitting it (or losing the SSH connection) leaves runs running, and opening it again shows them
live again. Every half second a thread worker reads only what is new: the selected run's
metrics rows through `RunTail` (new bytes only), its status.json, train.log's tail when its
size changed, the runs list every second and the GPUs every two seconds. The screen keeps the
rows; a worker never touches what the screen draws.

The screen wires four components (nlq_tui/widgets/train_*.py) to the engine: `RunsPane` (the
list and the selected run), `NewRunPane` (the form, built from the settings' declarations),
`ComparePane` and `ExperimentPane` (an experiment's table, `e` starts one). Each worker returns a
typed `WorkerResult` message (nlq_tui/workers.py); failures go through `report_error`, a
repeating one said once. That a run ended is said app-wide (nlq_tui/widgets/train_watch.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Select, SelectionList, TabbedContent
from textual.worker import Worker, WorkerState

from nlq_tui.bindings import TRAIN_BINDINGS
from nlq_tui.safe_text import notify
from nlq_tui.widgets import NavBar, VirtualTable
from nlq_tui.widgets.train_compare import ComparePane
from nlq_tui.widgets.train_experiment import ExperimentPane
from nlq_tui.widgets.train_form import NewRunPane
from nlq_tui.widgets.train_modals import ExperimentDialog, RunFolderScreen, TrainConfirm
from nlq_tui.widgets.train_runs import RunsPane, gpu_text
from nlq_tui.widgets.train_view import SMOOTHING_STEPS, RunView
from nlq_tui.workers import WorkerResult, error_message, report_error, worker_error

if TYPE_CHECKING:
    from rich.text import Text

    from engine.gpu import GpuReading
    from engine.runs import Run, RunIndex, RunTail, TailUpdate

POLL_S = 0.5
LIST_EVERY = 2  # ticks: the runs list every second
GPU_EVERY = 4  # ticks: the GPUs every two seconds
COMPARE_EVERY = 6  # ticks: compared runs every three seconds while the Compare tab shows
LOG_BYTES = 8192
WORKER_GROUPS = ("train-poll", "train-compare", "train-action", "train-gpu", "train-preview", "train-exp")


@dataclass(eq=False)
class PollResult(WorkerResult, bubble=False):
    """What one poll read: the selected run's new rows, status, log tail; the runs list."""

    token: int
    run_id: str | None
    update: TailUpdate | None
    log: list[str] | None  # None: train.log did not change
    log_size: int
    config: dict | None
    summaries: list[dict] | None
    problem: str | None = None  # why WS/runs cannot hold runs (a file in its place)


@dataclass(eq=False)
class GpuRead(WorkerResult, bubble=False):
    reading: GpuReading


@dataclass(eq=False)
class SchedulePreview(WorkerResult, bubble=False):
    """What the schedule rule picks for a preset's training set (None, and why, when unknown)."""

    stage: str
    preview: dict | None
    note: str = ""


@dataclass(eq=False)
class CompareResult(WorkerResult, bubble=False):
    picked: list[dict]  # {"id", "stage", "rows"}


@dataclass(eq=False)
class ActionDone(WorkerResult, bubble=False):
    """An action on a run (launch, stop, resume, delete, an experiment) went through."""

    message: str
    select: str | None = None  # a run to select (a new run)
    tab: str | None = None  # a tab to show


@dataclass(eq=False)
class ExperimentRead(WorkerResult, bubble=False):
    ids: list[str]  # every experiment, newest first
    view: dict | None  # the shown one: plan, rows, arms, gains, state


class TrainScreen(Screen):
    """Runs list, the selected run live, the launch form, the comparison and the experiments."""

    CSS_PATH = Path(__file__).with_name("train.tcss")
    BINDINGS = TRAIN_BINDINGS
    AUTO_FOCUS = "#runs"

    def __init__(self) -> None:
        super().__init__()
        self.tabs = TabbedContent(id="train-tabs", initial="runs-pane")
        self.runs = RunsPane()
        self.form = NewRunPane()
        self.compare = ComparePane()
        self.experiment = ExperimentPane()
        self.summaries: list[dict] = []
        self.selected: str | None = None
        self.view: RunView | None = None
        self.config: dict | None = None
        self.gpu: GpuReading | None = None
        self.picked: list[str] = []
        self.smoothing_i = SMOOTHING_STEPS.index(0.8)
        self._tail: RunTail | None = None
        self._index: RunIndex | None = None  # the poll worker's own (one poll runs at a time)
        self._token = 0
        self._log_size = -1
        self._ticks = 0
        self._busy: set[str] = set()  # worker groups with a worker on its way
        self._poll_again = False
        self._cmp_tails: dict[str, tuple[Any, list[dict]]] = {}  # the compare worker's own
        self._gpu_monitor = None
        self._launching = False
        self._exp_chosen: str | None = None  # the experiment started last
        self._last_error: str | None = None
        self._problem: str | None = None  # WS/runs is unusable: said on the empty panel
        self.polls = 0  # applied poll results (tests wait on it)

    def compose(self) -> ComposeResult:
        yield NavBar()
        with self.tabs:
            yield self.runs
            yield self.form
            yield self.compare
            yield self.experiment
        yield Footer()

    def on_mount(self) -> None:
        self._stage_changed_to("baseline")
        self._show_nothing()
        self.set_interval(POLL_S, self._tick)
        self._start_poll(full=True)

    # workers ---------------------------------------------------------------------------------------
    def _active(self) -> bool:
        return getattr(self.app, "current_mode", "train") == "train"

    def _tick(self) -> None:
        self._ticks += 1
        if not self._active():
            return
        if "train-poll" not in self._busy:  # a slow poll (a loaded box) is not queued behind itself
            self._start_poll(full=False)
        if self._ticks % GPU_EVERY == 0:
            self._start_gpu()
        if self._ticks % COMPARE_EVERY == 0 and self.tabs.active == "compare-pane":
            self._start_compare()
        if self._ticks % COMPARE_EVERY == 0 and self.tabs.active == "experiment-pane":
            self._start_experiment_read()

    def _start_poll(self, full: bool) -> None:
        if "train-poll" in self._busy:
            self._poll_again = True
            return
        self._busy.add("train-poll")
        self._poll_again = False
        if self._index is None:
            from engine.runs import RunIndex

            self._index = RunIndex(self.app.ctx.workspace)
        want_list = full or self._ticks % LIST_EVERY == 0
        self._poll(self._tail, self._token, self._log_size, self.config is None and self._tail is not None, want_list)
        if full:
            self._start_gpu()

    def _start_gpu(self) -> None:
        # its own worker: a slow or hung nvidia-smi (2 s timeout) never holds up the metrics
        if "train-gpu" in self._busy:
            return
        self._busy.add("train-gpu")
        if self._gpu_monitor is None:
            from engine.gpu import GpuMonitor

            self._gpu_monitor = GpuMonitor()
        self._read_gpu(self._gpu_monitor)

    @work(thread=True, exclusive=True, group="train-gpu", exit_on_error=False, name="train-gpu")
    def _read_gpu(self, monitor) -> GpuRead:
        return GpuRead(monitor.read())

    @work(thread=True, exclusive=True, group="train-poll", exit_on_error=False, name="train-poll")
    def _poll(self, tail: RunTail | None, token: int, log_size: int, want_config: bool, want_list: bool) -> PollResult:
        from engine.runs import read_json, runs_problem

        summaries = problem = None
        if want_list and self._index is not None:
            summaries = self._index.summaries()
            problem = runs_problem(self._index.workspace)
        update = config = log = None
        size = log_size
        if tail is not None:
            update = tail.poll()  # never raises: a damaged folder reads as a failed run
            if want_config:
                config = read_json(tail.run.config_path) or {}
            try:
                size = os.stat(tail.run.log_path).st_size
            except OSError:
                size = -1
            if size != log_size:
                log = tail.log_tail(LOG_BYTES) if size >= 0 else []
        return PollResult(token, tail.run.id if tail else None, update, log, size, config, summaries, problem)

    def _start_compare(self) -> None:
        if "train-compare" in self._busy:
            return
        self._busy.add("train-compare")
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
            upd = tail.poll()
            rows = ([] if upd.reset else rows) + upd.rows
            self._cmp_tails[run_id] = (tail, rows)
            out.append({"id": run_id, "stage": stage, "rows": rows})
        return CompareResult(out)

    @work(thread=True, exclusive=False, group="train-action", exit_on_error=False, name="train-action")
    def _action(self, fn, done: ActionDone) -> ActionDone:
        fn()
        return done

    @work(thread=True, exclusive=False, group="train-action", exit_on_error=False, name="train-launch")
    def _launch(self, workspace, data_root, form: dict) -> ActionDone:
        from engine.run_config import start_run

        # the same call `nlq-tui train --detach` makes, so both start the same run
        values = {**form["values"], "data_root": str(data_root) if data_root else None}
        run = start_run(workspace, detach=True, values=values, nproc=form["nproc"])
        return ActionDone(f"run {run.id} started in the background", select=run.id)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group not in WORKER_GROUPS or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self._busy.discard(worker.group)
        if worker.name == "train-launch":
            self._launching = False
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, WorkerResult):
            self.post_message(worker.result)  # handled in order by on_poll_result & co.
        error = worker_error(event)
        if error is not None:
            self._report(error, worker.name)
        if worker.group == "train-poll" and self._poll_again:
            self._start_poll(full=False)

    def _report(self, error: BaseException, what: str) -> None:
        message = error_message(error, what)
        if what in ("train-poll", "train-gpu", "train-compare"):
            # these run every second or so: say a repeating failure once
            if self._last_error == message:
                return
            self._last_error = message
        report_error(self, error, title="Train", what=what)
        if what == "train-launch":
            self.form.say(message, "red")

    def on_compare_result(self, result: CompareResult) -> None:
        self.compare.show(result.picked, SMOOTHING_STEPS[self.smoothing_i])

    # applying results --------------------------------------------------------------------------------
    def _gpu_line(self) -> Text:
        if self.gpu is None:
            return gpu_text(None, False)
        return gpu_text(self.gpu.lines(), self.gpu.available)

    def on_gpu_read(self, result: GpuRead) -> None:
        reading = result.reading
        changed = self.gpu is None or reading.lines() != self.gpu.lines()
        self.gpu = reading
        if changed:
            if self.view is None:
                self._show_nothing()
            else:
                self._show_head()

    def on_poll_result(self, res: PollResult) -> None:
        self.polls += 1
        if res.summaries is not None:
            if res.problem and res.problem != self._last_error:
                notify(self, res.problem, title="Train", severity="error", timeout=8)
            self._last_error = res.problem
            if res.problem != self._problem:
                self._problem = res.problem
                self._show_nothing()
            self._apply_summaries(res.summaries)
        view = self.view
        if view is None or res.token != self._token or res.update is None:
            return
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
            self.runs.show_log(view.log)
        self._show_head()
        if rows_changed:
            self.runs.show_plot(view)
            self.runs.show_evals(view)

    def _apply_summaries(self, summaries: list[dict]) -> None:
        self.summaries = summaries
        ids = [s["id"] for s in summaries]
        if self.runs.show_summaries(summaries, self.picked, self.has_class("-narrow")):
            table = self.runs.table
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
        self.picked = [p for p in self.picked if p in ids]
        if self.compare.set_runs(summaries, self.picked):
            self.form.set_from_options(summaries)

    def on_action_done(self, done: ActionDone) -> None:
        if done.message:
            notify(self, done.message, title="Train")
        if done.select is not None:
            self.form.say(f"started {done.select}", "green")
            self.tabs.active = "runs-pane"
            self.runs.table.focus()
            self._select(done.select)
        if done.tab is not None:
            self.action_show_tab(done.tab)
        self._start_poll(full=True)

    # selection ---------------------------------------------------------------------------------------
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
        if run_id is None:
            self._tail, self.view = None, None
            self._show_nothing()
            return
        self.runs.show_log([])
        summary = self.selected_summary()
        path = Path(summary["path"]) if summary else self.app.ctx.workspace.runs_dir / run_id
        self._tail = RunTail(Run(path))
        self.view = RunView(run_id, smoothing=SMOOTHING_STEPS[self.smoothing_i])
        self._show_head()
        self.runs.show_plot(self.view)
        self.runs.show_evals(self.view)
        self._start_poll(full=False)

    def selected_summary(self) -> dict | None:
        return next((s for s in self.summaries if s["id"] == self.selected), None)

    def cursor_summary(self) -> dict | None:
        """The run under the list's cursor. Actions use it rather than `selected`: a key
        typed right after a cursor move may arrive before the highlight message does."""
        row = self.runs.table.cursor_row
        return self.summaries[row] if 0 <= row < len(self.summaries) else None

    def _show_nothing(self) -> None:
        if self.view is None:
            self.runs.show_nothing(self._gpu_line(), self._problem)

    def _show_head(self) -> None:
        if self.view is not None:
            smoothing = SMOOTHING_STEPS[self.smoothing_i]
            self.runs.show_head(self.view, self.config, self.selected_summary() or {}, self._gpu_line(), smoothing)

    # the form ----------------------------------------------------------------------------------------
    @on(NewRunPane.Launch)
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(SelectionList.SelectedChanged, "#cmp-pick")
    def _picks_changed(self, event: SelectionList.SelectedChanged) -> None:
        picked = list(event.selection_list.selected)
        if picked == self.picked:
            return
        self.picked = [s["id"] for s in self.summaries if s["id"] in picked]  # newest first, as listed
        self.runs.forget_list()  # redraw the pick column
        self._apply_summaries(self.summaries)
        self._start_compare()

    @on(Select.Changed, "#f-stage")
    def _stage_select(self, event: Select.Changed) -> None:
        self._stage_changed_to(str(event.value))

    def _stage_changed_to(self, stage: str) -> None:
        if stage == "finetune":  # a pretrain run may have written its first best.pt since
            self.form.set_from_options(self.summaries)
        self.form.show_schedule(None)  # the last preset's preview is not this one's
        self._stage_placeholders(stage)
        ctx = self.app.ctx
        self._preview(ctx.workspace, ctx.data_root, stage)

    @work(thread=True, exclusive=True, group="train-preview", exit_on_error=False, name="train-preview")
    def _preview(self, workspace, data_root, stage: str) -> SchedulePreview:
        from engine.errors import UserError
        from engine.run_config import schedule_preview

        try:  # counts the training set's queries: a worker, since the official file is large
            return SchedulePreview(stage, schedule_preview(workspace, data_root=data_root, stage=stage))
        except UserError as exc:  # nothing to count yet (no export, no root): the form says so, no alarm
            return SchedulePreview(stage, None, f"schedule rule: {exc}")

    def on_schedule_preview(self, result: SchedulePreview) -> None:
        if result.stage != str(self.form.stage.value):
            return  # the preset changed since
        self.form.show_schedule(result.preview, result.note)
        self._stage_placeholders(result.stage)

    def _stage_placeholders(self, stage: str) -> None:
        latest = None
        if stage == "pretrain":
            from engine.run_config import latest_export

            found = latest_export(self.app.ctx.workspace)
            latest = found.name if found else None
        self.form.show_stage(stage, latest, self.app.ctx.features)

    def read_form(self) -> dict | str:
        return self.form.read()

    def action_launch(self) -> None:
        if self.tabs.active != "new-pane":
            # F5 from the runs list must not start a run nobody looked at
            self.action_show_tab("new")
            hint = "check the form, then F5 (or the button) to launch"
            self.form.say(hint, "bold")
            notify(self, hint, title="New run")  # the form's own line is below the fold at 80x24
            return
        form = self.form.read()
        if isinstance(form, str):
            self.form.say(form, "red")
            return
        if self._launching:
            return  # a second F5 while the first launch is on its way
        self._launching = True
        self.form.say("starting…", "dim")
        ctx = self.app.ctx
        self._launch(ctx.workspace, ctx.data_root, form)

    # actions on the selected run ---------------------------------------------------------------------
    def _selected_run(self) -> Run | None:
        from engine.runs import Run

        s = self.cursor_summary()
        if s is None:
            notify(self, "no run selected", title="Train", severity="warning")
            return None
        return Run(s["path"])

    def action_stop(self) -> None:
        run = self._selected_run()
        if run is None:
            return
        st = run.status()
        if st["state"] != "running":
            notify(self, f"{run.id} is {st['state']}; nothing to stop", title="Train", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            from engine.runs import stop_run

            if yes:
                self._action(lambda: stop_run(run), ActionDone(f"stopping {run.id}: it saves last.pt and ends stopped"))

        self.app.push_screen(
            TrainConfirm(f"Stop {run.id}?", "SIGTERM: the run saves last.pt and ends `stopped`; r resumes it."), answer
        )

    def action_resume(self) -> None:
        from engine.errors import UserError
        from engine.run_config import secret_env_names
        from engine.runs import check_resumable, resume_run

        run = self._selected_run()
        if run is None:
            return
        try:
            check_resumable(run)
        except UserError as exc:
            notify(self, exc, title="Train", severity="warning")
            return
        secret = secret_env_names(self.app.ctx.workspace)
        self._action(lambda: resume_run(run, secret_env=secret), ActionDone(f"resuming {run.id}"))

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
        from engine.runs import delete_run

        run = self._selected_run()
        if run is None:
            return
        if run.status()["state"] == "running":
            notify(self, f"{run.id} is running: stop it (s) before deleting it", title="Train", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._action(lambda: delete_run(run), ActionDone(f"deleted {run.id}"))

        detail = f"Removes {run.path} with its checkpoints and predictions. This cannot be undone."
        self.app.push_screen(TrainConfirm(f"Delete {run.id}?", detail), answer)

    def action_pick(self) -> None:
        s = self.cursor_summary()
        if s is not None:
            self.compare.toggle(s["id"])

    def action_smoothing(self, delta: int) -> None:
        self.smoothing_i = max(0, min(len(SMOOTHING_STEPS) - 1, self.smoothing_i + delta))
        if self.view is not None:
            self.view.set_smoothing(SMOOTHING_STEPS[self.smoothing_i])
            self.runs.show_plot(self.view)
            self._show_head()
        if self.picked:
            self._start_compare()

    def action_show_tab(self, tab: str) -> None:
        self.tabs.active = f"{tab}-pane"
        if tab == "runs":
            self.runs.table.focus()
        elif tab == "new":
            self.form.stage.focus()
        elif tab == "compare":
            self.compare.pick.focus()
            self._start_compare()
        else:
            self.experiment.choice.focus()
            self._start_experiment_read()

    # experiments -------------------------------------------------------------------------------------
    def action_experiment(self) -> None:
        """Ask what to compare (prefilled with the newest export), then start it detached."""
        from engine.run_config import latest_export

        ctx = self.app.ctx
        if ctx.data_root is None:
            notify(
                self, "no data root: choose an Ego4D folder on the Data screen (1)", title="Train", severity="warning"
            )
            return
        latest = latest_export(ctx.workspace)

        def answer(choice: tuple[list[str], list[int]] | None) -> None:
            if choice is None:
                return
            specs, seeds = choice
            self._action(lambda: self._start_experiment(specs, seeds), ActionDone("", tab="experiment"))

        self.app.push_screen(ExperimentDialog(str(latest) if latest else ""), answer)

    def _start_experiment(self, specs: list[str], seeds: list[int]) -> None:
        """(A worker thread.) Plan it (exporting variants) and start its runner, as
        `nlq-tui experiment --pretrain ... --seeds ... --detach`."""
        from engine.experiment import start_experiment

        ctx = self.app.ctx
        plan = start_experiment(ctx.workspace, data_root=ctx.data_root, pretrain=specs, seeds=seeds)
        self._exp_chosen = plan.id
        jobs = len(plan.jobs())
        self.app.call_from_thread(notify, self, f"experiment {plan.id} started: {jobs} runs", title="Train")

    def _start_experiment_read(self) -> None:
        if "train-exp" in self._busy:
            return
        self._busy.add("train-exp")
        self._read_experiment(self.app.ctx.workspace, self.experiment.chosen() or self._exp_chosen)

    @work(thread=True, exclusive=True, group="train-exp", exit_on_error=False, name="train-exp")
    def _read_experiment(self, workspace, chosen: str | None) -> ExperimentRead:
        from engine.experiment.plan import experiment_dir, list_experiments
        from engine.experiment.report import arm_summary, experiment_table, gains
        from engine.experiment.runner import load_state, runner_alive

        plans = list(reversed(list_experiments(workspace)))
        plan = next((p for p in plans if p.id == chosen), plans[0] if plans else None)
        if plan is None:
            return ExperimentRead([], None)
        rows = experiment_table(workspace, plan)
        arms = arm_summary(rows, plan)
        state = load_state(experiment_dir(workspace, plan.id))
        record = state.get("runner") if isinstance(state.get("runner"), dict) else {}
        runner = "running" if runner_alive(state) else str(record.get("state") or "not started")
        view = {"plan": plan, "rows": rows, "arms": arms, "gains": gains(arms, plan), "state": f"runner {runner}"}
        return ExperimentRead([p.id for p in plans], view)

    def on_experiment_read(self, result: ExperimentRead) -> None:
        self.experiment.show(result.ids, result.view)

    @on(Select.Changed, "#exp-pick")
    def _experiment_picked(self) -> None:
        self._start_experiment_read()

    def on_resize(self) -> None:
        # the app marks screens on its own resizes; a screen opened first may miss that
        self.set_class(self.app.size.width < 100, "-narrow")
        self.runs.forget_list()  # the runs list's height depends on the width class
        self.call_after_refresh(lambda: self.runs.show_log(self.view.log if self.view else []))

    def on_screen_resume(self) -> None:
        self._start_poll(full=True)
