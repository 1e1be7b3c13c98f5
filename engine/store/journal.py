"""The decision journal: review decisions, undo, replay and compaction (docs/ARCHITECTURE.md, "Store").

    decisions.jsonl            one line per decision, undo, bulk step or cursor note
    decisions.snapshot.json    the journal folded into per-candidate states (written atomically)

Decisions are replayed on open: `decide` and `bulk` entries set the status of their ids, an
`undo` entry reverts the newest entry not yet undone (so undo has many levels and one undo
reverts a whole bulk step). A decision marked `second` is a second reviewer's blind opinion:
it lands beside the first decision (`opinions`), never over it. Every so often the journal is
folded into the snapshot (states, opinions, the last `UNDO_KEEP` undoable steps) and restarted;
seq numbers make that idempotent if a kill lands between the two steps. A line or a snapshot
state with the wrong types is skipped and counted, so the rest stays reviewable.
"""

from __future__ import annotations

import bisect
import gc
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import WorkspaceError
from engine.store.filters import STATUSES
from engine.store.lines import append_durably, cut_torn_tail, loads, open_append, read_complete_lines
from engine.store.snapshot import (
    MAX_OFFSET,
    STATE_FIELDS,
    columns_ok,
    encode_snapshot,
    located_columns,
    merge_locations,
    state_dicts,
)
from engine.workspace import atomic_write_bytes, fsync_dir

JOURNAL = "decisions.jsonl"
SNAPSHOT = "decisions.snapshot.json"
COMPACT_EVERY = 10_000  # journal entries before they are folded into the snapshot (in session or on open)
COMPACT_ON_CLOSE = 1_000  # a clean close folds even this many, so the next open replays little
UNDO_KEEP = 1000  # undoable steps kept across a compaction
REVIEW_LOCK = "decisions"


@dataclass(slots=True)
class Step:
    """One undoable journal entry as applied: what it set and what it replaced."""

    seq: int
    op: str  # "decide" | "bulk"
    ids: list[str]
    status: str
    reason: str | None
    text: str | None
    reviewer: str
    t: float
    rule: str | None = None
    before: dict[str, dict | None] = field(default_factory=dict)
    second: bool = False  # a second reviewer's opinion, kept beside the first decision

    def to_json(self) -> dict:
        out = {
            "seq": self.seq,
            "op": self.op,
            "ids": self.ids,
            "status": self.status,
            "reason": self.reason,
            "text": self.text,
            "reviewer": self.reviewer,
            "t": self.t,
            "rule": self.rule,
            "before": self.before,
        }
        if self.second:
            out["second"] = True
        return out

    @classmethod
    def from_json(cls, d: dict) -> Step:
        step = cls.from_entry(d)
        before = d.get("before")
        step.before = {k: v for k, v in before.items() if v is None or _state_ok(v)} if isinstance(before, dict) else {}
        return step

    @classmethod
    def from_entry(cls, d: dict) -> Step:
        return cls(
            int(d["seq"]),
            d["op"],
            list(d["ids"]),
            d["status"],
            d.get("reason"),
            d.get("text"),
            d.get("reviewer") or "",
            float(d.get("t") or 0),
            d.get("rule"),
            second=bool(d.get("second")),
        )


