"""The window-analysis lab: groups and windows, recomputed live as k, alpha, min window change.

Every edit of a parameter schedules a recompute (debounced) in an exclusive thread worker; a
newer edit cancels the running one through the engine's `cancel` callable, so typing never
waits for a compute. The tables hold only numpy arrays of window ids and draw the rows on
screen, so they stay fast at Ego4D scale (7.6M windows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.validation import Number
from textual.widgets import Footer, Input, Label, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from nlq_tui.bindings import GROUP_BINDINGS, LAB_BINDINGS
from nlq_tui.context import IndexChanged
from nlq_tui.safe_text import content, notify, plain_text
from nlq_tui.widgets import ClipTimeline, Column, Histogram, NavBar, TimelineMark, VirtualTable
from nlq_tui.workers import report_error

if TYPE_CHECKING:
    import numpy as np

    from engine.windows import WindowParams, WindowResult

NEWLINE = Content("\n")  # content() shows a str's newline as a space: line breaks are Content
NARROW = 100  # below this many columns (an 80x24 terminal) the layout tightens (`.-narrow`)
DEBOUNCE_S = 0.05  # folds a burst of keystrokes; a running compute is cancelled anyway
MAX_VIDEO_MATCHES = 5000
DEFAULTS = {"k": "5", "alpha": "4.9", "min_window": "1.0", "pass": "1"}


def _n(x: int) -> str:
    return f"{x:,}"


def _sec(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _short(uid: str, width: int = 8) -> str:
    return uid[:width]


@dataclass
class Filters:
    reason: str | None = None  # a reason key, or None for any reason
    video: str = ""  # a video uid or the start of one


@dataclass
class LabOutcome:
    """What a recompute worker hands back to the screen."""

    result: WindowResult | None
    summary: dict | None
    bad: Any  # np.ndarray of window ids, or of run rows when `bad_runs`
    bad_runs: bool
    good: Any
    video_note: str
    seq: int
    reason: str | None = None  # the reason filter these rows were selected with


def select_rows(
    result: WindowResult, filters: Filters, want_good: bool = True
) -> tuple[np.ndarray, bool, np.ndarray | None, str]:
    """(not-usable ids, whether they are run rows, usable ids, a note on the video filter).

    The usable ids are most of the windows (millions at Ego4D scale); without `want_good`
    they are not gathered (None) until the Usable tab is shown."""
    import numpy as np

    from engine.windows import REASON_CODE, RUN_REASONS

    index = result.index
    videos: list[int] | None = None
    note = ""
    text = filters.video.strip()
    if text:
        if index.has_video(text):
            videos = [index.video_number(text)]
        else:
            videos = [i for i, u in enumerate(index.video_uids) if u.startswith(text)][: MAX_VIDEO_MATCHES + 1]
            if not videos:
                note = f"no video uid starts with {text!r}"
            elif len(videos) > MAX_VIDEO_MATCHES:
                note = f"more than {MAX_VIDEO_MATCHES:,} videos match; type more of the uid"
                videos = None
            elif len(videos) > 1:
                note = f"{len(videos):,} videos match"
    reason_code = REASON_CODE.get(filters.reason) if filters.reason else None
    if reason_code in RUN_REASONS:
        runs = result.rejected_runs(reason_code)
        if videos is not None:
            rowvid = getattr(getattr(result, "_prep", None), "rowvid", None)  # the engine's row -> video
            if rowvid is not None:
                runs = runs[np.isin(rowvid[runs], np.asarray(videos))]
            else:
                uids = {index.video_uids[v] for v in videos}
                runs = np.asarray([r for r in runs if result.narration(int(r))["video_uid"] in uids], dtype=np.int64)
        good = _collect(result, videos, usable=True) if want_good else None
        return runs, True, good, note
    bad = _collect(result, videos, usable=False, reason=filters.reason)
    good = _collect(result, videos, usable=True) if want_good else None
    return bad, False, good, note


def _collect(result: WindowResult, videos: list[int] | None, **kw) -> np.ndarray:
    import numpy as np

    if videos is None:
        return result.rows(**kw)
    parts = [result.rows(video=v, **kw) for v in videos]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def window_cells(res: WindowResult, ids, usable: bool) -> list[tuple[str, ...]]:
    """Table cells of the windows `ids`, computed for all of them at once."""
    import numpy as np

    from engine.windows import REASONS, WINDOW_REASONS

    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        return []
    k = res.k
    groups = ids // k
    _t, start, end = res.window_fields(ids)
    bits = res.reason_bits[ids]
    clips = res.group_clip[groups]
    clip_start = res.index.clip_start[clips]
    out = []
    for j, w in enumerate(ids.tolist()):
        g = int(groups[j])
        n = res.narration(int(res.group_row[g]) + w % k)
        cs = float(clip_start[j])
        s, e = float(start[j]), float(end[j])
        span = "—" if s != s else f"{s - cs:.1f}–{e - cs:.1f}"  # NaN: the video has no beta
        head = (
            f"{g + 1:,}",
            _short(n["video_uid"]),
            _short(res.index.clip_uids[int(clips[j])]),
            f"{n['t'] - cs:.1f}",
            span,
        )
        if usable:
            out.append(head + (_sec(e - s), n["text"]))
        else:
            b = int(bits[j])
            reasons = ",".join(REASONS[c][0] for c in WINDOW_REASONS if b & (1 << (c - 1)))
            out.append(head + (reasons, n["text"]))
    return out


def run_cells(res: WindowResult, row: int, reason: str) -> tuple[str, ...]:
    """Table cells of a run that is not a group (it has no clip and no window)."""
    n = res.narration(row)
    return ("—", _short(n["video_uid"]), "—", f"{n['t']:.1f}", "—", reason, n["text"])


class GroupScreen(ModalScreen[None]):
    """One group: its k narrations with timestamps, and their windows on the parent clip."""

    BINDINGS = GROUP_BINDINGS

    def __init__(self, result: WindowResult, group: int, focus_window: int | None = None) -> None:
        super().__init__()
        self.result = result
        self.group = int(group)
        self.focus_window = focus_window

    def compose(self) -> ComposeResult:
        with Vertical(id="group-box"):
            yield Static(id="group-title")
            with VerticalScroll(id="group-body"):
                yield ClipTimeline(id="group-timeline")
                yield Static(id="group-table")
            yield Static("[dim]esc: close · green: usable · red: not usable · ● narration time[/]", id="group-hint")

    def on_mount(self) -> None:
        res = self.result
        windows = [res.describe_window(int(w)) for w in res.group_windows(self.group)]
        first = windows[0]
        cs, ce = first["clip_start"], first["clip_end"]
        self.query_one("#group-title", Static).update(
            content(
                (f"Group {self.group + 1:,}", "bold"),
                f" of {res.n_groups:,}  ·  beta {_sec(first['beta'])} s  ·  d {_sec(first['d'])} s",
                NEWLINE,
                ("video", "dim"),
                " ",
                first["video_uid"],
                NEWLINE,
                ("clip", "dim"),
                "  ",
                first["clip_uid"],
                f" ({cs:.1f}–{ce:.1f} s of the video)",
            )
        )
        table = Table(box=None, expand=True, pad_edge=False, header_style="bold")
        table.add_column("#", justify="right", width=3)
        table.add_column("t (clip)", justify="right", width=8)
        table.add_column("window (clip)", justify="right", width=13)
        table.add_column("dur", justify="right", width=5)
        table.add_column("status", width=16, no_wrap=True, overflow="ellipsis")
        table.add_column("narration", ratio=1, no_wrap=True, overflow="ellipsis")
        marks = []
        for n, w in enumerate(windows, start=1):
            ok = w["reason"] is None
            status = Text("usable", style="green") if ok else Text(",".join(w["reasons"]), style="red")
            if w["start"] is None:
                span = "—"
            else:
                span = f"{w['start'] - cs:.1f}–{w['end'] - cs:.1f}"
            row_style = "reverse" if self.focus_window is not None and w["window"] == self.focus_window else ""
            text = plain_text(w["text"], newlines=False)  # data: never markup, controls visible
            table.add_row(str(n), f"{w['t'] - cs:.1f}", span, _sec(w["duration"]), status, text, style=row_style)
            if w["start"] is not None:
                marks.append(
                    TimelineMark(
                        w["start"],
                        w["end"],
                        w["t"],
                        label=str(n),
                        style="green" if ok else "red",
                        flag="" if ok else "!",
                    )
                )
            else:
                marks.append(TimelineMark(w["t"], w["t"], w["t"], label=str(n), style="red", flag="!"))
        self.query_one("#group-table", Static).update(table)
        self.query_one(ClipTimeline).set_clip(cs, ce, marks)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def action_dismiss(self) -> None:
        self.dismiss(None)


class LabScreen(Screen):
    """k, alpha, min window and pass in; figures, histogram and window tables out, live."""

    CSS_PATH = Path(__file__).with_name("lab.tcss")  # absolute: subclasses elsewhere keep it
    BINDINGS = LAB_BINDINGS
    AUTO_FOCUS = "#bad-table"  # not an input: the number keys must switch screens

    class FiguresUpdated(Message):
        """The summary on screen now shows `params`; `latency` is seconds since the last edit."""

        def __init__(self, params: WindowParams, latency: float, compute_seconds: float) -> None:
            super().__init__()
            self.params = params
            self.latency = latency
            self.compute_seconds = compute_seconds

    def __init__(self) -> None:
        super().__init__()
        self.result: WindowResult | None = None
        self.summary: dict | None = None
        self.filters = Filters()
        self._seq = 0
        self._applied_seq = 0
        self._edited_at = time.perf_counter()
        self._pending = None
        self._bad_runs = False
        self._bad = None
        self._good = None
        self._rows_result: WindowResult | None = None

    # layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NavBar()
        with Horizontal(id="lab-params"):
            yield Label("k", classes="param-label")
            yield Input(
                DEFAULTS["k"], id="k", type="integer", compact=True, validators=[Number(minimum=1, maximum=1000)]
            )
            yield Label("alpha", classes="param-label")
            yield Input(DEFAULTS["alpha"], id="alpha", type="number", compact=True, validators=[Number(minimum=1e-6)])
            yield Label("min win", classes="param-label")
            yield Input(
                DEFAULTS["min_window"], id="min_window", type="number", compact=True, validators=[Number(minimum=0)]
            )
            yield Label("pass", classes="param-label")
            yield Select(
                [("1", "1"), ("2", "2"), ("both", "both")], value="1", id="pass", allow_blank=False, compact=True
            )
            yield Static("", id="lab-state")
        with Horizontal(id="lab-body"):
            with VerticalScroll(id="lab-summary"):
                yield Static(id="figures")
                yield Static(id="percentiles")
                yield Static("[b]window duration[/] [dim](s)[/]", id="hist-title")
                yield Histogram(id="histogram")
            with TabbedContent(id="lab-tabs", initial="unusable"):
                with TabPane("Not usable", id="unusable"):
                    with Horizontal(classes="filters"):
                        yield Label("reason", classes="param-label")
                        yield Select([], prompt="any", id="reason", compact=True)
                        yield Label("video", classes="param-label")
                        yield Input(placeholder="uid or its start", id="video", compact=True)
                    yield VirtualTable(
                        [
                            Column("group", 7, "right", hide_below=75),
                            Column("video", 8),
                            Column("clip", 8, hide_below=60),
                            Column("t", 7, "right"),
                            Column("window", 11, "right", hide_below=50),
                            Column("reason", 14, style="red"),
                            Column("narration", None, min_width=12),
                        ],
                        id="bad-table",
                        empty_text="no data: load an Ego4D root on the Data screen (1)",
                    )
                with TabPane("Usable", id="usable"):
                    yield Static("", id="usable-note", classes="filters")
                    yield VirtualTable(
                        [
                            Column("group", 7, "right", hide_below=75),
                            Column("video", 8),
                            Column("clip", 8, hide_below=60),
                            Column("t", 7, "right"),
                            Column("window", 11, "right", hide_below=50),
                            Column("dur", 5, "right"),
                            Column("narration", None, min_width=12),
                        ],
                        id="good-table",
                        empty_text="no data: load an Ego4D root on the Data screen (1)",
                    )
        yield Footer()

    def on_mount(self) -> None:
        self._render_empty()
        # The engine (numpy) loads after the first paint, so that opening on the Lab is quick.
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        from engine.windows import REASONS

        self.query_one("#reason", Select).set_options((key, key) for _code, (key, _label) in sorted(REASONS.items()))
        if self.app.ctx.index is not None and self.result is None:
            self.schedule_recompute(immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    # parameters --------------------------------------------------------------------------
    def read_params(self) -> WindowParams | str:
        """The parameters in the inputs, or a one-line message about the first bad one."""
        from engine.errors import ConfigError
        from engine.windows import WindowParams

        raw = {name: self.query_one(f"#{name}", Input).value.strip() for name in ("k", "alpha", "min_window")}
        try:
            k = int(raw["k"])
        except ValueError:
            return f"k must be a whole number >= 1, got {raw['k']!r}"
        try:
            alpha, min_window = float(raw["alpha"]), float(raw["min_window"])
        except ValueError:
            bad = "alpha" if not _is_float(raw["alpha"]) else "min window"
            return f"{bad} must be a number, got {raw['alpha' if bad == 'alpha' else 'min_window']!r}"
        narration_pass = self.query_one("#pass", Select).value
        try:
            return WindowParams(k, alpha, min_window, narration_pass).validated()
        except ConfigError as exc:
            return str(exc)

    @on(Input.Changed, "#lab-params Input")
    def _param_changed(self, event: Input.Changed) -> None:
        self._edited_at = time.perf_counter()
        self.schedule_recompute()

    @on(Select.Changed, "#pass")
    def _pass_changed(self, event: Select.Changed) -> None:
        self._edited_at = time.perf_counter()
        self.schedule_recompute()

    def schedule_recompute(self, immediate: bool = False) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        if immediate:
            self._start_recompute()
        else:
            self._pending = self.set_timer(DEBOUNCE_S, self._start_recompute)

    def _start_recompute(self) -> None:
        self._pending = None
        index = self.app.ctx.index
        if index is None:
            self._render_empty()
            return
        params = self.read_params()
        if isinstance(params, str):
            self._set_state(content((params, "red")))
            return
        self._seq += 1
        self._set_state(content(("computing…", "dim")))
        self._recompute(
            index, params, Filters(self.filters.reason, self.filters.video), self._seq, self._usable_shown()
        )

    @work(thread=True, exclusive=True, group="lab", exit_on_error=False, name="lab-recompute")
    def _recompute(self, index, params: WindowParams, filters: Filters, seq: int, want_good: bool) -> LabOutcome | None:
        from engine.windows import compute

        worker = get_current_worker()
        result = compute(index, params, cancel=lambda: worker.is_cancelled)
        summary = result.summary()
        if worker.is_cancelled:
            return None
        # The figures go up first; the table rows (millions of ids) follow.
        self.app.call_from_thread(self._apply_figures, result, summary, seq)
        if worker.is_cancelled:
            return None
        bad, bad_runs, good, note = select_rows(result, filters, want_good)
        return LabOutcome(result, summary, bad, bad_runs, good, note, seq, filters.reason)

    @work(thread=True, exclusive=True, group="lab-rows", exit_on_error=False, name="lab-rows")
    def _refilter(self, result: WindowResult, filters: Filters, seq: int, want_good: bool) -> LabOutcome:
        bad, bad_runs, good, note = select_rows(result, filters, want_good)
        return LabOutcome(result, None, bad, bad_runs, good, note, seq, filters.reason)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group not in ("lab", "lab-rows"):
            return
        if event.state == WorkerState.SUCCESS:
            outcome: LabOutcome | None = worker.result
            if outcome is None:
                return
            if worker.group == "lab":
                if outcome.seq == self._applied_seq:
                    self._apply_rows(outcome)
            elif self.result is not None and outcome.result is self.result:
                self._apply_rows(outcome)
        elif event.state == WorkerState.ERROR:
            from engine.windows import Cancelled

            exc = worker.error
            if isinstance(exc, Cancelled):
                return
            message = report_error(self, exc, title="Lab")
            self._set_state(content((message, "red")))

    # rendering ----------------------------------------------------------------------------
    def _set_state(self, state) -> None:
        self.query_one("#lab-state", Static).update(state)

    def _render_empty(self) -> None:
        ctx = self.app.ctx
        if ctx.index is None:
            msg = ctx.load_error or ("loading…" if ctx.data_root is not None else "no data root")
            self.query_one("#figures", Static).update(
                content(
                    ("No data loaded", "bold"),
                    NEWLINE,
                    (msg, "dim"),
                    Content("\n\nChoose an Ego4D root on the Data screen (press 1)."),
                )
            )
            self._set_state("")

    def _apply_figures(self, res: WindowResult, summary: dict, seq: int) -> None:
        if seq != self._seq:  # a newer edit is on its way
            return
        self.result = res
        self.summary = summary
        self._applied_seq = seq
        self._render_figures(summary)
        self._set_state(content((f"{res.compute_seconds:.2f} s", "dim")))
        latency_from = self._edited_at
        # Stamp after the next paint: that is when the user sees the new figures.
        self.call_after_refresh(
            lambda: self.post_message(
                self.FiguresUpdated(res.params, time.perf_counter() - latency_from, res.compute_seconds)
            )
        )

    def _render_figures(self, s: dict) -> None:
        from engine.windows import REASONS, RUN_REASONS

        windows = max(s["windows"], 1)
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        grid.add_column(justify="right")
        grid.add_column(justify="right", style="dim", width=6)
        grid.add_row("[b]groups[/]", _n(s["groups"]), "")
        grid.add_row("[b]windows[/]", _n(s["windows"]), "")
        grid.add_row("[b green]usable[/]", _n(s["usable"]), f"{100 * s['usable'] / windows:.1f}%")
        grid.add_row(
            "[b red]not usable[/]",
            _n(s["windows"] - s["usable"]),
            f"{100 * (s['windows'] - s['usable']) / windows:.1f}%",
        )
        reasons = s["reasons"]
        for code, (key, _label) in sorted(REASONS.items()):
            if code in RUN_REASONS:
                continue
            grid.add_row(f"  {key.replace('_', ' ')}", _n(reasons.get(key, 0)), "")
        grid.add_row("[b]runs not grouped[/]", "", "")
        for code in RUN_REASONS:
            key = REASONS[code][0]
            grid.add_row(f"  {key.replace('_', ' ')}", _n(reasons.get(key, 0)), "")
        pct = s.get("seconds") or {}
        grid.add_row("[b]duration[/] [dim]s[/]", "", "")
        self.query_one("#figures", Static).update(grid)
        ptab = Table.grid(padding=(0, 1), expand=True)
        qs = (5, 25, 50, 75, 95)
        for _q in qs:
            ptab.add_column(justify="right", ratio=1)
        ptab.add_row(*(f"[dim]p{q}[/]" for q in qs))
        ptab.add_row(*(_sec(pct.get(f"p{q}")) for q in qs))
        self.query_one("#percentiles", Static).update(ptab)
        hist = s.get("histogram") or {}
        self.query_one(Histogram).set_data(hist.get("counts", []), hist.get("edges", [0, 1]))

    def _apply_rows(self, outcome: LabOutcome) -> None:
        res = outcome.result
        if res is None:
            return
        self._rows_result = res
        self._bad, self._bad_runs, self._good = outcome.bad, outcome.bad_runs, outcome.good
        bad_table = self.query_one("#bad-table", VirtualTable)
        good_table = self.query_one("#good-table", VirtualTable)
        bad, good = outcome.bad, outcome.good
        if outcome.bad_runs:
            reason = outcome.reason or ""
            bad_table.set_source(
                len(bad), lambda i: run_cells(res, int(bad[i]), reason), empty_text="no runs with this reason"
            )
        else:
            bad_table.set_source(
                len(bad),
                fetch_block=lambda a, b: window_cells(res, bad[a:b], False),
                empty_text="no not-usable windows",
            )
        if good is None:
            good_table.set_source(0, lambda i: (), empty_text="listing the usable windows…")
        else:
            good_table.set_source(
                len(good), fetch_block=lambda a, b: window_cells(res, good[a:b], True), empty_text="no usable windows"
            )
        tabs = self.query_one(TabbedContent)
        tabs.get_tab("unusable").label = f"Not usable {_n(len(bad))}" + (" runs" if outcome.bad_runs else "")
        n_good = len(good) if good is not None else (res.n_usable if not self.filters.video.strip() else None)
        tabs.get_tab("usable").label = "Usable" + (f" {_n(n_good)}" if n_good is not None else "")
        note = outcome.video_note
        counted = _n(n_good) if n_good is not None else "counting"
        self.query_one("#usable-note", Static).update(
            content((f"{counted} usable windows" + (f" · video filter: {note}" if note else ""), "dim"))
        )
        if note:
            notify(self, note, title="video filter", timeout=3)

    # filters ---------------------------------------------------------------------------------
    @on(Select.Changed, "#reason")
    def _reason_changed(self, event: Select.Changed) -> None:
        self.filters.reason = None if event.value is Select.BLANK else str(event.value)
        self._refilter_now()

    @on(Input.Changed, "#video")
    def _video_changed(self, event: Input.Changed) -> None:
        self.filters.video = event.value
        self._refilter_now()

    def _refilter_now(self) -> None:
        if self.result is not None:
            self._refilter(
                self.result, Filters(self.filters.reason, self.filters.video), self._applied_seq, self._usable_shown()
            )

    def _usable_shown(self) -> bool:
        return self.query_one(TabbedContent).active == "usable"

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self._usable_shown() and self._good is None and self._rows_result is not None:
            self._refilter(self._rows_result, Filters(self.filters.reason, self.filters.video), self._applied_seq, True)

    # opening a group -----------------------------------------------------------------------
    @on(VirtualTable.RowSelected)
    def _open_row(self, event: VirtualTable.RowSelected) -> None:
        res = self._rows_result  # the result the tables' rows come from
        if res is None:
            return
        if event.table.id == "bad-table":
            if self._bad_runs:
                self.notify("a run that is not a group has no parent clip and no windows", title="Lab")
                return
            w = int(self._bad[event.row])
        else:
            w = int(self._good[event.row])
        self.app.push_screen(GroupScreen(res, w // res.k, focus_window=w))

    # index -------------------------------------------------------------------------------------
    def on_index_changed(self, event: IndexChanged) -> None:
        if event.error is None:
            self.schedule_recompute(immediate=True)
        elif self.result is None:
            self._render_empty()

    # actions ---------------------------------------------------------------------------------
    def action_leave_input(self) -> None:
        table = "#good-table" if self._usable_shown() else "#bad-table"
        self.query_one(table, VirtualTable).focus()

    def action_focus_params(self) -> None:
        self.query_one("#alpha", Input).focus()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one("#bad-table" if tab == "unusable" else "#good-table", VirtualTable).focus()

    def action_focus_reason(self) -> None:
        self.query_one(TabbedContent).active = "unusable"
        self.query_one("#reason", Select).focus()

    def action_focus_video(self) -> None:
        self.query_one(TabbedContent).active = "unusable"
        self.query_one("#video", Input).focus()

    def action_defaults(self) -> None:
        for name in ("k", "alpha", "min_window"):
            self.query_one(f"#{name}", Input).value = DEFAULTS[name]
        self.query_one("#pass", Select).value = DEFAULTS["pass"]


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
