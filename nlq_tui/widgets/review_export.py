"""Export from the Review screen: the dialog, the export in a thread, and what it says after.

A mixin of `ReviewScreen` (nlq_tui/screens/review.py): exporting is its own job beside the
review, done by `engine.export` from what is on disk (every decision is there already), so the
screen's store is not touched. The screen routes its worker events of `EXPORT_GROUP` here.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.worker import Worker, WorkerState

from nlq_tui.safe_text import notify
from nlq_tui.widgets.review_modals import ExportChoice, ExportScreen
from nlq_tui.workers import report_error

EXPORT_GROUP = "review-export"


class ExportFromReview:
    """`action_export` (key and button), its worker, and its result or error as a notice."""

    app: Any
    filter: Any

    def action_export(self) -> None:
        from engine.export import default_out

        self.app.push_screen(
            ExportScreen(str(default_out(self.app.ctx.workspace)), self.filter.variants), self._export_chosen
        )

    def _export_chosen(self, choice: ExportChoice | None) -> None:
        if choice:
            self.run_export(choice)

    @work(thread=True, group=EXPORT_GROUP, exclusive=True, exit_on_error=False)
    def run_export(self, choice: ExportChoice):
        from engine.export import export, parse_statuses

        ctx = self.app.ctx
        # A store of its own: the export reads from disk, which holds every decision already.
        return export(
            ctx.workspace,
            choice.path,
            statuses=parse_statuses(choice.statuses),
            data_root=ctx.data_root,
            variants=choice.variants,
            fmt=choice.fmt,
        )

    def export_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS:
            r = worker.result
            notify(self, f"exported {r.how_many()} to {r.file}\nmanifest: {r.manifest.name}", title="Export")
        elif event.state == WorkerState.ERROR:
            report_error(self, worker.error, title="Export failed", timeout=12)