def _opt_str(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _state_ok(st: Any) -> bool:
    return (
        isinstance(st, dict)
        and st.get("status") in STATUSES
        and _opt_str(st.get("reason"))
        and _opt_str(st.get("text"))
        and _opt_str(st.get("reviewer"))
    )


def entry_ok(e: Any) -> bool:
    """Whether a journal line has the types replay needs (a wrong-typed one is skipped and counted).

    Inlined rather than built from small helpers: it runs once per line on every open, before
    the first card shows (docs/ARCHITECTURE.md, "Scale").
    """
    if not isinstance(e, dict):
        return False
    seq = e.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return False
    op = e.get("op")
    if op == "decide" or op == "bulk":
        ids = e.get("ids")
        if not isinstance(ids, list) or e.get("status") not in STATUSES:
            return False
        for i in ids:
            if not isinstance(i, str):
                return False
        x = e.get("reason")
        if x is not None and not isinstance(x, str):
            return False
        x = e.get("text")
        if x is not None and not isinstance(x, str):
            return False
        x = e.get("reviewer")
        if x is not None and not isinstance(x, str):
            return False
        x = e.get("t")
        if x is not None and not isinstance(x, (int, float)):
            return False
        x = e.get("at")
        return x is None or _at_ok(x)
    if op == "undo":
        return isinstance(e.get("target"), int)
    if op == "cursor":
        return e.get("at") is None or _at_ok(e.get("at"))
    return False


def _at_ok(at: Any) -> bool:
    return isinstance(at, list) and len(at) == 2 and isinstance(at[0], str) and isinstance(at[1], int)


class DecisionJournal:
    """Review states of one workspace's candidates, replayed from the journal and its snapshot."""

    def __init__(self, directory: Path, workspace, reviewer: str, problem: Callable[[str], None]) -> None:
        self.dir = directory
        self.workspace = workspace
        self.reviewer = reviewer
        self.problem = problem
        self.states: dict[str, dict] = {}
        self.opinions: dict[str, dict[str, dict]] = {}  # cid -> reviewer -> a second opinion
        self.undo_stack: list[Step] = []
        self.cursor: tuple[str, int] | None = None
        self.seq = 0
        self.loaded = False
        self.entries = 0
        self._read_to = 0
        self._lock = None
        self._fd: int | None = None
        self._snapshot_damaged = False
        self.on_change: Callable[[str, dict | None, dict | None], None] | None = None
        self.session: dict[int, float] = {}  # seq -> time of this session's decisions, net of undo
        self._parsed: list[dict] | None = None  # entries read by `prepare`, not yet applied
        self._folding = threading.Lock()  # one fold at a time: in a keypress, beside the review, on close
        # Where the line of a candidate decided by a keypress is (a decide entry's "at"): a second
        # opinion reads just those lines (docs/ARCHITECTURE.md, "Scale"). Hints, checked where
        # used: the snapshot's columns as loaded (turned into a dict only when asked), then the
        # journal's, newer.
        self._located_snap: tuple[list, list, list, list] | None = None
        self._located: dict[str, tuple[str, int]] = {}
        # The lock every append runs under (the store's mutex): when set, a fold that falls due
        # in a session runs in a thread beside it (`_fold_due`), not inside that keypress.
        self.fold_beside: Any = None
        self._fold_thread: threading.Thread | None = None
        self._fold_failed_at = -1  # `entries` when a fold beside failed (a full disk): retried later
        self.fold_problem: str | None = None  # that failure, for the screen to say once (then None)

    # replay ----------------------------------------------------------------------------------
    @property
    def prepared(self) -> bool:
        """Read (`prepare`) or applied (`load`): `cursor` is final either way."""
        return self.loaded or self._parsed is not None

    def load(self) -> None:
        if self.loaded:
            return
        self.prepare()
        # Replay makes a few objects per entry and no cycle: the cyclic collector would walk
        # everything alive (a million rows when the screen is opened again) for nothing, while
        # the first card waits (docs/ARCHITECTURE.md, "Scale").
        collecting = gc.isenabled()
        gc.disable()
        try:
            apply = self.apply
            for entry in self._parsed or ():
                apply(entry)
        finally:
            if collecting:
                gc.enable()
        self._parsed = None
        self.loaded = True

    def prepare(self) -> None:
        """Read the snapshot and the journal's entries, without applying the entries yet.

        Sets `cursor` (where the reviewer left off) as `load` will; `early_states` then gives
        the states of a few candidates, so a first card can show before the whole journal is
        applied (docs/ARCHITECTURE.md, "Store").
        """
        if self.prepared:
            return
        if self.dir.exists() and not self.dir.is_dir():
            raise WorkspaceError(f"{self.dir}: is a file where the candidates folder should be; move it aside")
        collecting = gc.isenabled()
        gc.disable()
        try:
            # The journal first, then the snapshot: a compaction between the two reads then only
            # makes the snapshot newer, and seq numbers skip what it already holds.
            lines, end = read_complete_lines(self.dir / JOURNAL)
            upto = self._load_snapshot()
            self._parsed = self._read_entries(lines, upto)
        finally:
            if collecting:
                gc.enable()
        self._read_to = end

    def _read_entries(self, lines: list[tuple[int, bytes]], upto: int) -> list[dict]:
        """The well-typed entries past the snapshot, in order; sets `cursor` to the last one's."""
        out = []
        cursor = self.cursor
        for offset, raw in lines:
            try:
                entry = loads(raw)
            except (ValueError, RecursionError):
                entry = None
            if not entry_ok(entry):
                self.problem(f"{JOURNAL} at byte {offset}: unreadable decision skipped")
                continue
            self.entries += 1
            if entry["seq"] > upto:
                out.append(entry)
                at = entry.get("at")
                if entry["op"] == "cursor":
                    cursor = (at[0], at[1]) if at else None
                elif at and entry["op"] != "undo":
                    cursor = (at[0], at[1])
        self.cursor = cursor
        return out

    def early_states(self, ids: Iterable[str]) -> dict[str, dict]:
        """The states these candidates get once `load` applied the journal, between `prepare` and `load`.

        The same replay as `apply`, undo included, for these ids only: cheap for a few hundred
        ids, while the whole journal's may take a while (docs/ARCHITECTURE.md, "Scale").
        """
        want = set(ids)
        if self.loaded:
            return {cid: self.states[cid] for cid in want if cid in self.states}
        collecting = gc.isenabled()
        gc.disable()  # a tuple per step and no cycle, as in `load`
        try:
            return self._early_states(want)
        finally:
            if collecting:
                gc.enable()

    def _early_states(self, want: set[str]) -> dict[str, dict]:
        out = {cid: self.states[cid] for cid in want if cid in self.states}
        # (seq, ids, before) per undoable step; an opinion's before is None: it never sets a state.
        stack = [(st.seq, st.ids, None if st.second else st.before) for st in self.undo_stack]
        for e in self._parsed or ():
            op = e["op"]
            if op == "decide" or op == "bulk":
                ids_ = e["ids"]
                before: dict | None = None
                if not want.isdisjoint(ids_) and not e.get("second"):
                    before = {}
                    new = _state_of(e) if e["status"] != "pending" else None
                    for cid in ids_:
                        if cid in want:
                            before[cid] = out.get(cid)
                            _put(out, cid, new)
                stack.append((e["seq"], ids_, before))
            elif op == "undo":
                target = e.get("target")
                i = next((i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == target), None)
                if i is not None:
                    _, ids_, before = stack.pop(i)
                    if before is not None:
                        for cid in ids_:
                            if cid in want:
                                _put(out, cid, before.get(cid))
        return out

    def _load_snapshot(self) -> int:
        path = self.dir / SNAPSHOT
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return 0
        try:
            snap = loads(raw)
            if not isinstance(snap, dict) or isinstance(snap.get("upto_seq", 0), bool):
                raise TypeError("not an object")
            upto = int(snap.get("upto_seq", 0))
            states = snap.get("states") or {}
            items: list | None = None
            if snap.get("version", 1) >= 2:
                cols = [states[name] for name in STATE_FIELDS]
                if columns_ok(states["ids"], cols):
                    self.states.update(zip(states["ids"], state_dicts(cols)))
                    items = []
                else:
                    pairs = zip(states["ids"], *cols)
                    items = [(cid, dict(zip(STATE_FIELDS, vals))) for cid, *vals in pairs]
            else:
                items = list(states.items())
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            self._snapshot_damaged = True
            self.problem(
                f"{path}: unreadable ({type(exc).__name__}); its decisions are not shown, and it is kept "
                f"aside as {SNAPSHOT}.damaged when the journal is next folded"
            )
            return 0
        bad = 0
        for cid, st in items:
            if isinstance(cid, str) and _state_ok(st):
                self.states[cid] = st
            else:
                bad += 1
        if bad:
            self.problem(f"{SNAPSHOT}: {bad} decisions with wrong types skipped")
        self.undo_stack = self._snapshot_steps(snap.get("undo"))
        opinions = snap.get("opinions")
        if isinstance(opinions, dict):
            for cid, by in opinions.items():
                if isinstance(by, dict):
                    self.opinions[cid] = {r: st for r, st in by.items() if _state_ok(st)}
        cursor = snap.get("cursor")
        self.cursor = (cursor[0], cursor[1]) if cursor is not None and _at_ok(cursor) else None
        self._located_snap = located_columns(snap.get("located"))
        self.seq = upto
        return upto

    def _snapshot_steps(self, undo: Any) -> list[Step]:
        out = []
        for d in undo if isinstance(undo, list) else []:
            if entry_ok(d) and d.get("op") in ("decide", "bulk"):
                out.append(Step.from_json(d))
            else:
                self.problem(f"{SNAPSHOT}: an undo step with wrong types skipped")
        return out

    def apply(self, entry: dict) -> Step | None:
        """Apply one journal entry to the in-memory states; returns the step it made or undid."""
        self.seq = max(self.seq, int(entry["seq"]))
        op = entry.get("op")
        if op in ("decide", "bulk"):
            at = entry.get("at")
            if at:
                self.cursor = (at[0], at[1])
            step = Step.from_entry(entry)
            if at and op == "decide" and len(step.ids) == 1 and type(at[1]) is int and 0 <= at[1] < MAX_OFFSET:
                self._located[step.ids[0]] = (at[0], at[1])
            state = {
                "status": step.status,
                "reason": step.reason,
                "text": step.text,
                "reviewer": step.reviewer,
                "t": step.t,
                "seq": step.seq,
            }
            new = state if step.status != "pending" else None
            if step.second:
                for cid in step.ids:
                    prev = self._get(cid, step)
                    step.before[cid] = prev
                    self._set(cid, step, prev, new)
            else:
                # _set inlined: this loop runs once per id of every entry replayed on open.
                states, before, on_change = self.states, step.before, self.on_change
                for cid in step.ids:
                    prev = states.get(cid)
                    before[cid] = prev
                    if new is None:
                        states.pop(cid, None)
                    else:
                        states[cid] = new
                    if on_change is not None:
                        on_change(cid, prev, new)
            self.undo_stack.append(step)
            return step
        if op == "cursor":  # where the reviewer left off; nothing to undo
            at = entry.get("at")
            self.cursor = (at[0], at[1]) if at else None
            return None
        if op == "undo":
            target = entry.get("target")
            idx = next((i for i in range(len(self.undo_stack) - 1, -1, -1) if self.undo_stack[i].seq == target), None)
            if idx is None:
                return None
            step = self.undo_stack.pop(idx)
            self.session.pop(step.seq, None)
            for cid in step.ids:
                self._set(cid, step, self._get(cid, step), step.before.get(cid))
            return step
        return None

    def _get(self, cid: str, step: Step) -> dict | None:
        if step.second:
            return self.opinions.get(cid, {}).get(step.reviewer)
        return self.states.get(cid)

    def _set(self, cid: str, step: Step, prev: dict | None, new: dict | None) -> None:
        if step.second:
            by = self.opinions.setdefault(cid, {})
            if new is None:
                by.pop(step.reviewer, None)
                if not by:
                    self.opinions.pop(cid, None)
            else:
                by[step.reviewer] = new
            return
        if new is None:
            self.states.pop(cid, None)
        else:
            self.states[cid] = new
        if self.on_change is not None:
            self.on_change(cid, prev, new)

    # writing ---------------------------------------------------------------------------------
    @property
    def writing(self) -> bool:
        return self._fd is not None

    def begin(self, purpose: str = "review", fold: bool = True) -> None:
        """Take the review lock now (the screen calls this on open to fail early and clearly).

        `fold`: fold a long journal into the snapshot now; the screen passes False and folds
        beside the review with `compact_if_due` once its first card shows.
        """
        if self._fd is not None:
            return
        self.load()
        self.lock(purpose)
        journal = self.dir / JOURNAL
        cut_torn_tail(journal)
        # Entries another session wrote between our read and our lock.
        lines, end = read_complete_lines(journal, self._read_to)
        for _, raw in lines:
            try:
                entry = loads(raw)
            except (ValueError, RecursionError):
                continue
            if not entry_ok(entry):
                continue
            self.entries += 1
            if entry["seq"] > self.seq:
                self.apply(entry)
        self._read_to = end
        self._fd = open_append(journal)
        fsync_dir(self.dir)
        # Under the caller's mutex: never wait for a fold beside the review (it needs that mutex).
        if fold and self.entries >= COMPACT_EVERY and self._folding.acquire(blocking=False):
            try:
                self._fold(self._image(), None)
            finally:
                self._folding.release()

    def lock(self, purpose: str = "review") -> None:
        """Take the review lock only (`begin` opens the journal later). Taken before anything is
        read, no other session can write between this session's read and its first decision."""
        if self._lock is None:
            self._lock = self.workspace.acquire(REVIEW_LOCK, f"{purpose} by {self.reviewer}")

    def append(self, entry: dict) -> Step | None:
        """Write one entry durably, then apply it; compacts now and then."""
        if self._fd is None:
            self.begin()
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8", "backslashreplace")
        append_durably(self._fd, data, self.dir / JOURNAL, "the decision")  # type: ignore[arg-type]
        self.entries += 1
        step = self.apply(entry)
        if entry.get("op") == "decide" and step is not None:
            self.session[step.seq] = step.t
        # Keeps what a kill leaves to replay bounded in a long session: the snapshot is
        # rewritten once per COMPACT_EVERY entries, after this entry is already durable.
        if entry.get("op") != "cursor" and self.entries >= COMPACT_EVERY:
            self._fold_due()
        return step

    def _fold_due(self) -> None:
        """Fold the journal, which holds COMPACT_EVERY entries now: beside the session in a
        thread when `fold_beside` is set (the keypress that made it due waits for nothing; at a
        million candidates a fold takes ~0.2 s), else here. Never while another fold runs."""
        if self.fold_beside is None:
            if self._folding.acquire(blocking=False):
                try:
                    self._fold(self._image(), None)
                finally:
                    self._folding.release()
            return
        if self._folding.locked() or (self._fold_thread is not None and self._fold_thread.is_alive()):
            return
        if self._fold_failed_at >= 0 and self.entries < self._fold_failed_at + max(1, COMPACT_EVERY // 10):
            return  # a fold that failed (a full disk) is tried again some entries later, not per key
        self._fold_thread = threading.Thread(target=self._fold_in_thread, name="decisions-fold")
        self._fold_thread.start()

    def _fold_in_thread(self) -> None:
        try:
            self.compact_if_due(self.fold_beside)
        except Exception as exc:  # a full disk, or anything: the journal still holds every decision
            if self._fold_failed_at < 0:  # said once until a fold succeeds
                self.fold_problem = f"decisions not folded yet ({exc}); the journal keeps them all"
                self.problem(f"{SNAPSHOT}: {self.fold_problem}")
            self._fold_failed_at = self.entries

    def join_fold(self, timeout: float | None = None) -> None:
        """Wait for a fold started beside the session (`_fold_due`) to end."""
        t = self._fold_thread
        if t is not None:
            t.join(timeout)

    def entry(self, op: str, **fields: Any) -> dict:
        return {"seq": self.seq + 1, "op": op, **fields, "reviewer": self.reviewer, "t": time.time()}

    def compact(self) -> None:
        """Fold the journal into the snapshot and start an empty journal. Needs the review lock."""
        if self._lock is None:
            raise WorkspaceError(f"{self.dir}: compacting the decisions needs the review lock")
        with self._folding:
            self._fold(self._image(), None)

    def compact_if_due(self, mutex: Any, every: int | None = None) -> bool:
        """Fold the journal into the snapshot beside a review in progress, if it holds `every` entries.

        `mutex` is the one every append runs under. It is held only to copy the states and to
        swap the journal, not while the snapshot is encoded and synced, so a keypress meanwhile
        waits for neither; entries appended in between stay in the new journal. False when no
        fold was due or another one is running.
        """
        if not self._folding.acquire(blocking=False):
            return False
        try:
            with mutex:
                due = COMPACT_EVERY if every is None else every
                if self._lock is None or self._fd is None or self.entries < due:
                    return False
                image = self._image()
                start = os.fstat(self._fd).st_size  # the journal's bytes the image holds
            self._fold(image, (mutex, start))
            return True
        finally:
            self._folding.release()

    def _image(self) -> dict:
        # Copies of what later decisions change in place (the dicts); a state dict and a step
        # are never changed once made, so they are shared. The locations are merged later, by
        # encode_snapshot, outside the mutex: the snapshot's columns never change.
        return {
            "seq": self.seq,
            "states": dict(self.states),
            "opinions": {cid: dict(by) for cid, by in self.opinions.items()},
            "undo": self.undo_stack[-UNDO_KEEP:],
            "cursor": list(self.cursor) if self.cursor else None,
            "located": (self._located_snap, dict(self._located)),
        }

    def location_of(self, cid: str) -> tuple[str, int] | None:
        """Where the line a keypress decision on `cid` was made on is (see `locations`), or None."""
        if cid in self._located:
            return self._located[cid]
        if self._located_snap is not None:
            names, ids, shards, offsets = self._located_snap
            try:  # the last of an id written twice (a hand-edited snapshot), as `locations` takes it
                i = len(ids) - 1 - ids[::-1].index(cid)
            except ValueError:
                return None
            return names[shards[i]], offsets[i]
        return None

    def locations(self) -> dict[str, tuple[str, int]]:
        """cid -> (shard name, offset) of the line a keypress decision on it was made on."""
        return merge_locations(self._located_snap, self._located)

    def _fold(self, image: dict, beside: tuple[Any, int] | None) -> None:
        """Write the image as the snapshot, then restart the journal with what came after it."""
        if self._snapshot_damaged:
            # Kept for a person to look at: it may hold decisions the journal no longer has.
            path = self.dir / SNAPSHOT
            try:
                os.replace(path, path.with_name(SNAPSHOT + ".damaged"))
            except OSError:
                pass
            self._snapshot_damaged = False
        atomic_write_bytes(self.dir / SNAPSHOT, encode_snapshot(image))
        self._fold_failed_at = -1  # whoever folded: a failure before is over
        # A kill here leaves the old journal beside the new snapshot: seq numbers skip it.
        if beside is None:
            self._restart(b"", image["undo"])
            return
        mutex, start = beside
        with mutex:
            with open(self.dir / JOURNAL, "rb") as f:
                f.seek(start)
                tail = f.read()  # whole entries: each append runs under the mutex
            self._restart(tail, image["undo"])

    def _restart(self, tail: bytes, kept: list[Step]) -> None:
        # The new journal first: if it cannot be written (a full disk), the old file and its
        # descriptor stay as they were, and the entries past the snapshot replay as before.
        # Closed first, the descriptor's number would go to the next file opened and take
        # every later decision.
        atomic_write_bytes(self.dir / JOURNAL, tail)
        old, self._fd = self._fd, None
        if old is not None:
            os.close(old)
        self._fd = open_append(self.dir / JOURNAL)
        self.entries = tail.count(b"\n")
        self._read_to = len(tail)
        # Steps older than the snapshot's first kept one are gone on the next open: gone now.
        if kept:
            del self.undo_stack[: bisect.bisect_left(self.undo_stack, kept[0].seq, key=_seq_of)]

    def forget(self, ids: set[str]) -> None:
        """Drop every decision on these candidates (their variant was deleted), durably, by compacting."""
        for cid in ids:
            self.states.pop(cid, None)
            self.opinions.pop(cid, None)
        # A variant's deletion rewrites the shards: every line may have moved.
        self._located_snap, self._located = None, {}
        self.undo_stack = [s for s in self.undo_stack if not ids.intersection(s.ids)]
        self.compact()

    def close(self) -> None:
        with self._folding:  # a fold beside the review finishes first, under the lock it needs
            if self._lock is not None and self.entries >= COMPACT_ON_CLOSE:
                try:
                    self._fold(self._image(), None)
                except (OSError, WorkspaceError):
                    pass  # the journal still holds every decision; the next open folds it
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _state_of(e: dict) -> dict:
    """The state a decide or bulk entry sets: the values `apply` takes from its Step."""
    return {
        "status": e["status"],
        "reason": e.get("reason"),
        "text": e.get("text"),
        "reviewer": e.get("reviewer") or "",
        "t": float(e.get("t") or 0),
        "seq": int(e["seq"]),
    }


def _put(states: dict, cid: str, new: dict | None) -> None:
    if new is None:
        states.pop(cid, None)
    else:
        states[cid] = new


def _seq_of(step: Step) -> int:
    return step.seq


def count_statuses(states: dict[str, dict], by_id: dict) -> Counter[str]:
    out = Counter(st["status"] for cid, st in states.items() if cid in by_id)
    out["pending"] = len(by_id) - sum(out.values())
    return out
