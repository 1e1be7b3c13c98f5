"""The generation job: groups in, candidates out, resumable, concurrent, with progress.

    groups (engine.windows, tiled with stride k) -> requests (prompt messages)
        -> backend (template / openai / hf; `concurrency` calls of `batch_size` requests)
        -> validation (engine.generation.validate) -> quality checks, in a thread, in batches
        -> CandidateStore.add_group_result (durable per group)

Resuming: a group is done once its result line is in the store. A killed job loses only the
groups in flight; the same command again selects the same groups (same seed), skips the done
ones and stores each group at most once. A group whose request failed for good (after
retries) is not stored, so the next run tries it again; a group whose answer was unusable is
stored with its rejections (the model answered; asking again is a new experiment).

Every failure is counted with its reason in `Stats`: requests that failed
(`failures`: rate_limited, server_error, timeout, ...), retries (`retries`), and questions
rejected by validation (`rejected`: reason -> count).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from engine.errors import ConfigError
from engine.generation.base import Backend, Reply, Request
from engine.generation.factory import make_backend
from engine.generation.groups import GroupData, GroupReader, select_groups, tile_groups
from engine.generation.openai_backend import FATAL
from engine.generation.preview import dry_run, preview_messages
from engine.generation.prompt import Prompt, current_prompt
from engine.generation.quality import Item, QualityChecker
from engine.generation.redact import redact, redact_deep
from engine.generation.stats import Stats
from engine.generation.validate import Verdict, validate
from engine.index import Index
from engine.textsafe import error_line, one_line
from engine.windows import WindowParams, WindowResult, compute

CHECK_BATCH = 512  # groups per check-and-store batch (one embedding batch, one fdatasync)


# ---------------------------------------------------------------------------------------------
# the job


def build_candidates(
    gd: GroupData, verdict: Verdict, reply: Reply, backend: Backend, prompt_version: int, now: float
) -> list[dict]:
    # times and windows were rounded to 0.1 ms when the group was read
    group_narrations = [{"uid": u, "text": t, "t": x} for u, t, x in zip(gd.uids, gd.texts, gd.times)]
    out = []
    for number, query in verdict.accepted:
        i = number - 1
        s, e = gd.starts[i], gd.ends[i]
        out.append(
            {
                "id": f"{gd.key}#{number}",
                "video_uid": gd.video_uid,
                "clip_uid": gd.clip_uid,
                "group_key": gd.key,
                "narration": {"uid": gd.uids[i], "text": gd.texts[i], "t": gd.times[i], "number": number},
                "group_narrations": group_narrations,
                "window": {
                    "start": s,
                    "end": e,
                    "clip_start": gd.clip_start,
                    "clip_end": gd.clip_end,
                    "clip_rel_start": None if s is None else round(s - gd.clip_start, 4),
                    "clip_rel_end": None if e is None else round(e - gd.clip_start, 4),
                },
                "query": redact(query),
                "backend": backend.name,
                "model": backend.model,
                "prompt_version": prompt_version,
                "checks": {
                    "duplicate_of": None,
                    "near_duplicate_of": None,
                    "ambiguity": -1,
                    "template": "",
                    "window_problems": list(gd.problems[i]),
                },
                "status": "pending",
                "created": now,
            }
        )
    return out


class GenerationJob:
    """One run over a selection of groups. `await job.run()` (or `job.run_sync()`)."""

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
        store=None,
        result: WindowResult | None = None,
        on_event: Callable[[dict], None] | None = None,
        progress_every: float = 0.25,
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
        self._store = store
        self._own_store = store is None
        self.result = result
        self.on_event = on_event
        self.progress_every = progress_every
        self.stats = Stats()
        self.todo: list[int] = []
        self.reader: GroupReader | None = None
        self.checker = QualityChecker(embeddings=(checks == "full"))
        self._paused = False
        self._cancelled = False
        self._last_progress = 0.0

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
    def store(self):
        if self._store is None:
            from engine.store import CandidateStore

            self._store = CandidateStore(self.workspace)
        return self._store

    # preparation -----------------------------------------------------------------------------
    def prepare(self, lock: bool = True) -> None:
        """Compute groups, select, and drop the ones already stored. Blocking; call once.

        `lock=False` (a dry run, an estimate) reads the store without taking the writer lock.
        """
        if self.result is None or self.result.params != self.params:
            self.result = compute(self.index, self.params)
        self.reader = GroupReader(self.result)
        chosen = select_groups(
            self.result, stride=self.stride, n=self.n_groups, seed=self.seed, per_video=self.per_video
        )
        store = self.store
        done = store.done_groups()
        keys = self.reader.keys(chosen)
        self.todo = [int(g) for g, key in zip(chosen.tolist(), keys) if key not in done]
        if lock and self.todo and hasattr(store, "add_group_results"):
            # Takes the store's writer lock now: a second job on this workspace fails here,
            # naming the holder, before it spends any requests. (A group another writer stores
            # meanwhile is refused by the store, never stored twice.)
            store.add_group_results([])
        self.reader.prefetch(np.array(self.todo, dtype=np.int64))
        self.stats.groups_total = len(chosen)
        self.stats.groups_skipped = len(chosen) - len(self.todo)
        self.checker.seed(getattr(self.store, "rows", []))  # earlier runs' questions count as duplicates

    # events ------------------------------------------------------------------------------------
    def _emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self._emit({"type": "progress", "stats": self.stats.as_json()})

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
        # Bounded: answered groups wait here until they are stored, and a kill -9 loses them with
        # the requests in flight; when the checks fall behind, the workers wait instead.
        conc, bs = max(1, int(self.backend.concurrency)), max(1, int(self.backend.batch_size))
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(8, 2 * conc * bs))
        pending = list(self.todo)
        pending.reverse()  # pop() from the end keeps ascending order
        fatal: list[str] = []
        finisher_task: list[asyncio.Task] = []

        async def worker() -> None:
            bs = max(1, int(self.backend.batch_size))
            while pending and not self._cancelled and not fatal and not finisher_task[0].done():
                while self._paused and not self._cancelled:
                    if st.state != "paused":
                        st.state = "paused"
                        self._progress(force=True)
                    await asyncio.sleep(0.1)
                if self._cancelled:
                    break
                st.state = "running"
                take = [pending.pop() for _ in range(min(bs, len(pending)))]
                gds = self.reader.read(np.array(take, dtype=np.int64))
                msgs = self.backend.needs_messages
                reqs = [
                    Request(gd.key, self.prompt.messages(gd.texts) if msgs else [], gd.texts, gd.flags) for gd in gds
                ]
                replies = await self.backend.complete(reqs)
                for gd, rep in zip(gds, replies):
                    self._account(gd, rep, fatal)
                    if not rep.failed:
                        await queue.put((gd, rep))
                self._progress()

        async def finisher() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < CHECK_BATCH:
                    try:
                        nxt = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                results = await asyncio.to_thread(self._finish_batch, batch)
                for gd, cands, rejected in results:
                    self._emit({"type": "group", "group_key": gd.key, "candidates": cands, "rejected": rejected})
                self._progress()
                if stop:
                    return

        fin = asyncio.create_task(finisher())
        finisher_task.append(fin)
        workers = [asyncio.create_task(worker()) for _ in range(conc)]

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
                    raise fin.exception() from None
                raise
            if not fin.done():
                await queue.put(None)
            await fin  # raises what the check-and-store thread raised (a full disk, a lost lock)
        except BaseException as exc:
            for w in workers:
                w.cancel()
            fin.cancel()
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
            st.state = "failed"
            st.error = fatal[0]
        elif self._cancelled:
            st.state = "cancelled"
        else:
            st.state = "done"
        self._progress(force=True)
        return st

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

    def _validate(self, gd: GroupData, rep: Reply) -> Verdict:
        """The verdict on one answer; an answer that trips the validator is rejected, not fatal."""
        try:
            return validate(gd.key, gd.texts, gd.flags, text=rep.text, parsed=rep.parsed, items=rep.items)
        except Exception as exc:  # noqa: BLE001 - outside text must never end the job
            v = Verdict()
            v.rejected.append({"group_key": gd.key, "narration": None, "reason": "not_json",
                               "detail": one_line(redact(error_line(exc)), 200), "raw": None})  # fmt: skip
            return v

    def _finish_batch(self, batch: list[tuple[GroupData, Reply]]) -> list[tuple[GroupData, list, list]]:
        """Validate, check and store a batch of answered groups (runs in a worker thread)."""
        now = time.time()
        staged = []
        items: list[Item] = []
        for gd, rep in batch:
            if self.index.excluded[gd.video]:  # never a candidate from a val/test video
                continue
            verdict = self._validate(gd, rep)
            cands = build_candidates(gd, verdict, rep, self.backend, self.prompt.version, now)
            for c in cands:
                pos = c["narration"]["number"] - 1
                if self.checker.embeddings:
                    nkey, texts, target = self.reader.clip_narrations(gd, pos)
                else:
                    nkey, texts, target = None, None, -1
                it = Item(
                    cid=c["id"], clip_key=gd.clip_uid, query=c["query"], target=target, clip_texts=texts, narr_key=nkey
                )
                it.checks = c["checks"]
                items.append(it)
            staged.append((gd, rep, verdict, cands))
        self.checker.check_batch(items)
        out = []
        st = self.stats
        rows = []
        for gd, rep, verdict, cands in staged:
            meta = {
                "backend": self.backend.name,
                "model": self.backend.model,
                "prompt_version": self.prompt.version,
                "params": {
                    "k": self.params.k,
                    "alpha": self.params.alpha,
                    "min_window": self.params.min_window,
                    "narration_pass": self.params.narration_pass,
                    "stride": self.stride or self.params.k,
                },  # fmt: skip
                "attempts": rep.attempts,
                "retry_reasons": rep.retry_reasons,
                "prompt_tokens": rep.prompt_tokens,
                "completion_tokens": rep.completion_tokens,
                "seconds": round(rep.seconds, 3),
                "checks": self.checks,
            }
            # the raw answer goes once per group; the store cuts it to 4 KB and keeps its length
            rows.append((gd.key, cands, redact_deep(verdict.rejected), meta, rep.text))
        store = self.store
        if hasattr(store, "add_group_results"):  # one fdatasync per batch, not per group
            stored_flags = store.add_group_results(rows)
        else:
            stored_flags = [store.add_group_result(*row) for row in rows]
        for (gd, _rep, verdict, cands), stored in zip(staged, stored_flags):
            if stored:
                st.groups_done += 1
                st.questions_valid += len(cands)
                for r in verdict.rejected:
                    st.rejected[r["reason"]] += 1
                for c in cands:
                    ch = c["checks"]
                    if ch.get("duplicate_of"):
                        st.flagged["duplicate"] += 1
                    if ch.get("near_duplicate_of"):
                        st.flagged["near_duplicate"] += 1
                    if (ch.get("ambiguity") or 0) > 0:
                        st.flagged["ambiguous"] += 1
                    if ch.get("window_problems"):
                        st.flagged["window"] += 1
            else:
                st.groups_skipped += 1
            out.append((gd, cands, verdict.rejected))
        return out


__all__ = [
    "GenerationJob",
    "GroupData",
    "GroupReader",
    "Stats",
    "dry_run",
    "make_backend",
    "preview_messages",
    "select_groups",
    "tile_groups",
]
