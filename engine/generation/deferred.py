"""The embedding checks behind the job: a worker process, batched (docs/ARCHITECTURE.md, "Generation").

MiniLM on a CPU embeds far fewer sentences per second than an endpoint answers questions, and
in the job's process it would take the CPU the request loop needs. So with the full checks
the job stores each group as soon as it is validated, its candidates marked `pending`, and
hands their questions (and their clips' narrations, for ambiguity) to one worker process that
runs the near-duplicate and ambiguity checks in order, in batches, with its own interpreter
and a torch thread per spare core. Each finished batch comes back as {candidate id: checks} and the store
records it (`store.add_checks`), which clears `pending`. The job ends when the worker has
caught up; a job killed before that leaves candidates pending, which the next run of the same
variant over the same groups checks first (GenerationJob._submit_pending). The worker runs
at the lowest priority (nice 19), so that on a busy CPU the requests go first.

The checks never hold the job up: while requests are still going out, a batch that finds the
worker's queue full is not waited for; its candidates stay `pending` in the store and only
their ids are kept (`take_overflow`), to be handed over again once the requests are done
(`GenerationJob._catch_up`). A near-duplicate pair split that way is still found once, on the
question checked later.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections.abc import Callable

from engine.generation.quality import Item

BATCH = 256  # questions per message to the worker
QUEUE_BATCHES = 64  # batches queued for the worker at most; more wait in the store (see above)


def _next_message(inbox, parent: int):
    """The next message, or None once the job's process is gone (a kill -9 sends no stop)."""
    while True:
        try:
            return inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                return None


