"""The Review screen: one generated question at a time, decided from the keyboard, durably.

Every decision goes through `engine.store.CandidateStore`, which appends one fsynced line to
the decision journal before it returns; only then does the screen show the next candidate.
The store keeps a small row per candidate in memory (what filters and counts need) and reads
the full candidate (narrations, window, checks) from disk when it is shown, so opening the
queue at 100k candidates does not wait for 100k candidates to be parsed.

The store opens in a thread worker; a second nlq-tui on the same workspace finds the review
lock taken and the screen says so and stays read-only. New candidates from a running
generation job are picked up every few seconds (and on `r`).

With `--second-opinion` the queue is a random, blind sample of candidates another reviewer
decided: the first decision stays hidden, and this reviewer's decisions are kept beside it.
Every text from the candidates (questions, uids, narrations, reasons) is shown as plain `Text`
made visible by `engine.textsafe.visible` (nlq_tui/widgets/review_card.py), never as markup.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from engine.errors import UserError
from engine.store import CandidateStore, Filter, Row
from engine.textsafe import visible
from nlq_tui.bindings import REVIEW_BINDINGS
from nlq_tui.safe_text import notify
from nlq_tui.widgets import ClipTimeline, NavBar
from nlq_tui.widgets import review_card as card
from nlq_tui.widgets.review_export import EXPORT_GROUP, ExportFromReview
from nlq_tui.widgets.review_modals import (
    BulkChoice,
    BulkScreen,
    ConfirmScreen,
    FilterScreen,
    RejectReasonScreen,
)
from nlq_tui.workers import report_error

if TYPE_CHECKING:
    from engine.candidate import Candidate
    from engine.store import Step

FIRST_SLICE = 1 << 20  # bytes of shards read before the first card shows (~700 candidates)
SLICE = 16 << 20  # then this much per step while the user already works
REFRESH_S = 5.0  # how often new candidates from a running generation job are looked for


class ReviewScreen(ExportFromReview, Screen):
    """The review queue."""

    CSS_PATH = "review.tcss"
    BINDINGS = REVIEW_BINDINGS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.store: CandidateStore | None = None
        self.filter = Filter()
        self.queue: list[Row] = []
        self.queue_pos: dict[str, int] = {}
        self.pos = 0
        self.current: Row | None = None
        self.revisit = False  # the current one was picked from the recent list / an undo
        self.read_only: str | None = None
        self.opened_at = time.perf_counter()
        self.first_shown_at: float | None = None
        self.editing = False
        self.reading = True
        self._seen_rows = 0
        self._recent_key: tuple = ()
        self._filter_text: object = ""
        self.second_opinion = False  # a blind second look at what another reviewer decided
        self._blind_queue = False  # see _set_queue
        self._still_matching = 0  # see _set_queue
        self._gone = False  # unmounted: what the open worker still hands over is dropped

    # layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NavBar()
        yield Static("opening the candidate store…", id="progress")
        with Horizontal(id="review-body"):
            with VerticalScroll(id="card"):
                yield Static("", id="where")
                yield Static("", id="question")
                # Not selected on focus: an edit mostly mends a word, and a first key typed over
                # a selection would wipe the question. The keys are on its border (the footer
                # shows the screen's, which an Input with focus does not use).
                edit = Input("", id="edit", placeholder="the question, edited", select_on_focus=False)
                edit.border_subtitle = "Enter saves and accepts · Esc cancels"
                yield edit
                yield Static("", id="original")
                yield Static("", id="badges")
                yield Label("Narrations of the group", classes="section")
                yield Static("", id="narrations")
                yield Label("Window on the parent clip", classes="section")
                yield ClipTimeline(id="timeline")
            with Vertical(id="side"):
                yield Label("Last decisions  [dim](Tab, Enter: show it to change)[/dim]", classes="section")
                yield OptionList(id="recent")
                yield Label("Filter", classes="section")
                yield Static("", id="filter-text")
                yield Button("Export…", id="export-button")
        yield Footer()

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 100, "-narrow")  # an 80x24 terminal: the card first

    def on_mount(self) -> None:
        self.opened_at = time.perf_counter()
        self.second_opinion = bool(getattr(self.app.ctx, "second_opinion", False))
        self.query_one("#edit").display = False
        self.query_one("#card").focus()
        self.open_store()
        self.set_interval(REFRESH_S, self._poll_new_candidates)

    # opening ---------------------------------------------------------------------------------
    @work(thread=True, group="review-open", exclusive=True, exit_on_error=False)
    def open_store(self) -> None:
        """The first card first: the decisions are read, the first slice of candidates from where
        the reviewer left off, and the first open one shows, its state exact, before the whole
        journal is applied; then the queue and the counts; then the rest of the candidates a
        slice at a time while the user works (docs/ARCHITECTURE.md, "Scale")."""
        ctx = self.app.ctx
        worker = get_current_worker()
        store = CandidateStore(ctx.workspace, reviewer=ctx.reviewer)
        read_only = None
        try:
            store.lock_review()  # before reading: no other session writes in between
        except UserError as exc:
            read_only = str(exc)
        # What the store makes until the decisions are in, it keeps: made with the collector off,
        # then frozen (as in _take_new_rows), or a young collection walks all of it first.
        collecting = gc.isenabled()
        gc.disable()
        try:
            if not self.second_opinion:
                store.prepare_decisions()
                store.scan(budget=FIRST_SLICE)
                self._early_card(store)
            store.load_decisions()
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        if read_only is None:
            try:
                store.begin_review(fold=False)  # folded below, once the first card is on its way
            except UserError as exc:
                read_only = str(exc)
        draw = None
        if self.second_opinion:
            # The blind sample is drawn from every candidate another reviewer decided, from the
            # decisions alone; the first one's line is read and shown, then their other groups,
            # then the rest of the store below while the user works.
            draw = store.second_opinion_draw(store.reviewer)
            first = store.peek(draw[0]) if draw else None  # where a keypress decided it: its line is known
            if first is not None:
                self.app.call_from_thread(self._show_early, store, first[0], store.state(draw[0]), first[1])
            store.read_second_opinion_groups(store.reviewer, draw)
        self.app.call_from_thread(self._opened, store, read_only, draw)
        if read_only is None:
            try:
                store.compact_if_due()
            except (OSError, UserError) as exc:  # the journal still holds every decision: the review goes on
                self.app.call_from_thread(
                    notify, self, f"decisions not folded: {exc}", title="Review", severity="warning"
                )
        while not store.scan_done and not worker.is_cancelled:
            store.scan(budget=SLICE)
            self.app.call_from_thread(self._take_new_rows)
        self.app.call_from_thread(self._loaded)

    def _early_card(self, store: CandidateStore) -> None:
        """Show the card `_opened` will show first, from the rows read so far and their exact states."""
        rows = list(store.rows)
        states = store.early_states(rows)
        pred = self.filter.predicate(states)
        row = next((r for r in rows if pred(r)), None)
        if row is not None:
            self.app.call_from_thread(self._show_early, store, row, states.get(row.id))

    def _show_early(self, store: CandidateStore, row: Row, state: dict | None, peeked: Candidate | None = None) -> None:
        """peeked: a second opinion's first candidate, read on its own (`CandidateStore.peek`): shown blind."""
        # Not the screen's store yet: a key meanwhile is answered "still opening"; `_opened` counts.
        if self._gone or self.store is not None:
            return
        blind = peeked is not None
        c = peeked or store.get(row.id)
        status = state["status"] if state else "pending"
        edited = not blind and state and status == "edited" and state.get("text")
        text = state["text"] if edited else row.query  # blind: as generated (an edit shows the first decision)
        self._paint_card(row, c, "counting the queue…", status, state, text, blind)
        doing = "reading the decided groups…" if blind else "reading the decisions…"
        self.query_one("#progress", Static).update(Text(doing, style="dim"), layout=False)
        if self.first_shown_at is None:
            self.first_shown_at = time.perf_counter()

    def _opened(self, store: CandidateStore, read_only: str | None, draw: list[str] | None = None) -> None:
        if self._gone:  # left before the store was open: its lock goes now
            store.close()
            return
        self.store, self.read_only = store, read_only
        self.reading = True
        if self.second_opinion:
            self.filter = Filter(status="all")
            self._set_queue(store.second_opinion_queue(store.reviewer, draw=draw), blind=True)
        else:
            self._set_queue(store.select(self.filter))
        self._seen_rows = len(store.rows)
        self._show_next(0)
        if read_only:
            notify(self, read_only + " — this screen is read-only", title="Review", severity="warning", timeout=10)

    def _loaded(self) -> None:
        self.reading = False
        if self._gone:
            return
        self._take_new_rows()
        problems = self.store.problems if self.store else []
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            notify(self, problems[0] + more, title="Some stored lines were skipped", severity="warning", timeout=12)
        if self.current is None:
            self._show_next(self.pos)
        else:
            self._render_progress()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "review-open":
            if event.state == WorkerState.ERROR:
                self.reading = False
                msg = report_error(self, worker.error, title="Review", timeout=10)
                line = Text.assemble(("cannot open the candidates: ", "bold red"), visible(msg, 500))
                self.query_one("#progress", Static).update(line)
        elif worker.group == EXPORT_GROUP:
            self.export_state_changed(event)

    def on_unmount(self) -> None:
        if self.store is not None:
            if self.current is not None:
                self.store.remember_position(self.current.id)
            self.store.close()
        # The rows go now, by reference counting; left to the cyclic collector (the screen is
        # in cycles), a later full collection would walk and free them all at once, in the
        # middle of whatever runs next, such as the next screen's open.
        self.store, self.current, self.queue, self.queue_pos = None, None, [], {}
        self._gone = True
        gc.unfreeze()  # what _take_new_rows froze goes back to the collector with the screen

    # queue -----------------------------------------------------------------------------------
    def _set_queue(self, queue: list[Row], blind: bool = False) -> None:
        """blind: the blind sample, drawn once (rows read later stay out); else a filter's queue."""
        self.queue, self.queue_pos, self._blind_queue = queue, {r.id: i for i, r in enumerate(queue)}, blind
        # How many of the queue's rows still match: a decision or an undo moves one in or out
        # (kept by _decide and action_undo, not recounted per keypress: the queue may hold a
        # million rows). A filter's queue in a second opinion comes from the store's select,
        # which keeps the rows this reviewer already judged: counted once here.
        if self.second_opinion and not blind and self.store is not None:
            self._still_matching = sum(map(self._predicate(), queue))
        else:
            self._still_matching = len(queue)

    def _matching_in_queue(self, ids) -> int:
        """How many of `ids` are in the queue and match the filter now."""
        pred, pos = self._predicate(), self.queue_pos
        return sum(1 for cid in ids if cid in pos and pred(self.queue[pos[cid]]))

    def _predicate(self):
        pred = self.filter.predicate(self.store)
        if not self.second_opinion:
            return pred
        opinions, me = self.store.opinions, self.store.reviewer
        return lambda r: pred(r) and me not in opinions.get(r.id, ())

    def _matches(self, row: Row) -> bool:
        return self._predicate()(row)

    def _show_next(self, start: int) -> None:
        """Show the first candidate at or after `start` that still matches the filter."""
        pred = self._predicate()
        for i in range(start, len(self.queue)):
            if pred(self.queue[i]):
                self.pos = i
                self._show(self.queue[i])
                return
        # End of the queue: what was skipped comes round again; pending first.
        for i in range(0, min(start, len(self.queue))):
            row = self.queue[i]
            if self.store.status(row.id) == "pending" and pred(row):
                self.pos = i
                self._show(row)
                return
        self.current = None
        self.pos = len(self.queue)
        self._render_empty()

    def _show(self, row: Row, revisit: bool = False) -> None:
        self.current = row
        self.revisit = revisit
        self._render_card()
        # In the same frame as the card: deferring it cost a second frame (layout + paint) per
        # keypress, and the list is ten short options, rebuilt only when the steps changed.
        self._render_side()
        if self.first_shown_at is None:
            self.first_shown_at = time.perf_counter()

    def _after_decision(self) -> None:
        if self.revisit and self.current is not None:  # back to where the queue was, not past it
            self.revisit = False
            self._show_next(self.pos)
        else:
            self._show_next(self.pos + 1)
        if problem := self.store.take_fold_problem():  # a fold beside the session failed
            notify(self, problem, title="Review", severity="warning", timeout=10)

    # rendering -------------------------------------------------------------------------------
    def _put(self, selector: str, content) -> None:
        """Update a card Static, asking for a layout pass only when its height changes.

        A layout pass re-arranges the whole screen (footer keys, nav bar, side) and was most of
        the work of a keypress; consecutive cards mostly keep the same heights.
        """
        w = self.query_one(selector, Static)
        w.update(content, layout=False)
        width = w.content_size.width
        if not width or w.visual.get_height(w.styles, width) != w.content_size.height:
            w.refresh(layout=True)

    def _render_empty(self) -> None:
        self._render_progress()
        self.query_one("#where", Static).update("")
        done = (
            "No candidates match the filter."
            if self.store and self.store.rows
            else "No candidates yet: generate some on the Generate screen (3)."
        )
        if self.store and self.store.rows and not self.queue:
            done += "  Ctrl+F changes it."
        elif self.store and self.queue:
            done = "The queue is done: nothing open matches the filter.  Ctrl+F for other statuses, r to refresh."
        if self.reading:
            done = "Reading the candidates…"
        if self.second_opinion and not self.reading:
            done = "No candidate another reviewer decided is left for your second opinion."
        self.query_one("#question", Static).update(Text(done, style="dim"))
        for sel in ("#original", "#badges", "#narrations"):
            self.query_one(sel, Static).update("")
        self.query_one("#timeline", ClipTimeline).set_clip(0, 0, [])
        self._render_side()

    def _render_progress(self) -> None:
        if self.store is None:
            return
        second = None
        if self.second_opinion:
            left = sum(1 for r in self.queue if self.store.reviewer not in self.store.opinions.get(r.id, ()))
            second = (len(self.queue) - left, len(self.queue))
        reading = len(self.store.rows) if self.reading else None
        line = card.progress_line(self.store.progress(), self.store.reviewer, second, bool(self.read_only), reading)
        # One line high in the CSS: its size never changes, so no layout pass for it.
        self.query_one("#progress", Static).update(line, layout=False)

    def _render_card(self) -> None:
        row = self.current
        store = self.store
        assert row is not None and store is not None
        c = store.get(row.id)
        self._render_progress()
        in_queue = self.queue_pos.get(row.id)
        where = f"{in_queue + 1:,} of {len(self.queue):,} in queue" if in_queue is not None else "not in the queue"
        blind = self.second_opinion and store.reviewer not in store.opinions.get(row.id, ())
        # Blind: the question as generated, since an edit would show the first decision.
        text = c.query if blind else store.query_text(row.id)
        self._paint_card(row, c, where, store.status(row.id), store.state(row.id), text, blind)

    def _paint_card(self, row: Row, c, where: str, status: str, state: dict | None, text: str, blind: bool) -> None:
        self._put("#where", card.card_head(where, c, status, state, blind=blind))
        self._put("#question", card.question(text))
        self._put("#original", card.original(text, c.query))
        self._put("#badges", card.badges(c))
        self._put("#narrations", card.narrations(c))
        w = c.window
        timeline = self.query_one("#timeline", ClipTimeline)
        if w.clip_start is None or w.clip_end is None:
            timeline.set_clip(0, 0, [])
        else:
            timeline.set_clip(w.clip_start, w.clip_end, card.timeline_marks(c, row.flags))

    def _render_side(self) -> None:
        if self.store is None:
            return
        if self.second_opinion:  # only this reviewer's opinions: the first decisions stay hidden
            me = self.store.reviewer
            steps = [st for st in self.store.recent(200) if st.second and st.reviewer == me][:10]
        else:
            steps = self.store.recent(10)
        # An edit changes the text shown for a step without changing its seq.
        key = tuple((st.seq, st.text) for st in steps)
        if key != self._recent_key:
            # One set_options call: each add_option re-wraps every line of the list, and
            # clear_options would wrap (and refresh) an empty list first.
            self._recent_key = key
            self.query_one("#recent", OptionList).set_options([self._step_option(step) for step in steps])
        self._render_filter()

    def _render_filter(self) -> None:
        more = "  (still reading…)" if self.reading else ""
        n, left = len(self.queue), self._still_matching
        count = f"{n:,} match" if left == n else f"{left:,} of {n:,} still match"
        text = Text.assemble(visible(self.filter.describe(), 500), (f"\n{count}{more}", "dim"))
        if text != self._filter_text:  # unchanged by a decision: no update, no layout pass
            self._filter_text = text
            self.query_one("#filter-text", Static).update(text)

    def _step_option(self, step: Step) -> Option:
        if step.op == "bulk":
            return Option(card.step_label(step, None), id=f"bulk:{step.seq}")
        cid = step.ids[0]
        row = self.store.by_id.get(cid) if self.store else None
        text = self.store.query_text(cid) if row and self.store and not step.second else row.query if row else cid
        return Option(card.step_label(step, text), id=f"one:{step.seq}:{cid}")

    # actions ---------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if self.store is None:
            self.notify("still opening the candidates", severity="warning")
            return False
        if self.read_only:
            notify(self, self.read_only, title="Read-only", severity="warning")
            return False
        return True

    def _decide(self, action: str, **kw) -> None:
        if not self._ready() or self.current is None:
            return
        cid = self.current.id
        before = self._matching_in_queue((cid,))
        try:
            self.store.decide(cid, action, second=self.second_opinion, **kw)
        except UserError as exc:
            report_error(self, exc)
            return
        self._still_matching += self._matching_in_queue((cid,)) - before
        self._after_decision()

    def action_accept(self) -> None:
        self._decide("accept")

    def action_skip(self) -> None:
        self._decide("skip")

    def action_flag(self) -> None:
        self._decide("flag")

    def action_reject(self) -> None:
        if not self._ready() or self.current is None:
            return
        row = self.current

        def done(reason: str | None) -> None:
            if reason is not None and self.current is row:
                self._decide("reject", reason=reason)

        self.app.push_screen(RejectReasonScreen(), done)

    def action_edit(self) -> None:
        if not self._ready() or self.current is None:
            return
        box = self.query_one("#edit", Input)
        blind = self.second_opinion
        box.value = self.current.query if blind else self.store.query_text(self.current.id)
        box.display = True
        self.query_one("#question").display = False
        self.editing = True
        box.focus()
        box.cursor_position = len(box.value)

    @on(Input.Submitted, "#edit")
    def save_edit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self._close_editor()
        if not text:
            self.notify("an empty question cannot be saved; press x to reject instead", severity="warning")
            return
        if self.current is not None and text == self.store.by_id[self.current.id].query:
            self._decide("accept")  # unchanged: an edit that changes nothing is an accept
        else:
            self._decide("edit", text=text)

    def _close_editor(self) -> None:
        self.query_one("#edit").display = False
        self.query_one("#question").display = True
        self.editing = False
        self.query_one("#card").focus()

    def on_key(self, event) -> None:
        if self.editing and event.key == "escape":
            event.stop()
            self._close_editor()

    def action_undo(self) -> None:
        if not self._ready():
            return
        newest = self.store.undo_stack[-1] if self.store.undo_stack else None
        if self.second_opinion and (newest is None or not newest.second or newest.reviewer != self.store.reviewer):
            self.notify("nothing of this second look to undo")  # never another reviewer's decision
            return
        undone = newest.ids if newest is not None and newest.op != "bulk" else ()
        before = self._matching_in_queue(undone)
        try:
            step = self.store.undo()
        except UserError as exc:
            report_error(self, exc)
            return
        self._still_matching += self._matching_in_queue(undone) - before
        if step is not None and step.op == "bulk":
            # Its rows went out of the queue when it was applied: the queue is made again, as
            # apply_bulk makes it, so they are back in it and counted.
            seen = len(self.store.rows)
            self._set_queue(self.store.select(self.filter, upto=seen))
            self._seen_rows = seen
        if step is None:
            self.notify("nothing to undo")
            return
        if step.op == "bulk":
            self.notify(f"undid the bulk {step.status} of {len(step.ids):,} candidates")
        row = self.store.by_id.get(step.ids[0])
        if row is not None:
            i = self.queue_pos.get(row.id)
            if i is not None:
                self.pos = i
                self._show(row)
            else:
                self._show(row, revisit=True)
        else:
            self._render_side()

    def action_recent(self) -> None:
        recent = self.query_one("#recent", OptionList)
        if recent.option_count and recent.highlighted is None:
            recent.highlighted = 0  # the newest: Enter brings it back at once
        recent.focus()

    @on(OptionList.OptionSelected, "#recent")
    def pick_recent(self, event: OptionList.OptionSelected) -> None:
        oid = event.option.id or ""
        if oid.startswith("one:"):
            cid = oid.split(":", 2)[2]
            row = self.store.by_id.get(cid)
            if row is not None:
                self._show(row, revisit=True)
        else:
            self.notify("a bulk step is changed as a whole: u undoes it")
        self.query_one("#card").focus()

    def action_filter(self, text: bool = False) -> None:
        if self.store is None:
            return
        self.app.push_screen(FilterScreen(self.filter, self.store.facets(), focus_text=text), self._apply_filter)

    def _apply_filter(self, flt: Filter | None) -> None:
        if flt is None:
            return
        self.set_filter(flt)

    def set_filter(self, flt: Filter) -> None:
        # Rows the reader adds meanwhile are taken by _take_new_rows, under the new filter.
        seen = len(self.store.rows)
        try:
            queue = self.store.select(flt, upto=seen)
        except ValueError as exc:
            report_error(self, exc)
            return
        self.filter = flt
        self._set_queue(queue)
        self._seen_rows = seen
        self._show_next(0)

    def action_bulk(self) -> None:
        if not self._ready():
            return
        if self.reading:
            self.notify("still reading the candidates; a bulk step waits until all are in", severity="warning")
            return
        self.app.push_screen(BulkScreen(self.store, self.filter), self._bulk_chosen)

    def _bulk_chosen(self, choice: BulkChoice | None) -> None:
        if not choice:
            return
        if not choice.ids:
            self.notify("no candidate matches that rule")
            return
        verb = "Accept" if choice.action == "accept" else "Reject"
        question = Text.assemble(
            f"{verb} ",
            (f"{len(choice.ids):,}", "bold"),
            " candidates?\n",
            (visible(choice.rule.describe(), 500), "dim"),
        )
        for q in choice.sample:
            question.append("\n  · " + visible(q, 90), style="dim")
        question.append("\nOne undo (u) reverts the whole step.")

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.apply_bulk(choice)

        self.app.push_screen(ConfirmScreen(question), confirmed)

    def apply_bulk(self, choice: BulkChoice) -> None:
        """Apply the step to exactly the previewed ids, then rebuild the queue so its count is current."""
        try:
            step = self.store.bulk(choice.ids, choice.action, rule=choice.rule.describe())
        except UserError as exc:
            report_error(self, exc)
            return
        if step is not None:
            self.notify(f"{choice.action}ed {len(step.ids):,} candidates (u undoes it)")
        current = self.current
        seen = len(self.store.rows)
        self._set_queue(self.store.select(self.filter, upto=seen))
        self._seen_rows = seen
        if current is not None and self._matches(current) and current.id in self.queue_pos:
            self.pos = self.queue_pos[current.id]
            self._show(current, self.revisit)
        else:
            self._show_next(0)

    def action_refresh(self) -> None:
        added = self._pick_up_new()
        self.notify(f"{added:,} new candidates" if added else "no new candidates")

    def _poll_new_candidates(self) -> None:
        if self.store is not None:
            self._pick_up_new()

    def _pick_up_new(self) -> int:
        if self.store is None or self.reading:
            return 0
        added = self.store.refresh()
        if added:
            self._take_new_rows()
        return added

    def _take_new_rows(self) -> None:
        """Append the rows the store read since the last look to the queue, as the filter says."""
        store = self.store
        if store is None:
            return
        rows = store.rows
        new = rows[self._seen_rows :]
        self._seen_rows += len(new)
        if self._blind_queue:
            new = []  # the blind sample was drawn once, from every candidate another reviewer decided
        if new:
            # The rows live as long as the store: out of the cyclic collector's reach, a full
            # collection no longer walks 100k of them on some keypress (~100 ms pauses, the p99).
            gc.freeze()
            pred = self.filter.predicate(store)
            still = self._predicate() if self.second_opinion else pred  # less this reviewer's judged ones
            for row in new:
                if pred(row):
                    self.queue_pos[row.id] = len(self.queue)
                    self.queue.append(row)
                    self._still_matching += still(row)
        if self.current is None and self.pos < len(self.queue):
            self._show_next(self.pos)
        elif self.current is not None and new:
            self._render_card()  # "n of N in queue" grows as the reader goes
            self._render_filter()
        else:
            self._render_progress()
            self._render_filter()

    @on(Button.Pressed, "#export-button")
    def _export_button(self) -> None:
        self.action_export()
