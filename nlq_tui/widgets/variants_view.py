"""The variants of a workspace side by side, and two of them compared narration by narration.

The figures come from `engine.variants.variant_table` and `compare_variants`; this widget only
lays them out. Names, questions and narrations are data: every cell is plain text.
"""

from __future__ import annotations

import contextlib
import os

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Select, Static
from textual.worker import Worker, WorkerState

from nlq_tui.safe_text import plain_text
from nlq_tui.workers import WorkerResult, guarded, report_error, worker_error

COLUMNS = ("variant", "backend", "model", "prompt", "groups", "failed", "valid", "rejected", "flagged", "accepted",
           "edited", "pending", "accept rate (95%)", "kappa", "tokens", "cost")  # fmt: skip


def _count(d) -> str:
    return f"{sum(d.values()):,}" if isinstance(d, dict) else "-"


def _rate(row: dict) -> str:
    rate, ci = row.get("accept_rate"), row.get("accept_rate_ci95")
    if rate is None:
        return "-"
    return f"{rate:.0%} ({ci[0]:.0%}-{ci[1]:.0%})" if ci else f"{rate:.0%}"


def variant_cells(row: dict) -> list[str]:
    """One variant's row of the table, as text (engine figures; None shows as -)."""
    agreement = row.get("agreement") or {}
    kappa = agreement.get("kappa")
    cost = row.get("cost")
    return [
        str(row.get("name", "")), str(row.get("backend", "")), str(row.get("model") or "-"),
        f"v{row.get('prompt_version')}", f"{row.get('groups_done', 0):,}", f"{row.get('groups_failed', 0):,}",
        f"{row.get('questions_valid', 0):,}", _count(row.get("rejected")), _count(row.get("flagged")),
        f"{row.get('accepted', 0):,}", f"{row.get('edited', 0):,}", f"{row.get('pending', 0):,}", _rate(row),
        "-" if kappa is None else f"{kappa:.2f} (n={agreement.get('doubly_reviewed', 0)})",
        f"{row.get('tokens', 0):,}", "-" if cost is None else f"${cost:,.4f}",
    ]  # fmt: skip


def variants_table(rows: list[dict]) -> Table:
    table = Table(expand=True, show_edge=False, pad_edge=False)
    for name in COLUMNS:
        table.add_column(name, overflow="fold", justify="left" if name in COLUMNS[:4] else "right")
    for row in rows:
        table.add_row(*(plain_text(c) for c in variant_cells(row)))
    return table


def comparison_table(a: str, b: str, pairs: list[dict]) -> Table:
    """The questions two variants wrote for the same narrations (groups that both covered)."""
    table = Table(expand=True, show_lines=True, pad_edge=False)
    table.add_column("#", width=3, justify="right")
    table.add_column("narration", ratio=2, overflow="fold")
    table.add_column(plain_text(a, limit=60), ratio=3, overflow="fold")
    table.add_column(plain_text(b, limit=60), ratio=3, overflow="fold")
    for p in pairs:
        table.add_row(
            plain_text(p.get("number", "")),
            plain_text(p.get("narration") or "", limit=2000),
            plain_text(p.get("a") or "(none)", "" if p.get("a") else "dim", limit=2000),
            plain_text(p.get("b") or "(none)", "" if p.get("b") else "dim", limit=2000),
        )
    return table


class VariantsLoaded(WorkerResult):
    def __init__(self, rows: list[dict], mark: tuple | None) -> None:
        super().__init__()
        self.rows = rows
        self.mark = mark  # the candidate files as they were before the read (see _fingerprint)


class ComparisonLoaded(WorkerResult):
    def __init__(self, a: str, b: str, pairs: list[dict]) -> None:
        super().__init__()
        self.a = a
        self.b = b
        self.pairs = pairs


def _fingerprint(workspace) -> tuple | None:
    """Name, size and change time of every file under candidates/ (shards, journal, snapshot,
    variants): equal fingerprints mean equal figures. None when the folder cannot be listed.
    The figures' own caches and temp files are left out: writing them changes no figure."""
    from engine.variant_cache import CACHE_FILES

    try:
        with os.scandir(workspace.candidates_dir) as it:
            return tuple(
                sorted(
                    (e.name, e.stat().st_size, e.stat().st_mtime_ns)
                    for e in it
                    if e.is_file() and e.name not in CACHE_FILES and not e.name.startswith(".")
                )
            )
    except OSError:
        return None


@contextlib.contextmanager
def _store(workspace):
    """A read-only look at the candidates (no lock taken), closed after."""
    from engine.store import CandidateStore

    store = CandidateStore(workspace)
    try:
        yield store
    finally:
        store.close()