def _worker_main(inbox, outbox, device: str, parent: int) -> None:
    """The worker process: embeds and checks batches until told to stop."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        os.nice(19)  # when the CPU is short, the job's request loop goes first; the checks catch up
    except (AttributeError, OSError):
        pass
    from engine.generation.quality import QualityChecker

    # one torch thread per spare core (none spare on a 2-core box); nice 19 keeps them out of the way
    checker = QualityChecker(embeddings=True, device=device, threads=max(1, min(4, (os.cpu_count() or 2) - 1)))
    try:
        checker.encoder  # noqa: B018 - load before the first batch, and say so
    except Exception as exc:  # noqa: BLE001 - reported to the job, which falls back to no ambiguity
        outbox.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", None))
    texts: dict[str, list[str]] = {}
    while True:
        msg = _next_message(inbox, parent)
        if msg is None:
            return
        batch_id, rows, clip_texts = msg
        texts.update(clip_texts)
        items = [Item(cid, clip, q, target, texts.get(nk) if nk else None, checks={"duplicate_of": dup}, narr_key=nk)
                 for cid, clip, q, target, nk, dup in rows]  # fmt: skip
        t0 = time.perf_counter()
        checker.check_embeddings(items)
        secs = time.perf_counter() - t0
        found = [(it.cid, {"near_duplicate_of": it.checks["near_duplicate_of"], "ambiguity": it.checks["ambiguity"]})
                 for it in items]  # fmt: skip
        outbox.put(("done", (batch_id, found, secs)))
        if len(texts) > 4096:  # the parent resends a clip's narrations with every batch that needs them
            texts.clear()


@contextlib.contextmanager
def _real_stdio():
    """Real file descriptors behind sys.stdout/sys.stderr while a process is spawned.

    Inside the app, Textual replaces both with capture objects whose fileno() is -1, and
    multiprocessing hands stderr's descriptor to its resource tracker: the spawn then fails with
    "bad value(s) in fds_to_keep". The swap lasts only for the start of the process.
    """
    saved = sys.stdout, sys.stderr
    try:
        for name in ("stdout", "stderr"):
            try:
                ok = getattr(sys, name).fileno() >= 0
            except (AttributeError, OSError, ValueError):
                ok = False
            if not ok:
                setattr(sys, name, getattr(sys, f"__{name}__", None) or open(os.devnull, "w"))  # noqa: SIM115
        yield
    finally:
        sys.stdout, sys.stderr = saved


class DeferredChecks:
    """Near-duplicate and ambiguity checks in a worker process, results through `on_done`.

    `on_done(results: list[(cid, checks dict)], seconds)` runs in this object's collector thread.
    """

    def __init__(self, on_done: Callable[[list, float], None], device: str = "cpu") -> None:
        self._on_done = on_done
        self._next = 0
        self._open: set[int] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._buf: list[Item] = []
        self._overflow: list[str] = []  # ids of candidates whose batch found the queue full
        self.blocking = False  # True once the requests are done: then a full queue is waited for
        self.error: str | None = None
        self.ready = threading.Event()
        ctx = mp.get_context("spawn")  # never fork a process that runs an event loop and threads
        with _real_stdio():  # the queues' locks start multiprocessing's resource tracker too
            self._inbox = ctx.Queue(maxsize=QUEUE_BATCHES)
            self._outbox = ctx.Queue()
            self._proc = ctx.Process(target=_worker_main, args=(self._inbox, self._outbox, device, os.getpid()),
                                     daemon=True)  # fmt: skip
            self._proc.start()
        self._collector = threading.Thread(target=self._collect, name="checks-collector", daemon=True)
        self._collector.start()

    def submit(self, cands: list, items: list[Item]) -> None:
        """Queue the embedding checks of freshly stored candidates (never waits unless `blocking`)."""
        self._buf.extend(items)
        if len(self._buf) >= BATCH:
            self.flush()

    def flush(self) -> None:
        buf, self._buf = self._buf, []
        if not buf or self.error:
            return
        clip_texts = {it.texts_key: it.clip_texts for it in buf if it.clip_texts is not None}
        rows = [(it.cid, it.clip_key, it.query, it.target, it.texts_key if it.clip_texts is not None else None,
                 it.checks.get("duplicate_of")) for it in buf]  # fmt: skip
        with self._lock:
            batch_id = self._next
            self._next += 1
            self._open.add(batch_id)
        try:
            self._inbox.put((batch_id, rows, clip_texts), block=self.blocking)
        except queue.Full:  # the worker is far behind: these wait in the store, not in memory
            with self._lock:
                self._open.discard(batch_id)
                self._idle.notify_all()
            self._overflow.extend(it.cid for it in buf)

    def take_overflow(self) -> list[str]:
        """The ids whose checks were not queued (the queue was full); the caller hands them over again."""
        self.flush()
        out, self._overflow = self._overflow, []
        return out

    def _collect(self) -> None:
        while True:
            try:
                kind, payload = self._outbox.get(timeout=0.5)
            except queue.Empty:
                if not self._proc.is_alive():
                    self._fail("the checks' worker process ended")
                    return
                continue
            if kind == "ready":
                self.ready.set()
            elif kind == "error":
                self._fail(str(payload))
                return
            elif kind == "done":
                batch_id, results, secs = payload
                try:
                    self._on_done(results, secs)
                except Exception as exc:  # noqa: BLE001 - the job reports it when it waits
                    self._fail(f"{type(exc).__name__}: {exc}")
                    return
                with self._lock:
                    self._open.discard(batch_id)
                    self._idle.notify_all()

    def _fail(self, why: str) -> None:
        with self._lock:
            self.error = why
            self._open.clear()
            self._idle.notify_all()
        self.ready.set()

    @property
    def backlog(self) -> int:
        with self._lock:
            return len(self._open)

    def wait(self, timeout: float | None = None) -> bool:
        """Flush and block until every submitted batch is checked (or the worker failed)."""
        self.flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._open and self.error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 1.0)
        return self.error is None

    def close(self) -> None:
        try:
            self._inbox.put(None, timeout=1)
        except (queue.Full, ValueError, OSError):
            pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
