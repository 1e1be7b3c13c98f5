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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.errors import ConfigError, UserError
from engine.generation.base import Backend, Reply, Request
from engine.generation.openai_backend import FATAL
from engine.generation.prompt import Prompt, current_prompt
from engine.generation.quality import Item, QualityChecker
from engine.generation.validate import Verdict, validate
from engine.index import Index
from engine.windows import REASONS, WINDOW_REASONS, WindowParams, WindowResult, compute

CHECK_BATCH = 512  # groups per check-and-store batch (one embedding batch, one fdatasync)


# ---------------------------------------------------------------------------------------------
# choosing groups


def tile_groups(result: WindowResult, stride: int | None = None) -> np.ndarray:
    """Group indices with first rows at least `stride` apart within a video (default k: no overlap).

    The lab's groups start at every narration (stride 1); greedy tiling keeps a group when it
    starts `stride` rows after the last kept one, so each narration gets one question and a
    clip boundary does not shift the rest of the video out of step.
    """
    stride = result.k if stride is None else int(stride)
    if stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {stride}")
    rows, vids = result.group_row, result.group_video
    n = len(rows)
    if stride == 1 or n == 0:
        return np.arange(n, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    last_row, last_vid = -(1 << 62), -1
    for i, (r, v) in enumerate(zip(rows.tolist(), vids.tolist())):
        if v != last_vid or r >= last_row + stride:
            keep[i] = True
            last_row, last_vid = r, v
    return np.flatnonzero(keep)


def select_groups(
    result: WindowResult,
    *,
    stride: int | None = None,
    n: int | None = None,
    seed: int = 0,
    per_video: int | None = None,
) -> np.ndarray:
    """The groups a job works on, in generation order (ascending group index).

    All tiled groups, or `n` of them sampled with `seed`, at most `per_video` from one video.
    Never a group of an excluded (val/test) video. The same arguments give the same groups.
    """
    if n is not None and n < 1:
        raise ConfigError(f"--groups must be >= 1, got {n}")
    if per_video is not None and per_video < 1:
        raise ConfigError(f"--per-video must be >= 1, got {per_video}")
    tiled = tile_groups(result, stride)
    excluded = np.asarray(result.index.excluded, dtype=bool)
    if len(tiled):
        tiled = tiled[~excluded[result.group_video[tiled]]]
    if n is None and per_video is None:
        return tiled
    rng = np.random.default_rng(seed)
    order = tiled[rng.permutation(len(tiled))] if n is not None else tiled
    if per_video is not None:
        vids = result.group_video[order]
        # rank of each group within its video in `order`
        sort = np.argsort(vids, kind="stable")
        sv = vids[sort]
        starts = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
        rank = np.empty(len(order), dtype=np.int64)
        rank[sort] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        order = order[rank < per_video]
    if n is not None:
        order = order[:n]
    return np.sort(order)


# ---------------------------------------------------------------------------------------------
# one group's data


@dataclass
class GroupData:
    g: int
    key: str
    video: int
    clip: int
    video_uid: str
    clip_uid: str
    clip_start: float
    clip_end: float
    passes: list[int]  # narration pass of each narration
    pass_rows: list[int]  # row in index.passes[p] of each narration
    texts: list[str]
    uids: list[str]
    times: list[float]
    flags: list[int]
    starts: list[float | None]
    ends: list[float | None]
    problems: list[list[str]]


def _pass_offsets(index: Index, narration_pass) -> np.ndarray:
    if narration_pass == "both":
        return index.passes[1].video_offsets + index.passes[2].video_offsets
    return index.passes[int(narration_pass)].video_offsets


def _texts(col, rows: np.ndarray) -> list[str]:
    """Decode many strings of a TextColumn at once (its offsets may be a memmap: one gather)."""
    rows = np.asarray(rows, dtype=np.int64)
    a = np.asarray(col.offsets[rows]).tolist()
    b = np.asarray(col.offsets[rows + 1]).tolist()
    blob = col.blob
    return [bytes(blob[x:y]).decode("utf-8") for x, y in zip(a, b)]


class GroupReader:
    """Turns group indices of a WindowResult into GroupData (texts, windows, keys), in batches.

    `prefetch(groups)` computes the windows of a whole selection in one vectorised call, so a
    job asking for one group at a time (the openai backend) costs no per-request array work.
    """

    def __init__(self, result: WindowResult) -> None:
        self.result = result
        self.index = result.index
        self.k = result.k
        p = result.params.narration_pass
        self.narration_pass = p
        self.offsets = _pass_offsets(self.index, p)
        self.ptag = "pb" if p == "both" else f"p{int(p)}"
        self._bit_names = [(1 << (c - 1), REASONS[c][0]) for c in WINDOW_REASONS]
        self._pre: dict[int, int] = {}
        self._pre_t = self._pre_s = self._pre_e = self._pre_b = None

    def key(self, g: int) -> str:
        r = self.result
        v = int(r.group_video[g])
        rel = int(r.group_row[g]) - int(self.offsets[v])
        return f"{self.index.video_uids[v]}/{self.index.clip_uids[int(r.group_clip[g])]}/{self.ptag}/k{self.k}/{rel}"

    def keys(self, groups: np.ndarray) -> list[str]:
        r, idx = self.result, self.index
        groups = np.asarray(groups, dtype=np.int64)
        vids = r.group_video[groups]
        rel = (r.group_row[groups] - self.offsets[vids]).tolist()
        clips = r.group_clip[groups].tolist()
        vu, cu, tail = idx.video_uids, idx.clip_uids, f"{self.ptag}/k{self.k}"
        return [f"{vu[v]}/{cu[c]}/{tail}/{x}" for v, c, x in zip(vids.tolist(), clips, rel)]

    def texts(self, groups: np.ndarray) -> tuple[list[list[str]], list[list[int]]]:
        """(texts, flags) of each group's narrations: what a backend reads, nothing more.

        Each narration row is decoded once even where groups overlap (stride 1).
        """
        if self.narration_pass == "both":
            gds = self.read(groups)
            return [g.texts for g in gds], [g.flags for g in gds]
        k = self.k
        arr = self.index.passes[int(self.narration_pass)]
        rows = self.result.group_row[np.asarray(groups, dtype=np.int64)][:, None] + np.arange(k)
        uniq, inv = np.unique(rows, return_inverse=True)
        decoded = _texts(arr.text, uniq)
        flags = np.asarray(arr.flags[uniq])[inv].reshape(-1, k).tolist()
        flat = [decoded[i] for i in inv.reshape(-1).tolist()]
        return [flat[j : j + k] for j in range(0, len(flat), k)], flags

    def _windows(self, groups: np.ndarray):
        k = self.k
        w = (groups[:, None] * k + np.arange(k)).reshape(-1)
        t, start, end = self.result.window_fields(w)
        return (t.reshape(-1, k), start.reshape(-1, k), end.reshape(-1, k),
                np.asarray(self.result.reason_bits[w]).reshape(-1, k))  # fmt: skip

    def prefetch(self, groups: np.ndarray) -> None:
        groups = np.asarray(groups, dtype=np.int64)
        if not len(groups):
            return
        self._pre_t, self._pre_s, self._pre_e, self._pre_b = self._windows(groups)
        self._pre = {g: i for i, g in enumerate(groups.tolist())}

    def read(self, groups: np.ndarray) -> list[GroupData]:
        r, idx, k = self.result, self.index, self.k
        groups = np.asarray(groups, dtype=np.int64)
        if not len(groups):
            return []
        pos = [self._pre.get(g, -1) for g in groups.tolist()]
        if all(i >= 0 for i in pos):
            t, start, end, bits = self._pre_t[pos], self._pre_s[pos], self._pre_e[pos], self._pre_b[pos]
        else:
            t, start, end, bits = self._windows(groups)
        rows = (r.group_row[groups][:, None] + np.arange(k)).reshape(-1)
        if self.narration_pass == "both":
            src = [r.narration(int(x)) for x in rows]
            passes = [int(d["pass"]) for d in src]
            prows = [int(d["pass_row"]) for d in src]
            texts = [d["text"] for d in src]
            uids = [d["annotation_uid"] for d in src]
            flags = [int(idx.passes[p].flags[pr]) for p, pr in zip(passes, prows)]
        else:
            p = int(self.narration_pass)
            arr = idx.passes[p]
            passes = [p] * len(rows)
            prows = rows.tolist()
            texts = _texts(arr.text, rows)
            uids = _texts(arr.uid, rows)
            flags = np.asarray(arr.flags[rows]).tolist()
        vids = r.group_video[groups].tolist()
        clips = r.group_clip[groups].tolist()
        keys = self.keys(groups)
        t_l = np.round(t, 4).tolist()
        s_l = np.where(np.isfinite(start), np.round(start, 4), np.nan).tolist()
        e_l = np.where(np.isfinite(end), np.round(end, 4), np.nan).tolist()
        bits_l = bits.tolist()
        names = self._bit_names
        out = []
        for j, g in enumerate(groups.tolist()):
            v, c = vids[j], clips[j]
            sl = slice(j * k, (j + 1) * k)
            out.append(
                GroupData(
                    g=g,
                    key=keys[j],
                    video=v,
                    clip=c,
                    video_uid=idx.video_uids[v],
                    clip_uid=idx.clip_uids[c],
                    clip_start=float(idx.clip_start[c]),
                    clip_end=float(idx.clip_end[c]),
                    passes=passes[sl],
                    pass_rows=prows[sl],
                    texts=texts[sl],
                    uids=uids[sl],
                    times=t_l[j],
                    flags=flags[sl],
                    starts=[None if x != x else x for x in s_l[j]],
                    ends=[None if x != x else x for x in e_l[j]],
                    problems=[[n for bit, n in names if b & bit] if b else [] for b in bits_l[j]],
                )
            )
        return out

    def clip_narrations(self, gd: GroupData, pos: int) -> tuple[str, list[str], int]:
        """(cache key, texts of the clip's narrations in the target's pass, target position)."""
        p, pr = gd.passes[pos], gd.pass_rows[pos]
        arr = self.index.passes[p]
        lo, hi = int(arr.video_offsets[gd.video]), int(arr.video_offsets[gd.video + 1])
        times = arr.time[lo:hi]
        a = lo + int(np.searchsorted(times, gd.clip_start, "left"))
        b = lo + int(np.searchsorted(times, gd.clip_end, "right"))
        return f"{gd.clip_uid}/p{p}", [arr.text[i] for i in range(a, b)], pr - a


# ---------------------------------------------------------------------------------------------
# statistics


@dataclass
class Stats:
    groups_total: int = 0  # groups selected
    groups_skipped: int = 0  # already done before this run
    groups_done: int = 0  # stored by this run
    groups_failed: int = 0  # not stored: request failed for good (retried next run)
    requests: int = 0  # backend requests that completed (answered or failed for good)
    failed_requests: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> failed requests
    retries: Counter = field(default_factory=Counter)  # reason -> retried attempts
    questions_valid: int = 0
    rejected: Counter = field(default_factory=Counter)  # validation reason -> questions
    flagged: Counter = field(default_factory=Counter)  # quality flag -> candidates
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    state: str = "idle"  # idle | running | paused | cancelled | done | failed
    error: str | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def remaining(self) -> int:
        return max(0, self.groups_total - self.groups_skipped - self.groups_done - self.groups_failed)

    @property
    def rate(self) -> float:
        """Groups finished per second in this run."""
        s = self.seconds
        return (self.groups_done + self.groups_failed) / s if s > 0 else 0.0

    @property
    def eta(self) -> float | None:
        r = self.rate
        return self.remaining / r if r > 0 else None

    def as_json(self) -> dict:
        return {
            "state": self.state,
            "groups_total": self.groups_total,
            "groups_skipped": self.groups_skipped,
            "groups_done": self.groups_done,
            "groups_failed": self.groups_failed,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "failures": dict(self.failures),
            "retries": dict(self.retries),
            "questions_valid": self.questions_valid,
            "questions_rejected": dict(self.rejected),
            "flagged": dict(self.flagged),
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": None if self.cost is None else round(self.cost, 6),
            "seconds": round(self.seconds, 3),
            "groups_per_second": round(self.rate, 3),
            "requests_per_second": round(self.requests / self.seconds, 3) if self.seconds > 0 else 0.0,
            "error": self.error,
        }


# ---------------------------------------------------------------------------------------------
# the job


def build_candidates(
    gd: GroupData, verdict: Verdict, reply: Reply, backend: Backend, prompt_version: int, now: float
) -> list[dict]:
    # times and windows were rounded to 0.1 ms when the group was read
    group_narrations = [{"uid": u, "text": t, "t": x} for u, t, x in zip(gd.uids, gd.texts, gd.times)]
    raw = reply.text if reply.text is not None else backend.name
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
                "query": query,
                "backend": backend.name,
                "model": backend.model,
                "prompt_version": prompt_version,
                "raw": raw,
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
    def prepare(self) -> None:
        """Compute groups, select, and drop the ones already stored. Blocking; call once."""
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
        if self.todo and hasattr(store, "add_group_results"):
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
            st.error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
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
        c = self.backend.cost(st.tokens)
        if c is not None:
            st.cost = c
        if rep.failed:
            st.failed_requests += 1
            st.failures[rep.error] += 1
            st.groups_failed += 1
            self._emit({"type": "failure", "group_key": gd.key, "reason": rep.error, "detail": rep.error_detail})
            if rep.error in FATAL and not fatal:
                fatal.append(f"{self.backend.describe()}: {rep.error_detail or rep.error}; stopped")

    def _finish_batch(self, batch: list[tuple[GroupData, Reply]]) -> list[tuple[GroupData, list, list]]:
        """Validate, check and store a batch of answered groups (runs in a worker thread)."""
        now = time.time()
        staged = []
        items: list[Item] = []
        for gd, rep in batch:
            if self.index.excluded[gd.video]:  # never a candidate from a val/test video
                continue
            verdict = validate(gd.key, gd.texts, gd.flags, text=rep.text, parsed=rep.parsed, items=rep.items)
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
            rows.append((gd.key, cands, verdict.rejected, meta))
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


# ---------------------------------------------------------------------------------------------
# one group, no store: the dry run and the prompt preview


def preview_messages(result: WindowResult, g: int, prompt: Prompt) -> tuple[GroupData, list[dict]]:
    gd = GroupReader(result).read(np.array([g]))[0]
    return gd, prompt.messages(gd.texts)


async def dry_run(result: WindowResult, g: int, backend: Backend, prompt: Prompt) -> dict:
    """Send one group and report the raw answer and what validation made of it; stores nothing."""
    gd, messages = preview_messages(result, g, prompt)
    try:
        rep = (await backend.complete([Request(gd.key, messages, gd.texts, gd.flags)]))[0]
    finally:
        await backend.aclose()
    parsed = rep.parsed
    if parsed is None and rep.items is not None:
        parsed = {"questions": [{"narration": n, "query": q} for n, q in rep.items]}
    out = {"group_key": gd.key, "messages": messages, "narrations": gd.texts, "raw": rep.text, "parsed": parsed,
           "error": rep.error, "error_detail": rep.error_detail, "attempts": rep.attempts,
           "tokens": rep.tokens, "seconds": round(rep.seconds, 3)}  # fmt: skip
    if not rep.failed:
        v = validate(gd.key, gd.texts, gd.flags, text=rep.text, parsed=rep.parsed, items=rep.items)
        out["accepted"] = [{"narration": n, "query": q} for n, q in v.accepted]
        out["rejected"] = v.rejected
    return out


def make_backend(
    name: str,
    *,
    model: str | None = None,
    base_urls: list[str] | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int | None = None,
    timeout: float = 120.0,
    max_retries: int = 5,
    price_per_1k: float | None = None,
    batch_size: int | None = None,
    max_tokens: int = 1024,
    temperature: float | None = 0.7,
    structured: bool = True,
    device: str | None = None,
) -> Backend:
    """A backend by name, from CLI / screen settings. Raises ConfigError for bad settings."""
    if name == "template":
        from engine.generation.template import TemplateBackend

        return TemplateBackend()
    if name == "openai":
        from engine.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(
            model or "",
            base_urls or None,
            api_key_env=api_key_env,
            concurrency=concurrency or 8,
            timeout=timeout,
            max_retries=max_retries,
            price_per_1k=price_per_1k,
            max_tokens=max_tokens,
            temperature=temperature,
            structured=structured,
        )
    if name == "hf":
        from engine.generation.hf_backend import HFBackend

        if not model:
            raise ConfigError("the hf backend needs --model PATH (a local transformers model folder)")
        return HFBackend(model, batch_size=batch_size or 8, max_new_tokens=max_tokens, device=device,
                         temperature=temperature)  # fmt: skip
    raise ConfigError(f"unknown backend {name!r}: choose template, openai or hf")


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
