"""The check-and-store stage of a job: answered groups in, durable candidates out (docs/ARCHITECTURE.md, "Generation").

Runs in a worker thread, a batch of groups at a time: validation (with the variant's policy),
the text checks, the store's one write and one data sync per batch. The embedding checks
(near-duplicates, ambiguity) run here too unless a `DeferredChecks` takes them off this path
(`engine.generation.deferred`), in which case the candidates are stored with those checks
pending and filled in when ready.
"""

from __future__ import annotations

import threading
import time

from engine.generation.base import Reply
from engine.generation.build import apply_checks, build_candidates, group_meta
from engine.generation.groups import GroupData, GroupReader
from engine.generation.quality import Item, QualityChecker
from engine.generation.redact import redact, redact_deep
from engine.generation.stats import Stats
from engine.generation.validate import Verdict, policy_keep, validate
from engine.textsafe import error_line, one_line


class Finisher:
    """Validate, check and store batches of answered groups for one job's variant."""

    def __init__(self, job, checker: QualityChecker, deferred=None, lock=None) -> None:
        self.job = job
        self.lock = lock or threading.Lock()
        self.checker = checker
        self.deferred = deferred  # None: embedding checks inline, before storing
        self.keep = policy_keep(job.variant.policy)
        p = job.params
        self.params = {"k": p.k, "alpha": p.alpha, "min_window": p.min_window, "narration_pass": p.narration_pass,
                       "stride": job.stride or p.k}  # fmt: skip

    def validate(self, gd: GroupData, rep: Reply) -> Verdict:
        """The verdict on one answer; an answer that trips the validator is rejected, not fatal."""
        try:
            return validate(gd.key, gd.texts, gd.flags, text=rep.text, parsed=rep.parsed, items=rep.items,
                            keep=self.keep)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - outside text must never end the job
            v = Verdict()
            v.rejected.append({"group_key": gd.key, "narration": None, "reason": "not_json",
                               "detail": one_line(redact(error_line(exc)), 200), "raw": None})  # fmt: skip
            return v

    def items(self, gd: GroupData, cands: list, embeddings: bool) -> list[Item]:
        reader: GroupReader = self.job.reader
        out = []
        for c in cands:
            if embeddings:
                nkey, texts, target = reader.clip_narrations(gd, c.narration_number - 1)
            else:
                nkey, texts, target = None, None, -1
            out.append(Item(cid=c.id, clip_key=gd.clip_uid, query=c.query, target=target, clip_texts=texts,
                            narr_key=nkey))  # fmt: skip
        return out

    def failures(self, failed: list[tuple[GroupData, Reply]]) -> None:
        """Record groups whose request failed for good (the variants table counts them; a rerun retries)."""
        store = self.job.store
        if not failed:
            return
        for gd, rep in failed:
            with self.lock:
                store.add_failure(
                    self.job.variant.name, gd.key, rep.error or "failed", one_line(redact(rep.error_detail), 300)
                )

    def batch(self, batch: list[tuple[GroupData, Reply]]) -> list[tuple[GroupData, list, list]]:
        """Validate, check and store a batch of answered groups (runs in a worker thread)."""
        job = self.job
        now = time.time()
        staged = []
        inline = self.checker.embeddings and self.deferred is None
        items: list[Item] = []
        for gd, rep in batch:
            if job.index.excluded[gd.video]:  # never a candidate from a val/test video
                continue
            verdict = self.validate(gd, rep)
            cands = build_candidates(gd, verdict, job.variant, now)
            its = self.items(gd, cands, inline or self.deferred is not None)
            items.extend(its)
            staged.append((gd, rep, verdict, cands, its))
        self._check(items, inline)
        stored = self._store(staged)
        return self._count(staged, stored)

    def _check(self, items: list[Item], inline: bool) -> None:
        t0 = time.perf_counter()
        if inline or self.deferred is None:
            self.checker.check_batch(items)
        else:  # text checks now, the embedding checks behind the job
            self.checker.check_batch(items, embeddings=False)
        if inline and items:
            st: Stats = self.job.stats
            st.questions_checked += len(items)
            st.check_seconds += time.perf_counter() - t0

    def _store(self, staged: list) -> list[bool]:
        from engine.store.shards import GroupResult

        job = self.job
        rows = []
        for gd, rep, verdict, cands, its in staged:
            for c, it in zip(cands, its):
                apply_checks(c, it.checks)
                if self.deferred is not None:
                    c.checks.pending = True
            cost = job.backend.cost(rep.prompt_tokens, rep.completion_tokens)
            meta = group_meta(rep, job.variant, self.params, job.checks, cost)
            # the raw answer goes once per group; the store cuts it to 4 KB and keeps its length
            rows.append(GroupResult(gd.key, cands, redact_deep(verdict.rejected), meta, rep.text))
        store = job.store
        with self.lock:
            return store.add_group_results(rows, job.variant)  # one data sync per batch, not per group

    def _count(self, staged: list, stored: list[bool]) -> list[tuple[GroupData, list, list]]:
        st: Stats = self.job.stats
        out = []
        for (gd, _rep, verdict, cands, its), ok in zip(staged, stored):
            if ok:
                st.groups_done += 1
                st.questions_valid += len(cands)
                for r in verdict.rejected:
                    st.rejected[r["reason"]] += 1
                for c in cands:
                    for name in c.flag_names():
                        if name != "checks-pending":  # filled in behind the job, not a finding
                            st.flagged[name] += 1
                if self.deferred is not None and cands:
                    st.checks_pending += len(cands)
                    self.deferred.submit(cands, its)
            else:
                st.groups_skipped += 1
            out.append((gd, cands, verdict.rejected))
        return out
