"""The candidate store: generated questions and the review decisions on them, crash-safe (docs/ARCHITECTURE.md, "Store").

The parts behind the `CandidateStore` facade:

- `shards.ShardLog`: the generated groups, one line each (the only add path), per variant;
- `journal.DecisionJournal`: the review decisions (replay, undo, compaction, second opinions);
- `filters.Filter`: what a queue, a bulk rule or an export selects;
- `early`: the few group lines a second opinion needs, read ahead of the scan.

Why not TinyDB: its JSONStorage rewrites the whole file on every write (about 0.5 s per
keypress at 100k candidates) and a kill during the rewrite tears the only copy. Here every
write is one `write()` of one line followed by a data sync, so a write costs the same at 10 or
100k candidates, and a kill can only tear the last line, which readers ignore and the next
writer cuts off.

Two writers, two locks: the generation job holds the "candidates" lock while it appends group
lines; a review session holds the "decisions" lock while it appends decisions. So one person can
review while a generation job runs (`refresh()` picks up the new groups), and a second review
session gets a WorkspaceError naming the holder instead of interleaving.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.candidate import (
    FLAG_AMBIGUOUS,
    FLAG_DUPLICATE,
    FLAG_NAMES,
    FLAG_NEAR_DUPLICATE,
    FLAG_PENDING,
    FLAG_POLICY,
    FLAG_WINDOW,
    Candidate,
)
from engine.errors import ConfigError
from engine.store import early
from engine.store.filters import OPEN, REVIEWED, STATUSES, Filter
from engine.store.journal import JOURNAL, REVIEW_LOCK, SNAPSHOT, DecisionJournal, Step, count_statuses
from engine.store.rows import GroupResult, Row, encode_group_line
from engine.store.shards import GENERATION_LOCK, SHARD_PREFIX, UNREADABLE, ShardLog
from engine.variants import Variant, group_stat
from engine.workspace import Workspace

__all__ = [
    "ACTIONS",
    "DEFAULT_REASON",
    "FLAG_AMBIGUOUS",
    "FLAG_DUPLICATE",
    "FLAG_NAMES",
    "FLAG_NEAR_DUPLICATE",
    "FLAG_PENDING",
    "FLAG_POLICY",
    "FLAG_WINDOW",
    "GENERATION_LOCK",
    "JOURNAL",
    "OPEN",
    "REJECT_REASONS",
    "REVIEWED",
    "REVIEW_LOCK",
    "SHARD_PREFIX",
    "SNAPSHOT",
    "STATUSES",
    "CandidateStore",
    "Filter",
    "GroupResult",
    "Row",
    "Step",
    "encode_group_line",
]

ACTIONS = {
    "accept": "accepted",
    "reject": "rejected",
    "edit": "edited",
    "skip": "skipped",
    "flag": "flagged",
    "reset": "pending",
}

# Reject reasons in key order: `x` then 1-9 picks one; Enter takes DEFAULT_REASON.
REJECT_REASONS: tuple[tuple[str, str], ...] = (
    ("wrong_window", "window does not fit the question"),
    ("ambiguous", "several moments would answer it"),
    ("unanswerable", "cannot be answered from the video"),
    ("wrong_target", "asks about another narration"),
    ("hallucinated", "mentions things the narration does not"),
    ("duplicate", "duplicate of another question"),
    ("trivial", "too generic or trivial"),
    ("bad_language", "ungrammatical or unclear"),
    ("other", "other"),
)
DEFAULT_REASON = "other"
BULK_ACTIONS = ("accept", "reject", "skip", "flag", "reset")


class CandidateStore:
    """Candidates and review decisions of one workspace.

    Generation: `register_variant(v)`, `done_groups(name)`, `failed_groups(name)`,
    `add_group_results(results, variant=v)`, `add_failure(...)`.
    Review: `load()`, `rows`, `status(id)`, `get(id)`, `decide(...)`, `bulk(...)`, `undo()`,
    `recent()`, `counts()`, `progress()`, `refresh()`, `second_opinion_queue(...)`.
    """

    def __init__(self, workspace: Workspace | str | Path, reviewer: str | None = None) -> None:
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        self.dir = self.workspace.candidates_dir
        self.reviewer = reviewer or os.environ.get("USER") or "reviewer"
        self.problems: list[str] = []  # lines that could not be read, for the UI to show
        self.log = ShardLog(self.dir, self.workspace, self.problems)
        self.journal = DecisionJournal(self.dir, self.workspace, self.reviewer, self.log.problem)
        self.journal.fold_beside = self.log.mutex  # every append runs under it
        self._counter = _StatusCounter(self.log.by_id, self.journal.states)
        self.log.on_rows = self._counter.rows_added
        self.journal.on_change = self._counter.state_changed

    # the parts' state, as the rooms read it ---------------------------------------------------
    rows = property(lambda self: self.log.rows)
    by_id = property(lambda self: self.log.by_id)
    groups = property(lambda self: self.log.groups)
    states = property(lambda self: self.journal.states)
    opinions = property(lambda self: self.journal.opinions)
    undo_stack = property(lambda self: self.journal.undo_stack)
    cursor = property(lambda self: self.journal.cursor)
    scan_done = property(lambda self: self.log.scan_done)
    _seq = property(lambda self: self.journal.seq)

    @property
    def session_decisions(self) -> list[float]:
        """Times of this session's decisions still in effect (undone ones drop out), for the rate."""
        return sorted(self.journal.session.values())

    @property
    def status_counts(self) -> Counter[str]:
        return self._counter.counts

    # reading ----------------------------------------------------------------------------------
    def scan(self, budget: int | None = None) -> int:
        """Read new group lines (see ShardLog.scan); safe from a worker thread while deciding."""
        return self.log.scan(budget, hint=self.journal.cursor if self.journal.prepared else None)

    def load(self) -> CandidateStore:
        """Read every candidate and replay the decisions. Returns self."""
        if not self.log.scanned and not self.log.scan_started:
            self.scan()
        self.load_decisions()
        return self

    def load_decisions(self) -> None:
        """Replay the decisions without reading the candidates (before a progressive `scan`)."""
        if self._counter.on:
            return
        with self.log.mutex:
            self.journal.load()
            self._counter.counts = count_statuses(self.journal.states, self.log.by_id)
            self._counter.on = True

    def prepare_decisions(self) -> None:
        """Read the decisions without applying the journal yet: `early_states` then tells the
        states of the rows read so far, and `load_decisions` applies the rest (docs/ARCHITECTURE.md, "Scale")."""
        with self.log.mutex:
            self.journal.prepare()

    def early_states(self, rows: Iterable[Row]) -> dict[str, dict]:
        """The review states of these rows, exact, before the whole journal is applied (see `prepare_decisions`)."""
        with self.log.mutex:
            return self.journal.early_states(r.id for r in rows)

    def refresh(self) -> int:
        """Pick up candidates a running generation job stored since the last look."""
        return self.scan()

    def get(self, cid: str) -> Candidate:
        """The typed candidate as generated (KeyError if unknown)."""
        self.log.ensure_scanned()
        return self.log.read(self.log.by_id[cid])[0]

    def candidate(self, cid: str) -> dict:
        """The candidate as JSON, plus the group's raw answer, its status and review state."""
        self.log.ensure_scanned()
        c, raw = self.log.read(self.log.by_id[cid])
        d = c.to_json()
        d["raw"] = raw.get("text") if raw else None
        st = self.journal.states.get(cid)
        d["status"] = st["status"] if st else "pending"
        d["review"] = dict(st) if st else None
        return d

    def group_result(self, group_key: str, variant: str | None = None) -> dict:
        for (v, gk), rows in self.log.groups.items():
            if gk == group_key and (variant is None or v == variant) and rows:
                return self.log.group_line(rows[0])
        raise KeyError(group_key)

    def group_rejections(self) -> Iterator[dict]:
        """What generation threw out (a narration without a usable question), every group."""
        for _, r in self.log.rejections():
            yield r

    # generation -------------------------------------------------------------------------------
    def register_variant(self, variant: Variant) -> Variant:
        """Record the variant a job writes (takes the generation lock); the stored one if it exists."""
        return self.log.register_variant(variant)

    def done_groups(self, variant: str | None = None) -> set[str]:
        """Group keys already stored, of one variant (a job resumes within it) or of all."""
        return self.log.done_groups(variant)

    def failed_groups(self, variant: str) -> dict[str, str]:
        """group_key -> reason of the variant's groups that failed and were not stored since."""
        return self.log.failures().get(variant, {})

    def failed_groups_by_variant(self) -> dict[str, dict[str, str]]:
        return self.log.failures()

    def add_failure(self, variant: str, group_key: str, reason: str, detail: str = "") -> None:
        self.log.add_failure(variant, group_key, reason, detail)

    def add_checks(self, variant: str, updates: list[tuple[str, dict]]) -> None:
        """The late embedding checks of stored candidates: [(cid, {"near_duplicate_of", "ambiguity"})]."""
        self.log.add_checks(variant, updates)

    def pending_checks(self, variant: str | None = None) -> list[str]:
        """Ids whose embedding checks never came (a job killed before they caught up)."""
        self.log.ensure_scanned()
        return [r.id for r in self.log.rows if r.flags & FLAG_PENDING and (variant is None or r.variant == variant)]

    def add_group_results(self, results: list, variant: Variant | str | None = None) -> list[bool]:
        """Store many groups with one write and one data sync; per group, False when already stored."""
        return self.log.add(results, variant)

    def add_group_result(
        self,
        group_key: str,
        candidates: list,
        rejected: list[dict],
        meta: dict,
        raw: str | None = None,
        variant: Variant | str | None = None,
    ) -> bool:
        """Store one generated group durably, all of it or nothing. False if it was already stored."""
        return self.log.add([GroupResult(group_key, candidates, rejected, meta, raw)], variant)[0]

    def variants(self) -> list[Variant]:
        return list(self.log.variants().values())

    def group_figures(self) -> dict[str, dict]:
        """Per variant: groups stored, tokens, seconds, cost and generation rejects by reason."""
        out: dict[str, dict] = {}
        for (v, _), _rows in self.log.groups.items():
            f = out.setdefault(v, {"groups": 0, "tokens": 0, "seconds": 0.0, "cost": None, "rejected": Counter()})
            f["groups"] += 1
        for (v, _), stats in self.log.group_stats.items():
            f = out[v]
            f["tokens"] += int(group_stat(stats, "tokens"))
            f["seconds"] += float(group_stat(stats, "seconds"))
            if (cost := group_stat(stats, "cost", None)) is not None:
                f["cost"] = (f["cost"] or 0.0) + cost
        for v, r in self.log.rejections():
            out[v]["rejected"][str(r.get("reason") or "unspecified")] += 1
        return out

    def delete_variant(self, name: str) -> int:
        """Remove a variant's candidates and the decisions on them; needs both writer locks."""
        self.load()
        if name not in self.log.variants():
            raise ConfigError(f"no variant named {name!r}; `nlq-tui variants` lists them")
        self.begin_review("deleting a variant")
        ids = self.log.delete_variant(name)
        self.journal.forget(ids)
        self.close()
        return len(ids)

    # review -----------------------------------------------------------------------------------
    def lock_review(self, purpose: str = "review") -> None:
        """Take the review lock before reading anything (WorkspaceError naming the holder if taken)."""
        self.journal.lock(purpose)

    def begin_review(self, purpose: str = "review", fold: bool = True) -> None:
        """Take the review lock now (the screen calls this on open to fail early and clearly).

        `fold=False` leaves a long journal for `compact_if_due`, so the first card does not
        wait for the snapshot to be written (docs/ARCHITECTURE.md, "Store").
        """
        self.load_decisions()
        with self.log.mutex:
            self.journal.begin(purpose, fold=fold)

    def _at(self, row: Row) -> list:
        return [self.log.shard_name(row), row.offset]

    def decide(
        self, cid: str, action: str, *, reason: str | None = None, text: str | None = None, second: bool = False
    ) -> Step:
        """Record a decision on one candidate; durable (fsynced) when this returns.

        `second`: a second reviewer's blind opinion, kept beside the first decision.
        """
        _check_action(action, reason, text)
        self.load()
        if cid not in self.log.by_id:
            raise KeyError(cid)
        status = ACTIONS[action]
        if status == "rejected":
            reason = reason or DEFAULT_REASON
        elif status != "flagged":
            reason = None
        fields: dict[str, Any] = {"ids": [cid], "status": status, "reason": reason}
        fields["text"] = text if status == "edited" else None
        fields["at"] = self._at(self.log.by_id[cid])
        if second:
            fields["second"] = True
        with self.log.mutex:
            return self.journal.append(self.journal.entry("decide", **fields))  # type: ignore[return-value]

    def bulk(
        self, ids: Iterable[str], action: str, *, reason: str | None = None, rule: str | None = None
    ) -> Step | None:
        """One journal entry that sets the status of exactly these candidates; one undo reverts it."""
        if action not in BULK_ACTIONS:
            raise ValueError(f"bulk action must be {', '.join(BULK_ACTIONS)}, not {action!r}")
        self.load()
        ids = [cid for cid in ids if cid in self.log.by_id]
        if not ids:
            return None
        status = ACTIONS[action]
        fields = {"ids": ids, "status": status, "reason": (reason or DEFAULT_REASON) if status == "rejected" else None}
        with self.log.mutex:
            return self.journal.append(self.journal.entry("bulk", **fields, text=None, rule=rule))

    def bulk_preview(self, rule: Filter, sample: int = 5, seed: int | None = None) -> tuple[list[str], list[Row]]:
        """The ids a bulk step with this rule changes now, and a random sample of their rows."""
        rows = self.select(rule)
        rng = random.Random(seed)
        return [r.id for r in rows], rng.sample(rows, min(sample, len(rows)))

    def remember_position(self, cid: str) -> None:
        """Note where the reviewer left off, so the next open reads that part of the store first."""
        row = self.log.by_id.get(cid)
        if row is None or not self.journal.writing:
            return
        with self.log.mutex:
            self.journal.append(self.journal.entry("cursor", at=self._at(row)))

    def undo(self) -> Step | None:
        """Revert the newest decision or bulk step not yet undone; None if there is none."""
        self.load()
        if not self.journal.undo_stack:
            return None
        target = self.journal.undo_stack[-1]
        with self.log.mutex:
            return self.journal.append(self.journal.entry("undo", target=target.seq))

    def compact(self) -> None:
        """Fold the journal into the snapshot and start an empty journal. Needs the review lock."""
        self.journal.compact()

    def take_fold_problem(self) -> str | None:
        """Why a fold beside the session failed, once (the journal still holds every decision)."""
        problem, self.journal.fold_problem = self.journal.fold_problem, None
        return problem

    def compact_if_due(self) -> bool:
        """Fold a long journal into the snapshot while the review goes on (from a worker thread).

        Decisions made meanwhile wait only for the copy of the states and the journal's swap,
        and land in the new journal (docs/ARCHITECTURE.md, "Store").
        """
        return self.journal.compact_if_due(self.log.mutex)

    # queries ------------------------------------------------------------------------------------
    def status(self, cid: str) -> str:
        st = self.journal.states.get(cid)
        return st["status"] if st else "pending"

    def state(self, cid: str) -> dict | None:
        return self.journal.states.get(cid)

    def decision_of(self, cid: str, reviewer: str | None = None) -> dict | None:
        """The first reviewer's decision, or `reviewer`'s (their opinion, or the first if theirs)."""
        st = self.journal.states.get(cid)
        if reviewer is None or (st and st.get("reviewer") == reviewer):
            return st
        return self.journal.opinions.get(cid, {}).get(reviewer, st)

    def query_text(self, cid: str) -> str:
        """The question as it stands: the edited text where edited."""
        st = self.journal.states.get(cid)
        if st and st.get("status") == "edited" and st.get("text"):
            return st["text"]
        return self.log.by_id[cid].query

    def recent(self, n: int = 10) -> list[Step]:
        """The newest `n` decision steps that are still in effect, newest first."""
        return list(reversed(self.journal.undo_stack[-n:]))

    def counts(self) -> dict[str, int]:
        self.load()
        out = {s: 0 for s in STATUSES}
        with self.log.mutex:
            items = list(self.status_counts.items())
        for k, v in items:
            if k in out:
                out[k] = v
        return out

    def progress(self, now: float | None = None) -> dict:
        """Reviewed/total, this session's decisions per hour (net of undo) and the ETA for the open ones."""
        c = self.counts()
        total = len(self.log.rows)
        reviewed = sum(c[s] for s in REVIEWED)
        now = now or time.time()
        times = self.session_decisions
        rate = 0.0
        if len(times) >= 2:
            span = max(now - times[0], 1e-6)
            rate = len(times) / span * 3600.0
        remaining = total - reviewed
        eta = remaining / rate * 3600.0 if rate > 0 else None
        return {"reviewed": reviewed, "total": total, "per_hour": rate, "eta_s": eta, "counts": c}

    def facets(self) -> dict[str, list[str]]:
        """Distinct values of the filterable columns (for filter pickers)."""
        out: dict[str, set] = {
            "backend_model": set(),
            "prompt_version": set(),
            "template": set(),
            "video_uid": set(),
            "variant": set(),
        }
        for r in self.log.rows:
            out["backend_model"].add(f"{r.backend}/{r.model}")
            out["prompt_version"].add(r.prompt_version)
            out["template"].add(r.template)
            out["video_uid"].add(r.video_uid)
            out["variant"].add(r.variant)
        return {k: sorted(v) for k, v in out.items()}

    def select(self, flt: Filter, upto: int | None = None) -> list[Row]:
        """Rows matching the filter, in store order (of the first `upto` rows if given)."""
        self.load()
        rows = self.log.rows if upto is None else self.log.rows[:upto]
        return flt.select(rows, self.journal.states)

    def second_opinion_draw(self, reviewer: str, seed: int | None = None) -> list[str]:
        """The blind sample's order, drawn from the decisions alone (no candidate read): every
        candidate open to `reviewer`'s second opinion, by id, shuffled. Drawn before the lines
        are read, so the first card can be read and shown before the rest (docs/ARCHITECTURE.md,
        "Scale"); sorted before the shuffle, so one seed gives one order."""
        self.load_decisions()
        states = self.journal.states
        ids = sorted(cid for cid, st in states.items() if self._open_to_second(cid, st, reviewer))
        random.Random(seed).shuffle(ids)
        return ids

    def peek(self, cid: str) -> tuple[Row, Candidate] | None:
        """Candidate `cid` (row and candidate) from the line the journal located it on, read
        without taking it into the store (whose reads in file order decide which copy of a
        repeated id counts); None where no line is known for it, or it is not there whole."""
        place = self.journal.location_of(cid)
        row = None if place is None else early.peek_row(self.log, place, cid)
        if row is None:
            return None
        try:
            return row, self.log.read_exact(row)[0]
        except UNREADABLE:  # no early card: the card's own read names the damaged line, once
            return None

    def _read_ahead(self, ids: list[str]) -> list[str]:
        """Before the scan, read just these candidates' group lines: where the journal located
        them (a keypress decision names its line), then the others by their group keys. The
        store then holds only those until `scan` has read the rest. Returns the ids still not
        read (all the missing ones once the scan has begun: it reads them)."""
        if not self.log.scan_begun:
            located = self.journal.locations()
            early.read_lines(self.log, {located[cid] for cid in ids if cid in located})
            missing = [cid for cid in ids if cid not in self.log.by_id]
            if missing:
                early.read_groups(self.log, {cid.rpartition("#")[0] for cid in missing})
        return [cid for cid in ids if cid not in self.log.by_id]

    def read_second_opinion_groups(self, reviewer: str, draw: list[str] | None = None) -> bool:
        """Before the scan: read just the groups of the candidates a second opinion can be asked
        on (`draw`, default `second_opinion_draw`), so that `second_opinion_queue` is whole before
        the rest of the store is read (`_read_ahead`). False (and the whole store read) when one
        of those candidates was not found that way: an id not of the form `<group_key>#<n>`, a
        candidate no longer stored; the queue is then drawn as before."""
        wanted = self.second_opinion_draw(reviewer) if draw is None else draw
        if not self._read_ahead(wanted):
            return True
        self.scan()
        return False

    def second_opinion_queue(
        self, reviewer: str, flt: Filter | None = None, seed: int | None = None, draw: list[str] | None = None
    ) -> list[Row]:
        """A random, blind sample order of candidates another reviewer decided and `reviewer` has
        not: `draw` (from `second_opinion_draw`) where given, else drawn now with `seed`."""
        self.load()
        flt = flt or Filter(status="all")
        states, by_id = self.journal.states, self.log.by_id
        order = self.second_opinion_draw(reviewer, seed) if draw is None else draw
        rows = [by_id[cid] for cid in order if cid in by_id]
        return [r for r in flt.select(rows, states) if self._open_to_second(r.id, states.get(r.id), reviewer)]

    def _open_to_second(self, cid: str, st: dict | None, reviewer: str) -> bool:
        """Whether `reviewer` may give a second opinion on it: decided by another, not by them yet."""
        return (
            st is not None
            and st["status"] in REVIEWED
            and st.get("reviewer") != reviewer
            and reviewer not in self.journal.opinions.get(cid, {})
        )

    def close(self) -> None:
        self.journal.close()
        self.log.close()

    def __enter__(self) -> CandidateStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _StatusCounter:
    """Candidates per status, kept current as rows come in and decisions change.

    An object of its own that holds the rows and states but not the store: the store's parts
    point at it and nothing points back, so a store a screen lets go of is freed at once
    rather than by the cyclic collector, which would first walk every row (docs/ARCHITECTURE.md,
    "Scale").
    """

    def __init__(self, by_id: dict[str, Row], states: dict[str, dict]) -> None:
        self.by_id, self.states = by_id, states
        self.counts: Counter[str] = Counter()
        self.on = False  # counting starts once the decisions are replayed

    def rows_added(self, rows: list[Row]) -> None:
        if self.on:
            states, counts = self.states, self.counts
            for row in rows:
                st = states.get(row.id)
                counts[st["status"] if st else "pending"] += 1

    def state_changed(self, cid: str, prev: dict | None, new: dict | None) -> None:
        if self.on and cid in self.by_id:
            self.counts[prev["status"] if prev else "pending"] -= 1
            self.counts[new["status"] if new else "pending"] += 1


def _check_action(action: str, reason: str | None, text: str | None) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if action == "edit" and not (isinstance(text, str) and text.strip()):
        raise ValueError("an edit needs the new text")
