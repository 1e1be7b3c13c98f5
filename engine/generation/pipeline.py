"""The generation job: groups in, candidates out, resumable, concurrent, with progress.

    groups (engine.generation.groups: tiled with stride k, sampled) -> requests (prompt messages)
        -> backend (template / openai / hf; `concurrency` calls of `batch_size` requests)
        -> check-and-store (engine.generation.finish, in a thread, in batches): validation with
           the variant's policy, text checks, one durable write per batch
        -> with the full checks, MiniLM near-duplicates and ambiguity in a worker process behind
           the job (engine.generation.deferred): stored "checks pending", filled in when ready

Every job belongs to a variant (engine.variants): backend, model, prompt version and the
parameters that change the output. Resuming: a group is done for a variant once its line is in
the store; a killed job loses only the groups in flight, and the same command again selects the
same groups (same seed), skips the variant's done ones and stores each at most once. A second
variant over the same groups makes new candidates beside the first's. A group whose request
failed for good is recorded as failed and not stored, so the next run asks again; a group
whose answer was unusable is stored with its rejections (the model answered).

Every failure is counted with its reason in `Stats` (docs/ARCHITECTURE.md, "Generation").
Events for a screen or a status file: {"type": "progress", "stats"}, {"type": "group",
"group_key", "candidates", "rejected"}, {"type": "failure", "group_key", "reason", "detail"},
{"type": "step", "text"} ("loading the sentence encoder", then "").
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from engine.candidate import default_variant_name
from engine.errors import ConfigError
from engine.generation.base import Backend, Reply, Request
from engine.generation.build import build_candidates
from engine.generation.factory import make_backend
from engine.generation.finish import Finisher
from engine.generation.groups import GroupData, GroupReader, select_groups, tile_groups
from engine.generation.openai_backend import FATAL
from engine.generation.preview import dry_run, preview_messages
from engine.generation.prompt import Prompt, current_prompt
from engine.generation.quality import QualityChecker
from engine.generation.redact import redact
from engine.generation.stats import Stats
from engine.index import Index
from engine.textsafe import error_line, one_line
from engine.variants import Variant
from engine.windows import WindowParams, WindowResult, compute

if TYPE_CHECKING:
    from engine.store import CandidateStore

FIRST_SUMMARY_MAX_BYTES = 64 << 20  # shards a job's end reads in full to start the variants summary
CHECK_BATCH = 512  # groups per check-and-store batch (one embedding batch, one data sync)
ENCODER_STEP = "loading the sentence encoder"
CATCH_UP_STEP = "checks catching up"


class _Feed:
    """The groups still to ask for, in ascending order, read from the index a block at a time
    (one vectorised read per block instead of one per request)."""

    BLOCK = 64

    def __init__(self, reader: GroupReader, todo: list[int]) -> None:
        self.reader = reader
        self.todo = todo
        self.at = 0
        self.ready: list[GroupData] = []

    def __bool__(self) -> bool:
        return bool(self.ready) or self.at < len(self.todo)

    def take(self, n: int) -> list[GroupData]:
        while len(self.ready) < n and self.at < len(self.todo):
            block = self.todo[self.at : self.at + max(n, self.BLOCK)]
            self.at += len(block)
            self.ready.extend(self.reader.read(np.array(block, dtype=np.int64)))
        out, self.ready = self.ready[:n], self.ready[n:]
        return out


class GenerationJob:
    """One run of one variant over a selection of groups. `await job.run()` (or `job.run_sync()`)."""

    def __init__(
        self,
        index: Index,
        workspace,
        backend: Backend,
        *,
        params: WindowParams | None = None,
        stride: int | None = None,
        groups: int | None = None,
        seed: int = 0,
        per_video: int | None = None,
        checks: str = "full",
        prompt: Prompt | None = None,
        store: CandidateStore | None = None,
        result: WindowResult | None = None,
        on_event: Callable[[dict], None] | None = None,
        progress_every: float = 0.25,
        variant: str | None = None,
        policy: dict[str, str] | None = None,
    ) -> None:
        if checks not in ("full", "fast"):
            raise ConfigError(f"--checks must be full or fast, got {checks!r}")
        self.index = index
        self.workspace = workspace
        self.backend = backend
        self.params = (params or WindowParams()).validated()
        self.stride = stride
        self.n_groups = groups
        self.seed = seed
        self.per_video = per_video
        self.checks = checks
        self.prompt = prompt or current_prompt(workspace)
        self.variant = self._make_variant(variant, policy)
        self._store = store
        self._own_store = store is None
        self.result = result
        self.on_event = on_event
        self.progress_every = progress_every
        self.stats = Stats(variant=self.variant.name)
        self.todo: list[int] = []
        self.reader: GroupReader | None = None
        self.checker = QualityChecker(embeddings=(checks == "full"))
        self._paused = False
        self._cancelled = False
        self._last_progress = 0.0
        self._deferred = None
        self._pending: list[tuple[str, int]] = []  # (candidate id, group) whose embedding checks never came
        self._store_lock = threading.Lock()  # the check-and-store thread and the checks' collector
        self._group_of: dict[str, int] = {}  # group key -> group, of this run's selection
        self._checks_finisher: Finisher | None = None

    def _make_variant(self, name: str | None, policy: dict[str, str] | None) -> Variant:
        b = self.backend
        max_tokens = getattr(b, "max_tokens", None) or getattr(b, "max_new_tokens", None)
        name = name or default_variant_name(b.name, b.model, self.prompt.version)
        return Variant(name, b.name, b.model, self.prompt.version, temperature=getattr(b, "temperature", None),
                       max_tokens=max_tokens, k=self.params.k, stride=self.stride or self.params.k,
                       min_window=self.params.min_window, policy=dict(policy or {}))  # fmt: skip

    # control (thread-safe enough: plain flags read by the job's loop) ------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def cancel(self) -> None:
        self._cancelled = True

    @property
    def store(self) -> CandidateStore:
        if self._store is None:
            from engine.store import CandidateStore

            self._store = CandidateStore(self.workspace)
        return self._store

    # preparation -----------------------------------------------------------------------------
    def prepare(self, lock: bool = True) -> None:
        """Compute groups, select, and drop the variant's stored ones. Blocking; call once.

        `lock=False` (a dry run, an estimate) reads the store without taking the writer lock.
        """
        if self.result is None or self.result.params != self.params:
            self.result = compute(self.index, self.params)
        self.reader = GroupReader(self.result)
        chosen = select_groups(
            self.result, stride=self.stride, n=self.n_groups, seed=self.seed, per_video=self.per_video
        )
        store = self.store
        done = store.done_groups(self.variant.name)
        keys = self.reader.keys(chosen)
        self.todo = [int(g) for g, key in zip(chosen.tolist(), keys) if key not in done]
        if lock and self.todo:
            # Takes the store's writer lock now: a second job on this workspace fails here,
            # naming the holder, before it spends any requests; a name already used for other
            # settings fails here too.
            self.variant = store.register_variant(self.variant)
        self.reader.prefetch(np.array(self.todo, dtype=np.int64))
        self._group_of = dict(zip(keys, chosen.tolist()))
        self._pending = self._pending_checks(self._group_of)
        self.stats.groups_total = len(chosen)
        self.stats.groups_skipped = len(chosen) - len(self.todo)
        # the variant's earlier questions count as duplicates; another variant's do not
        name = self.variant.name
        self.checker.seed(r for r in store.rows if r.variant == name)

    def _pending_checks(self, group_of: dict[str, int]) -> list[tuple[str, int]]:
        """The variant's candidates an earlier, killed run stored with checks pending, in this selection."""
        store = self.store
        if not self.checker.embeddings:
            return []
        out = []
        for cid in store.pending_checks(self.variant.name):
            key = cid.split("#", 1)[0]
            if key in group_of:
                out.append((cid, group_of[key]))
        return out

    def _submit_pending(self, finisher: Finisher, deferred, pending: list | None = None) -> None:
        """Hand pending candidates to the checks' worker: an earlier run's first, or `pending`
        (this run's, whose batch found the worker's queue full), counted once already."""
        again = pending is not None
        if pending is None:
            pending, self._pending = self._pending, []
        if not pending or self.reader is None:
            return
        gds = {gd.g: gd for gd in self.reader.read(np.array(sorted({g for _, g in pending}), dtype=np.int64))}
        for cid, g in pending:
            with self._store_lock:
                c = self.store.get(cid)
            items = finisher.items(gds[g], [c], True)
            items[0].checks["duplicate_of"] = c.checks.duplicate_of
            deferred.submit([c], items)
        if not again:
            self.stats.checks_pending += len(pending)

    # events ------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self._emit({"type": "progress", "stats": self.stats.as_json()})

    def _step(self, text: str) -> None:
        self.stats.step = text
        self._emit({"type": "step", "text": text})
        self._progress(force=True)

    # the run -----------------------------------------------------------------------------------
    def run_sync(self) -> Stats:
        return asyncio.run(self.run())

    async def run(self) -> Stats:
        if self.reader is None:
            await asyncio.to_thread(self.prepare)
        st = self.stats
        st.started = time.monotonic()
        st.state = "running"
        self._progress(force=True)
        fatal: list[str] = []
        try:
            await self._run_tasks(fatal)
        except BaseException as exc:
            st.finished = time.monotonic()
            st.state = "failed"
            st.error = redact(error_line(exc))
            self._progress(force=True)
            raise
        finally:
            await self.backend.aclose()
            self.close()
        st.finished = time.monotonic()
        if fatal:
            st.state, st.error = "failed", fatal[0]
        else:
            st.state = "cancelled" if self._cancelled else "done"
        if st.groups_done and self._own_store:
            await asyncio.to_thread(self._refresh_variant_summary)
        self._progress(force=True)
        return st

    def _refresh_variant_summary(self) -> None:
        """Fold this job's groups into the variants table's summary now, while the shard pages are
        warm, so the first `nlq-tui variants` or F3 after a job does not read the whole store
        (docs/ARCHITECTURE.md, "Store"). A cache: if it cannot be written, the next read rebuilds."""
        from engine.store import SHARD_PREFIX, CandidateStore
        from engine.variant_cache import SUMMARY
        from engine.variants import variant_table

        folder = self.workspace.candidates_dir
        try:
            if not (folder / SUMMARY).exists():
                # Never summarised (an older version wrote the store): the first read is a full one;
                # on a big store it is left to the first F3's worker rather than hold up this job's end.
                if sum(p.stat().st_size for p in folder.glob(f"{SHARD_PREFIX}*")) > FIRST_SUMMARY_MAX_BYTES:
                    return
            store = CandidateStore(self.workspace)
            try:
                variant_table(store)
            finally:
                store.close()
        except Exception:  # noqa: BLE001 - the summary is never the source of truth; its reader rebuilds
            pass

    async def _run_tasks(self, fatal: list[str]) -> None:
        """Request workers feed the check-and-store task through a bounded queue.

        Bounded: answered groups wait there until stored, so a kill -9 loses them with the
        requests in flight; when checks and storage fall behind, the workers wait instead.
        """
        conc, bs = max(1, int(self.backend.concurrency)), max(1, int(self.backend.batch_size))
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(8, 2 * conc * bs))
        assert self.reader is not None
        pending = _Feed(self.reader, self.todo)
        fin = asyncio.create_task(self._finisher(queue))
        workers = [asyncio.create_task(self._worker(pending, queue, fatal, fin)) for _ in range(conc)]

        def finisher_failed(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is not None:
                for w in workers:  # they may wait on a full queue nobody drains any more
                    w.cancel()

        fin.add_done_callback(finisher_failed)
        try:
            try:
                await asyncio.gather(*workers)
            except asyncio.CancelledError:
                if fin.done() and not fin.cancelled() and fin.exception() is not None:
                    raise fin.exception() from None  # type: ignore[misc]
                raise
            if not fin.done():
                # The end marker may wait on a full queue; if the check-and-store task fails
                # meanwhile (a full disk), nothing drains it, so wait for either.
                end = asyncio.ensure_future(queue.put(None))
                await asyncio.wait([end, fin], return_when=asyncio.FIRST_COMPLETED)
                end.cancel()
            await fin  # raises what the check-and-store thread raised (a full disk, a lost lock)
            self.stats.requests_done_at = time.monotonic()
            await self._catch_up()
        except BaseException:
            for w in workers:
                w.cancel()
            fin.cancel()
            if self._deferred is not None:
                self._deferred.close()
                self._deferred = None
            raise

    async def _wait_while_paused(self) -> None:
        st = self.stats
        while self._paused and not self._cancelled:
            if st.state != "paused":
                st.state = "paused"
                self._progress(force=True)
            await asyncio.sleep(0.1)

    async def _worker(self, pending: _Feed, queue: asyncio.Queue, fatal: list[str], fin: asyncio.Task) -> None:
        bs = max(1, int(self.backend.batch_size))
        while pending and not self._cancelled and not fatal and not fin.done():
            await self._wait_while_paused()
            if self._cancelled:
                break
            self.stats.state = "running"
            gds = pending.take(bs)
            msgs = self.backend.needs_messages
            reqs = [Request(gd.key, self.prompt.messages(gd.texts) if msgs else [], gd.texts, gd.flags) for gd in gds]
            replies = await self.backend.complete(reqs)
            for gd, rep in zip(gds, replies):
                self._account(gd, rep, fatal)
                await queue.put((gd, rep))
            self._progress()

    def _deferred_checks(self):
        """A worker process for the embedding checks when the store can fill them in later."""
        if not (self.checker.embeddings and (self.todo or self._pending)):
            return None
        from engine.generation.deferred import DeferredChecks

        name = self.variant.name

        def done(results: list, seconds: float) -> None:
            with self._store_lock:
                self.store.add_checks(name, results)
            st = self.stats
            st.questions_checked += len(results)
            st.check_seconds += seconds
            st.checks_pending = max(0, st.checks_pending - len(results))

        return DeferredChecks(done)

    async def _finisher(self, queue: asyncio.Queue) -> None:
        deferred = self._deferred_checks()
        self._deferred = deferred
        finisher = self._checks_finisher = Finisher(self, self.checker, deferred, self._store_lock)
        if deferred is not None:
            await asyncio.to_thread(self._submit_pending, finisher, deferred)
        if self.checker.embeddings and (self.todo or self._pending):
            self._step(ENCODER_STEP)
            if deferred is None:
                await asyncio.to_thread(lambda: self.checker.encoder)
                self._step("")
        while True:
            item = await queue.get()
            if item is None:
                return
            batch, stop = [item], False
            while len(batch) < CHECK_BATCH:
                try:
                    nxt = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            answered = [(gd, rep) for gd, rep in batch if not rep.failed]
            failed = [(gd, rep) for gd, rep in batch if rep.failed]
            results = await asyncio.to_thread(self._finish_batch, finisher, answered, failed)
            if deferred is not None and self.stats.step == ENCODER_STEP and deferred.ready.is_set():
                self._step("")
            if self.on_event is not None:
                for gd, cands, rejected in results:
                    self._emit({"type": "group", "group_key": gd.key, "candidates": [c.to_json() for c in cands],
                                "rejected": rejected})  # fmt: skip
            self._progress()
            if stop:
                return

    async def _catch_up(self) -> None:
        """After the last request: wait for the embedding checks still behind (not when cancelled)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        st = self.stats
        deferred.blocking = True  # the requests are done: now the checks may take their time
        try:
            while not self._cancelled:
                if deferred.ready.is_set() and st.step == ENCODER_STEP:
                    self._step(CATCH_UP_STEP)
                self._progress()
                if overflow := deferred.take_overflow():
                    again = [(cid, self._group_of[cid.split("#", 1)[0]]) for cid in overflow]
                    await asyncio.to_thread(self._submit_pending, self._checks_finisher, deferred, again)
                    continue
                if await asyncio.to_thread(deferred.wait, 0.25) or deferred.error:
                    break
            if deferred.error:
                st.checks_error = one_line(redact(deferred.error), 300)
        finally:
            deferred.close()
            self._step("")

    @staticmethod
    def _finish_batch(finisher: Finisher, answered: list, failed: list) -> list:
        finisher.failures(failed)
        return finisher.batch(answered) if answered else []

    def close(self) -> None:
        """Release the store (and its writer lock) if this job opened it."""
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def _account(self, gd: GroupData, rep: Reply, fatal: list[str]) -> None:
        st = self.stats
        st.requests += 1
        st.prompt_tokens += rep.prompt_tokens
        st.completion_tokens += rep.completion_tokens
        for r in rep.retry_reasons:
            st.retries[r] += 1
        c = self.backend.cost(st.prompt_tokens, st.completion_tokens)
        if c is not None:
            st.cost = c
        if rep.failed:
            st.failed_requests += 1
            st.failures[rep.error] += 1
            st.groups_failed += 1
            detail = one_line(redact(rep.error_detail), 300)
            self._emit({"type": "failure", "group_key": gd.key, "reason": rep.error, "detail": detail})
            if rep.error in FATAL and not fatal:
                fatal.append(f"{one_line(self.backend.describe(), 200)}: {detail or rep.error}; stopped")


__all__ = [
    "GenerationJob",
    "GroupData",
    "GroupReader",
    "Stats",
    "build_candidates",
    "dry_run",
    "make_backend",
    "preview_messages",
    "select_groups",
    "tile_groups",
]