class VariantsView(Vertical):
    """The variants table on top; below it, two variants chosen and their questions side by side."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[dict] = []
        self.table = Static("", id="variants-table")
        self.pick_a: Select[str] = Select([], prompt="variant A", id="compare-a", compact=True)
        self.pick_b: Select[str] = Select([], prompt="variant B", id="compare-b", compact=True)
        self.compare = Static("", id="compare-table")
        self.workspace = None
        self._setting = False
        self._compared: tuple | None = None
        self._read_mark: tuple | None = None  # the fingerprint the rows shown were read at
        self._read_rows: list[dict] | None = None
        self._shown_rows: list[dict] | None = None
        self._reading: tuple | None = None  # the fingerprint a read in flight was started at
        self._reading_worker: Worker | None = None
        self._shown_names: list[str] | None = None
        self._shown_comparison: tuple | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="variants-scroll"):
            yield self.table
            with Horizontal(id="compare-pick"):
                yield Label("compare", classes="param-label")
                yield self.pick_a
                yield self.pick_b
            yield self.compare

    # the engine's figures, read in thread workers ------------------------------------------------
    def load(self, workspace) -> None:
        """Read the variants table of `workspace` (in a thread) and show it; when no candidate or
        decision file changed since the last read, the figures are the same: show them at once."""
        self.workspace = workspace
        mark = _fingerprint(workspace)
        if mark is not None and mark == self._read_mark and self._read_rows is not None:
            self.show_rows(self._read_rows)
            return
        if mark is not None and mark == self._reading:
            return  # a read of these very files is under way (the screen's open): its rows show when done
        self._reading = mark

        def work() -> VariantsLoaded:
            from engine.variants import variant_table

            with _store(workspace) as store:
                return VariantsLoaded(variant_table(store), mark)

        self._reading_worker = self._work(work, "variants")

    def _compare(self, a: str, b: str) -> None:
        workspace = self.workspace

        def work() -> ComparisonLoaded:
            from engine.variants import compare_variants

            with _store(workspace) as store:
                return ComparisonLoaded(a, b, compare_variants(store, a, b))

        self._work(work, "comparison")

    def _work(self, fn, name: str) -> Worker:
        return self.run_worker(guarded(fn), name=name, group=f"variants-{name}", exclusive=True, thread=True,
                               exit_on_error=False)  # fmt: skip

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        error = worker_error(event)
        if event.worker is self._reading_worker and (error is not None or event.state == WorkerState.CANCELLED):
            self._reading = None  # the next F3 reads again
        if error is not None:
            report_error(self, error, title=f"{event.worker.name} failed")
        elif event.state == WorkerState.SUCCESS and isinstance(event.worker.result, WorkerResult):
            self.post_message(event.worker.result)

    def on_variants_loaded(self, message: VariantsLoaded) -> None:
        message.stop()
        self._read_mark, self._read_rows = message.mark, message.rows
        if self._reading == message.mark:
            self._reading = None
        self.show_rows(message.rows)

    def on_comparison_loaded(self, message: ComparisonLoaded) -> None:
        message.stop()
        self.show_comparison(message.a, message.b, message.pairs)

    # drawing -------------------------------------------------------------------------------------
    def show_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        # What is on screen already is not drawn again (a Select's options rebuild costs a frame).
        if rows != self._shown_rows or not rows:
            self._shown_rows = rows
            if not rows:
                self.table.update(plain_text("no variants yet: start a job (F5)"))
            else:
                self.table.update(variants_table(rows))
        names = [str(r.get("name", "")) for r in rows]
        if names != self._shown_names:
            self._shown_names = names
            self._set_options(names)
        # After the table is drawn: the comparison's read in its thread would hold up this paint.
        self.call_after_refresh(self._maybe_compare)

    def _set_options(self, names: list[str]) -> None:
        options = [(plain_text(n, limit=60), n) for n in names]
        self._setting = True
        for sel, fallback in ((self.pick_a, 0), (self.pick_b, 1)):
            keep = sel.value if sel.value in names else None
            sel.set_options(options)
            if keep is not None:
                sel.value = keep
            elif len(names) > 1:
                sel.value = names[fallback]
        self._setting = False

    def show_comparison(self, a: str, b: str, pairs: list[dict]) -> None:
        if (a, b, pairs) == self._shown_comparison:
            return  # new groups past the compared ones: the same table, not laid out again
        self._shown_comparison = (a, b, pairs)
        if not pairs:
            self.compare.update(plain_text(f"no group was covered by both {a} and {b}", limit=300))
        else:
            self.compare.update(comparison_table(a, b, pairs))

    @on(Select.Changed)
    def _picked(self, event: Select.Changed) -> None:
        event.stop()
        if not self._setting:
            self._maybe_compare()

    def _maybe_compare(self) -> None:
        if not self.is_attached:
            return  # called after a refresh: the screen may have gone meanwhile
        a, b = self.pick_a.value, self.pick_b.value
        if isinstance(a, str) and isinstance(b, str) and a != b and self.workspace is not None:
            # the same pair over the same candidates compares the same: do not read them again
            count = {r.get("name"): r.get("candidates") for r in self.rows}
            key = (a, b, count.get(a), count.get(b))
            if key != self._compared:
                self._compared = key
                self._compare(a, b)
        elif len(self.rows) < 2:
            self.compare.update(plain_text("a second variant (another prompt, model or --name) makes a comparison"))
