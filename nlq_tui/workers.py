"""One convention for background work in the screens (docs/ARCHITECTURE.md, "Packages and their rooms").

- Blocking work runs in a thread worker (`run_worker(..., thread=True, group=..., exit_on_error=False)`).
- What it produces comes back as a typed message: a subclass of `WorkerResult` posted by the
  worker (`post_message` is thread-safe) or returned and turned into one in the screen's single
  `on_worker_state_changed`. A screen handles `on_<its result>` instead of decoding
  `worker.result` by group name.
- A failure is reported by `report_error(screen, error)`: a `UserError` as its own one line,
  anything else as a bug with its type; always as plain text (outside text in an error, such as
  a uid `[/]evil`, is data). `error_message` gives the same line for a panel.
- A worker whose failure must not re-raise when the app exits returns `Failed(error)` instead
  of raising (`guarded(fn)` does the wrapping); `worker_error(event)` reads both forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.message import Message
from textual.worker import Worker, WorkerState

from engine.errors import UserError
from engine.textsafe import one_line
from nlq_tui.safe_text import notify

T = TypeVar("T")

ERROR_LIMIT = 500  # characters of one error line; a server's 100k-character body is cut


class WorkerResult(Message):
    """Base of the typed message a worker's result arrives in; subclass it per kind of job."""


class Failed:
    """What a guarded worker returns instead of raising."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def guarded(fn: Callable[[], T]) -> Callable[[], T | Failed]:
    """`fn` wrapped to return `Failed(error)` instead of raising (Exceptions only: a
    KeyboardInterrupt still stops the app)."""

    def run() -> T | Failed:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - handed to report_error by the screen
            return Failed(exc)

    return run


def worker_error(event: Worker.StateChanged) -> BaseException | None:
    """The error of a worker that failed (raised, or returned `Failed`); None otherwise,
    including a cancelled worker."""
    worker = event.worker
    if event.state == WorkerState.ERROR:
        return worker.error
    if event.state == WorkerState.SUCCESS and isinstance(worker.result, Failed):
        return worker.result.error
    return None


def error_message(error: BaseException | None, what: str | None = None) -> str:
    """One safe line for `error`: a UserError's message; a bug as "unexpected Type[ in what]: ..."."""
    if error is None:
        return f"{what} failed" if what else "failed"
    if isinstance(error, UserError):
        return one_line(error, ERROR_LIMIT)
    where = f" in {what}" if what else ""
    detail = one_line(error, ERROR_LIMIT)
    return (
        f"unexpected {type(error).__name__}{where}: {detail}" if detail else f"unexpected {type(error).__name__}{where}"
    )


def report_error(
    target: Any,
    error: BaseException | None,
    *,
    title: str = "",
    what: str | None = None,
    timeout: float | None = 8,
) -> str:
    """Notify `error` on `target` (App, Screen or Widget) as one plain-text line and return
    that line (for a panel: show it with `nlq_tui.safe_text.plain_text`)."""
    message = error_message(error, what)
    notify(target, message, title=title, severity="error", timeout=timeout)
    return message
