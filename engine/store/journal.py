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

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import WorkspaceError
from engine.store.filters import STATUSES
from engine.store.lines import append_durably, cut_torn_tail, loads, open_append, read_complete_lines
from engine.workspace import atomic_write_bytes, fsync_dir

JOURNAL = "decisions.jsonl"
SNAPSHOT = "decisions.snapshot.json"
COMPACT_EVERY = 10_000  # journal entries before they are folded into the snapshot (in session or on open)
COMPACT_ON_CLOSE = 1_000  # a clean close folds even this many, so the next open replays little
UNDO_KEEP = 1000  # undoable steps kept across a compaction
REVIEW_LOCK = "decisions"
STATE_FIELDS = ("status", "reason", "text", "reviewer", "t", "seq")


@dataclass
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
    """Whether a journal line has the types replay needs (a wrong-typed one is skipped and counted)."""
    if not isinstance(e, dict) or isinstance(e.get("seq"), bool) or not isinstance(e.get("seq"), int):
        return False
    op = e.get("op")
    if op in ("decide", "bulk"):
        ids = e.get("ids")
        return (
            isinstance(ids, list)
            and all(isinstance(i, str) for i in ids)
            and e.get("status") in STATUSES
            and _opt_str(e.get("reason"))
            and _opt_str(e.get("text"))
            and _opt_str(e.get("reviewer"))
            and (e.get("t") is None or isinstance(e.get("t"), (int, float)))
            and (e.get("at") is None or _at_ok(e.get("at")))
        )
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

    # replay ----------------------------------------------------------------------------------
    def load(self) -> None:
        if self.loaded:
            return
        if self.dir.exists() and not self.dir.is_dir():
            raise WorkspaceError(f"{self.dir}: is a file where the candidates folder should be; move it aside")
        # The journal first, then the snapshot: a compaction between the two reads then only
        # makes the snapshot newer, and seq numbers skip what it already holds.
        lines, end = read_complete_lines(self.dir / JOURNAL)
        upto = self._load_snapshot()
        for offset, raw in lines:
            try:
                entry = loads(raw)
            except (ValueError, RecursionError):
                entry = None
            if not entry_ok(entry):
                self.problem(f"{JOURNAL} at byte {offset}: unreadable decision skipped")
                continue
            self.entries += 1
            if entry["seq"] <= upto:
                continue
            self.apply(entry)
        self._read_to = end
        self.loaded = True

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
            if snap.get("version", 1) >= 2:
                cols = [states[name] for name in STATE_FIELDS]
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
            if entry.get("at"):
                self.cursor = (entry["at"][0], entry["at"][1])
            step = Step.from_entry(entry)
            state = {
                "status": step.status,
                "reason": step.reason,
                "text": step.text,
                "reviewer": step.reviewer,
                "t": step.t,
                "seq": step.seq,
            }
            for cid in step.ids:
                prev = self._get(cid, step)
                step.before[cid] = prev
                self._set(cid, step, prev, state if step.status != "pending" else None)
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

    def begin(self, purpose: str = "review") -> None:
        """Take the review lock now (the screen calls this on open to fail early and clearly)."""
        if self._fd is not None:
            return
        self.load()
        self._lock = self.workspace.acquire(REVIEW_LOCK, f"{purpose} by {self.reviewer}")
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
        if self.entries >= COMPACT_EVERY:
            self.compact()
        self._fd = open_append(journal)
        fsync_dir(self.dir)

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
            self.compact()
        return step

    def entry(self, op: str, **fields: Any) -> dict:
        return {"seq": self.seq + 1, "op": op, **fields, "reviewer": self.reviewer, "t": time.time()}

    def compact(self) -> None:
        """Fold the journal into the snapshot and start an empty journal. Needs the review lock."""
        if self._lock is None:
            raise WorkspaceError(f"{self.dir}: compacting the decisions needs the review lock")
        if self._snapshot_damaged:
            # Kept for a person to look at: it may hold decisions the journal no longer has.
            path = self.dir / SNAPSHOT
            try:
                os.replace(path, path.with_name(SNAPSHOT + ".damaged"))
            except OSError:
                pass
            self._snapshot_damaged = False
        # Columns, not one object per candidate: at 100k decisions this loads about three
        # times faster, and it is loaded before the first card shows.
        ids = list(self.states)
        columns: dict[str, list] = {"ids": ids}
        for name in STATE_FIELDS:
            columns[name] = [self.states[cid].get(name) for cid in ids]
        snap = {
            "version": 2,
            "upto_seq": self.seq,
            "written": time.time(),
            "states": columns,
            "opinions": self.opinions,
            "undo": [s.to_json() for s in self.undo_stack[-UNDO_KEEP:]],
            "cursor": list(self.cursor) if self.cursor else None,
        }
        atomic_write_bytes(
            self.dir / SNAPSHOT,
            json.dumps(snap, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace"),
        )
        # A kill here leaves the old journal beside the new snapshot: seq numbers skip it.
        if self._fd is not None:
            os.close(self._fd)
        atomic_write_bytes(self.dir / JOURNAL, b"")
        self._fd = open_append(self.dir / JOURNAL)
        self.entries = 0
        self._read_to = 0
        del self.undo_stack[:-UNDO_KEEP]

    def forget(self, ids: set[str]) -> None:
        """Drop every decision on these candidates (their variant was deleted), durably, by compacting."""
        for cid in ids:
            self.states.pop(cid, None)
            self.opinions.pop(cid, None)
        self.undo_stack = [s for s in self.undo_stack if not ids.intersection(s.ids)]
        self.compact()

    def close(self) -> None:
        if self._lock is not None and self.entries >= COMPACT_ON_CLOSE:
            try:
                self.compact()
            except (OSError, WorkspaceError):
                pass  # the journal still holds every decision; the next open folds it
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def count_statuses(states: dict[str, dict], by_id: dict) -> Counter[str]:
    out = Counter(st["status"] for cid, st in states.items() if cid in by_id)
    out["pending"] = len(by_id) - sum(out.values())
    return out
