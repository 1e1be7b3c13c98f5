"""The app tells the user when a training run ends, done, stopped or failed, on whatever screen
they are (docs/ARCHITECTURE.md, "Runs").

A run is a detached process, so nobody is told when it ends unless something looks. Every few
seconds a thread worker lists the workspace's runs (`engine.runs.RunIndex`: one stat per ended
run) and compares each run's state with the last look; a run seen running that is now done,
stopped or failed gets one notification. Runs that had ended before the app opened are not
announced.
"""

from __future__ import annotations

import threading
from typing import Any

from engine.textsafe import one_line
from nlq_tui.safe_text import notify

WATCH_EVERY_S = 5.0
ENDED = ("done", "stopped", "failed")


def ended_message(summary: dict) -> tuple[str, str]:
    """(the line, its severity) for a run that has just ended."""
    rid, state = one_line(summary.get("id"), 80), summary.get("state")
    if state == "done":
        best = summary.get("best_R1@0.3")
        figure = f"; best val R1@0.3 {best:.2f}" if isinstance(best, (int, float)) else ""
        return f"run {rid} is done{figure}", "information"
    if state == "stopped":
        return f"run {rid} stopped; r on the Train screen resumes it", "warning"
    why = summary.get("error")
    return f"run {rid} failed" + (f": {one_line(why, 300)}" if why else "; see its train.log"), "error"


class RunEndWatch:
    """Owns the last seen state of every run; `check()` runs in a thread worker."""

    def __init__(self, workspace: Any) -> None:
        from engine.runs import RunIndex

        self.index = RunIndex(workspace)
        self.states: dict[str, str] | None = None  # None until the first look
        self._lock = threading.Lock()

    def check(self) -> list[dict]:
        """The summaries of runs that ended since the last call ([] while another look is on)."""
        if not self._lock.acquire(blocking=False):
            return []  # a slow disk: the look before this one is still listing
        try:
            return self._check()
        finally:
            self._lock.release()

    def _check(self) -> list[dict]:
        summaries = self.index.summaries()
        now = {s["id"]: s["state"] for s in summaries}
        before, self.states = self.states, now
        if before is None:
            return []
        return [s for s in summaries if s["state"] in ENDED and before.get(s["id"]) == "running"]


def start_run_end_watch(app: Any, every: float = WATCH_EVERY_S) -> RunEndWatch:
    """Look every `every` seconds (one look at a time) and notify on `app` for each ended run."""
    watch = RunEndWatch(app.ctx.workspace)

    def look() -> None:
        for summary in watch.check():
            message, severity = ended_message(summary)
            app.call_from_thread(notify, app, message, title="Train", severity=severity, timeout=10)

    def tick() -> None:
        app.run_worker(look, thread=True, group="run-watch", exit_on_error=False, name="run-watch")

    tick()
    app.set_interval(every, tick)
    return watch
