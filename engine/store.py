"""The candidate store: generated questions and the review decisions on them, crash-safe.

Layout under WS/candidates/:

    groups-<ms>-<pid>.jsonl    one line per generated group, appended by the generation job
    decisions.jsonl            the review journal: one line per decision, undo or bulk step
    decisions.snapshot.json    the journal folded into per-candidate states (written atomically)

Why not TinyDB: its JSONStorage rewrites the whole file on every write (about 0.5 s per
keypress at 100k candidates) and a kill during the rewrite tears the only copy. Here every
write is one `write()` of one line followed by `fdatasync`, so a write costs the same at 10
or 100k candidates, and a kill can only tear the last line, which readers ignore and the next
writer cuts off.

A group line is atomic: all of a group's candidates land, or none. Its first keys are the
group key, a compact per-candidate index row and the group's generation rejects, so opening
the store parses those (about a fifth of the bytes) and reads a full candidate from disk only
when someone looks at it.

Two writers, two locks: the generation job holds the "candidates" lock while it appends
group lines; a review session holds the "decisions" lock while it appends decisions. So one
person can review while a generation job runs (`refresh()` picks up the new groups), and a
second review session gets a WorkspaceError naming the holder instead of interleaving.

Decisions are replayed on open: `decide` and `bulk` entries set the status of their ids, an
`undo` entry reverts the newest entry not yet undone (so undo has many levels and one undo
reverts a whole bulk step). Decisions and `cursor` entries also note where in the shards the
reviewer was, so the next open reads that part first. Every so often the journal is folded into the snapshot (states
plus the last `UNDO_KEEP` undoable steps) and restarted; seq numbers make that idempotent if
a kill lands between the two steps.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import WorkspaceError
from engine.workspace import Workspace, atomic_write_bytes, fsync_dir

JOURNAL = "decisions.jsonl"
SNAPSHOT = "decisions.snapshot.json"
SHARD_PREFIX = "groups-"
SHARD_LIMIT = 256 * 1024 * 1024  # roll over to a new shard past this many bytes
COMPACT_EVERY = 10_000  # journal entries before they are folded into the snapshot (in session or on open)
COMPACT_ON_CLOSE = 1_000  # a clean close folds even this many, so the next open replays little
UNDO_KEEP = 1000  # undoable steps kept across a compaction

STATE_FIELDS = ("status", "reason", "text", "reviewer", "t", "seq")

GENERATION_LOCK = "candidates"
REVIEW_LOCK = "decisions"

STATUSES = ("pending", "accepted", "edited", "rejected", "skipped", "flagged")
REVIEWED = frozenset({"accepted", "edited", "rejected"})
OPEN = frozenset({"pending", "skipped", "flagged"})
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

# Quality flags as bits of Row.flags.
FLAG_DUPLICATE = 1
FLAG_NEAR_DUPLICATE = 2
FLAG_AMBIGUOUS = 4
FLAG_WINDOW = 8
FLAG_NAMES = {
    FLAG_DUPLICATE: "duplicate",
    FLAG_NEAR_DUPLICATE: "near-duplicate",
    FLAG_AMBIGUOUS: "ambiguous",
    FLAG_WINDOW: "window",
}

_PREFIX = '{"group_key": '
_INDEX_SEP = ', "index": '
_REJECTED_SEP = ', "rejected": '
_CANDIDATES_MARK = b', "candidates": '
_decoder = json.JSONDecoder()


# --------------------------------------------------------------------------------------------
# candidate index rows


def candidate_flags(c: dict) -> int:
    checks = c.get("checks") or {}
    flags = 0
    if checks.get("duplicate_of"):
        flags |= FLAG_DUPLICATE
    if checks.get("near_duplicate_of"):
        flags |= FLAG_NEAR_DUPLICATE
    try:
        if int(checks.get("ambiguity") or 0) > 0:
            flags |= FLAG_AMBIGUOUS
    except (TypeError, ValueError):
        flags |= FLAG_AMBIGUOUS
    if checks.get("window_problems"):
        flags |= FLAG_WINDOW
    return flags


def candidate_valid(c: dict) -> bool:
    """Whether the candidate could go into an NLQ file at all: a question and a real window."""
    q = c.get("query")
    if not isinstance(q, str) or not q.strip():
        return False
    if not c.get("video_uid") or not c.get("clip_uid"):
        return False
    w = c.get("window") or {}
    try:
        s, e = float(w["clip_rel_start"]), float(w["clip_rel_end"])
        vs, ve = float(w["start"]), float(w["end"])
    except (KeyError, TypeError, ValueError):
        return False
    if not all(math.isfinite(x) for x in (s, e, vs, ve)):
        return False
    return 0.0 <= s < e


def _index_row(c: dict) -> list:
    checks = c.get("checks") or {}
    try:
        ambiguity = int(checks.get("ambiguity") or 0)
    except (TypeError, ValueError):
        ambiguity = -1
    return [
        c["id"],
        c.get("video_uid") or "",
        c.get("clip_uid") or "",
        str(c.get("backend") or ""),
        str(c.get("model") or ""),
        "" if c.get("prompt_version") is None else str(c.get("prompt_version")),
        str(checks.get("template") or ""),
        candidate_flags(c),
        ambiguity,
        c.get("query") or "",
        1 if candidate_valid(c) else 0,
        float(c.get("created") or 0.0),
    ]


class Row:
    """What the store keeps in memory per candidate: enough to filter, count and find it."""

    __slots__ = (
        "id",
        "group_key",
        "video_uid",
        "clip_uid",
        "backend",
        "model",
        "prompt_version",
        "template",
        "flags",
        "ambiguity",
        "query",
        "valid",
        "created",
        "shard",
        "offset",
        "length",
        "pos",
        "n",
    )

    def __init__(self, r: list, group_key: str, shard: int, offset: int, length: int, pos: int, n: int):
        (
            self.id,
            self.video_uid,
            self.clip_uid,
            self.backend,
            self.model,
            self.prompt_version,
            self.template,
            self.flags,
            self.ambiguity,
            self.query,
            valid,
            self.created,
        ) = r[:12]
        self.valid = bool(valid)
        self.group_key = group_key
        self.shard, self.offset, self.length, self.pos = shard, offset, length, pos
        self.n = n  # position in store order

    def flag_names(self) -> list[str]:
        return [name for bit, name in FLAG_NAMES.items() if self.flags & bit]


# --------------------------------------------------------------------------------------------
# decisions


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

    def to_json(self) -> dict:
        return {
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

    @classmethod
    def from_json(cls, d: dict) -> Step:
        return cls(
            d["seq"],
            d["op"],
            list(d["ids"]),
            d["status"],
            d.get("reason"),
            d.get("text"),
            d.get("reviewer") or "",
            float(d.get("t") or 0),
            d.get("rule"),
            dict(d.get("before") or {}),
        )


def _read_complete_lines(path: Path, start: int = 0) -> tuple[list[tuple[int, bytes]], int]:
    """Lines (offset, bytes without newline) from `start` up to the last newline; and the end.

    A last line without its newline is a write in progress or one torn by a kill: not ours.
    """
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n")
    if end < 0:
        return [], start
    out = []
    pos = 0
    for line in data[: end + 1].split(b"\n")[:-1]:
        out.append((start + pos, line))
        pos += len(line) + 1
    return out, start + end + 1


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline (a write a kill interrupted). Writer-lock holders only."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as f:
        # Look back far enough to find the previous newline, then cut after it.
        block = 1 << 16
        pos = size
        while pos > 0:
            read_from = max(0, pos - block)
            f.seek(read_from)
            chunk = f.read(pos - read_from)
            if pos == size and chunk.endswith(b"\n"):
                return
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(read_from + nl + 1)
                f.flush()
                os.fsync(f.fileno())
                return
            pos = read_from
        f.truncate(0)
        f.flush()
        os.fsync(f.fileno())


class CandidateStore:
    """Candidates and review decisions of one workspace.

    Generation: `add_group_result(...)`, `done_groups()`.
    Review: `load()`, `rows`, `status(id)`, `candidate(id)`, `decide(...)`, `bulk(...)`,
    `undo()`, `recent()`, `counts()`, `refresh()`.
    """

    def __init__(self, workspace: Workspace | str | Path, reviewer: str | None = None) -> None:
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        self.dir = self.workspace.candidates_dir
        self.reviewer = reviewer or os.environ.get("USER") or "reviewer"
        self.problems: list[str] = []  # lines that could not be read, for the UI to show

        # candidates
        self.rows: list[Row] = []
        self.by_id: dict[str, Row] = {}
        self.groups: dict[str, list[Row]] = {}
        self.group_rejected: dict[str, list[dict]] = {}
        self._shards: list[Path] = []
        self._shard_ends: dict[str, int] = {}
        self._shard_idx: dict[str, int] = {}
        self._scanned = False
        self._scan_started = False
        self._plan: list[list] | None = None
        self.cursor: tuple[str, int] | None = None  # where the last decision's group is stored
        self.scan_done = False
        self._scan_lock = threading.Lock()
        self._mutex = threading.RLock()  # rows and states change under it (scan may be in a thread)
        self._fds: dict[int, int] = {}
        self._cache: OrderedDict[tuple[int, int], dict] = OrderedDict()

        # generation writer
        self._gen_lock = None
        self._gen_fd: int | None = None
        self._gen_path: Path | None = None

        # decisions
        self.states: dict[str, dict] = {}
        self.undo_stack: list[Step] = []
        self.status_counts: Counter[str] = Counter()
        self._journal_read_to = 0
        self._journal_entries = 0
        self._seq = 0
        self._decisions_loaded = False
        self._review_lock = None
        self._journal_fd: int | None = None
        self.session_decisions: list[float] = []  # times of this session's decisions, for the rate

    # ---------------------------------------------------------------------------------------
    # reading candidates

    def _shard_paths(self) -> list[Path]:
        return sorted(p for p in self.dir.glob(f"{SHARD_PREFIX}*.jsonl"))

    def scan(self, budget: int | None = None) -> int:
        """Read new group lines from the shards (the whole store the first time).

        Returns how many candidates were added. Cheap to call again: only bytes written since
        the last call are read. With `budget`, stops after about that many bytes so that a
        caller can show the first candidates while the rest is read; `scan_done` then says
        whether everything written so far has been read. Safe to call from a worker thread
        while the main thread decides: rows are added under the store's mutex.

        When the decisions were loaded first (`load_decisions`), the first pass starts at the
        group of the last decision and wraps round, so a review resumed deep into 100k
        candidates finds its next open one in the first slice.
        """
        with self._scan_lock:
            self._scan_started = True
            if self._plan is None:
                self._plan = self._make_plan(first=not self._scanned)
            added = 0
            remaining = budget
            while self._plan:
                seg = self._plan[0]
                path, pos, stop = seg
                key = path.name
                shard = self._shard_idx[key]
                want = -1 if stop is None else stop - pos
                if remaining is not None:
                    want = remaining if want < 0 else min(want, remaining)
                try:
                    with open(path, "rb") as f:
                        f.seek(pos)
                        data = f.read(want)
                        short = want < 0 or len(data) < want
                        if not short and b"\n" not in data:
                            data += f.readline()  # one line longer than the budget
                except FileNotFoundError:
                    self._plan.pop(0)
                    continue
                end = data.rfind(b"\n") + 1  # a last line without its newline is not complete yet
                parsed = self._parse(data, end, pos, shard, path)
                with self._mutex:
                    added += self._ingest(parsed, path)
                    seg[1] = pos + end
                    if stop is None:
                        self._shard_ends[key] = pos + end
                if short or (stop is not None and seg[1] >= stop):
                    self._plan.pop(0)
                if remaining is not None:
                    remaining -= len(data)
                    if remaining <= 0 and self._plan:
                        self.scan_done = False
                        return added
            self._plan = None
            self.scan_done = True
            self._scanned = True
            return added

    def _make_plan(self, first: bool) -> list[list]:
        """Segments [path, from, to-or-None(to the end)] to read, in order."""
        paths = self._shard_paths()
        for path in paths:
            if path.name not in self._shard_ends:
                self._shard_idx[path.name] = len(self._shards)
                self._shards.append(path)
                self._shard_ends[path.name] = 0
        if not first:
            return [[p, self._shard_ends[p.name], None] for p in paths]
        hint = self.cursor
        names = [p.name for p in paths]
        if hint and hint[0] in names:
            i = names.index(hint[0])
            try:
                ok = 0 < int(hint[1]) < paths[i].stat().st_size
            except (OSError, ValueError, TypeError):
                ok = False
            if ok:
                off = int(hint[1])
                return (
                    [[paths[i], off, None]]
                    + [[p, 0, None] for p in paths[i + 1 :]]
                    + [[p, 0, None] for p in paths[:i]]
                    + [[paths[i], 0, off]]
                )
        return [[p, 0, None] for p in paths]

    def _parse(self, data: bytes, end: int, start: int, shard: int, path: Path) -> list[tuple]:
        """(group_key, index rows, rejects, shard, offset, length) of every complete line."""
        out = []
        pos = 0
        find = data.find
        while pos < end:
            nl = find(b"\n", pos, end)
            # Only the head of each line (key, index, rejects) is decoded: the candidates
            # after it are most of the bytes and are read one group at a time when shown.
            cut = find(_CANDIDATES_MARK, pos, nl)
            head = data[pos:cut] if cut >= 0 else data[pos:nl]
            item = self._parse_line(shard, start + pos, nl - pos, head, cut >= 0, path)
            if item is not None:
                out.append(item)
            pos = nl + 1
        return out

    def _parse_line(self, shard: int, offset: int, length: int, head: bytes, is_head: bool, path: Path) -> tuple | None:
        try:
            try:
                if not is_head:
                    raise ValueError("no head")
                line = head.decode("utf-8")
                if not line.startswith(_PREFIX):
                    raise ValueError("not our layout")
                gk, end = _decoder.raw_decode(line, len(_PREFIX))
                if not line.startswith(_INDEX_SEP, end):
                    raise ValueError("no index")
                index, end = _decoder.raw_decode(line, end + len(_INDEX_SEP))
                rejected = []
                if line.startswith(_REJECTED_SEP, end):
                    rejected, end = _decoder.raw_decode(line, end + len(_REJECTED_SEP))
            except ValueError:
                # Another layout, or the marker met inside a reject: read the whole line.
                with open(path, "rb") as f:
                    f.seek(offset)
                    obj = json.loads(f.read(length))
                gk = obj["group_key"]
                index = [_index_row(c) for c in obj.get("candidates") or []]
                rejected = obj.get("rejected") or []
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            if head.strip():
                self.problems.append(f"{path.name} at byte {offset}: unreadable group line skipped ({exc})")
            return None
        return gk, index, rejected, shard, offset, length

    def _ingest(self, parsed: list[tuple], path: Path) -> int:
        added = 0
        for gk, index, rejected, shard, offset, length in parsed:
            if gk in self.groups:
                # The first stored result of a group wins: a decision made on its questions
                # must never silently attach to different text.
                continue
            rows = []
            for pos, r in enumerate(index):
                if r[0] in self.by_id:
                    self.problems.append(
                        f"{path.name} at byte {offset}: candidate id {r[0]!r} repeated; kept the first"
                    )
                    continue
                row = Row(r, gk, shard, offset, length, pos, len(self.rows))
                self.rows.append(row)
                self.by_id[row.id] = row
                rows.append(row)
                if self._decisions_loaded:
                    st = self.states.get(row.id)
                    self.status_counts[st["status"] if st else "pending"] += 1
            self.groups[gk] = rows
            if rejected:
                self.group_rejected[gk] = rejected
            added += len(rows)
        return added

    def _ensure_scanned(self) -> None:
        # A progressive scan in a worker (the review screen) is not repeated here.
        if not self._scanned and not self._scan_started:
            self.scan()

    def done_groups(self) -> set[str]:
        """Group keys already stored (a generation job skips these when it resumes)."""
        self._ensure_scanned()
        return set(self.groups)

    def _group_line(self, row: Row) -> dict:
        key = (row.shard, row.offset)
        obj = self._cache.get(key)
        if obj is not None:
            self._cache.move_to_end(key)
            return obj
        fd = self._fds.get(row.shard)
        if fd is None:
            fd = self._fds[row.shard] = os.open(self._shards[row.shard], os.O_RDONLY)
        obj = json.loads(os.pread(fd, row.length, row.offset))
        self._cache[key] = obj
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return obj

    def candidate(self, cid: str) -> dict:
        """The full candidate dict as generated, plus its review state under "review"."""
        self._ensure_scanned()
        row = self.by_id[cid]
        obj = self._group_line(row)
        c = dict(obj["candidates"][row.pos])
        st = self.states.get(cid)
        c["status"] = st["status"] if st else "pending"
        c["review"] = dict(st) if st else None
        return c

    def group_result(self, group_key: str) -> dict:
        rows = self.groups[group_key]
        if rows:
            return self._group_line(rows[0])
        raise KeyError(group_key)

    def group_rejections(self) -> Iterator[dict]:
        """What generation threw out (a narration without a usable question), every group."""
        self._ensure_scanned()
        for rejected in self.group_rejected.values():
            yield from rejected

    # ---------------------------------------------------------------------------------------
    # writing candidates (generation)

    def add_group_result(self, group_key: str, candidates: list[dict], rejected: list[dict], meta: dict) -> bool:
        """Store one generated group durably, all of it or nothing. False if it was already stored."""
        self._ensure_scanned()
        self._open_generation()
        self.scan()  # a group another (earlier) writer stored since we opened
        if group_key in self.groups:
            return False
        _check_candidates(group_key, candidates)
        data = encode_group_line(group_key, candidates, rejected, meta)
        assert self._gen_fd is not None and self._gen_path is not None
        if os.fstat(self._gen_fd).st_size + len(data) > SHARD_LIMIT and os.fstat(self._gen_fd).st_size > 0:
            self._new_shard()
        _append_durably(self._gen_fd, data, self._gen_path, "the generated group")
        self.scan()
        return True

    def add_group_results(self, results: list[tuple[str, list[dict], list[dict], dict]]) -> list[bool]:
        """Store many groups with one write and one fdatasync (added by generation, issue 4).

        Each group is still one line, so each is all or nothing; a kill can tear only the last
        line, which readers skip. Returns, per group, False when it was already stored.
        """
        self._ensure_scanned()
        self._open_generation()
        self.scan()
        out: list[bool] = []
        lines: list[bytes] = []
        batch: set[str] = set()
        for group_key, candidates, rejected, meta in results:
            if group_key in self.groups or group_key in batch:
                out.append(False)
                continue
            _check_candidates(group_key, candidates)
            lines.append(encode_group_line(group_key, candidates, rejected, meta))
            batch.add(group_key)
            out.append(True)
        if lines:
            data = b"".join(lines)
            assert self._gen_fd is not None
            if os.fstat(self._gen_fd).st_size + len(data) > SHARD_LIMIT and os.fstat(self._gen_fd).st_size > 0:
                self._new_shard()
            _append_durably(self._gen_fd, data, self._gen_path, "the generated groups")
            self.scan()
        return out

    def _open_generation(self) -> None:
        if self._gen_fd is not None:
            return
        self._gen_lock = self.workspace.acquire(GENERATION_LOCK, "generation")
        for path in self._shard_paths():
            _cut_torn_tail(path)
        self._new_shard()

    def _new_shard(self) -> None:
        if self._gen_fd is not None:
            os.close(self._gen_fd)
        name = f"{SHARD_PREFIX}{int(time.time() * 1000):013d}-{os.getpid()}.jsonl"
        self._gen_path = self.dir / name
        self._gen_fd = os.open(self._gen_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_dir(self.dir)

    # ---------------------------------------------------------------------------------------
    # reading decisions

    def load(self) -> CandidateStore:
        """Read every candidate and replay the decisions. Returns self."""
        self._ensure_scanned()
        self._load_decisions()
        return self

    def load_decisions(self) -> None:
        """Replay the decisions without reading the candidates (before a progressive `scan`)."""
        self._load_decisions()

    def _load_decisions(self) -> None:
        if self._decisions_loaded:
            return
        journal = self.dir / JOURNAL
        # The journal first, then the snapshot: a compaction between the two reads then only
        # makes the snapshot newer, and seq numbers skip what it already holds.
        lines, end = _read_complete_lines(journal)
        snap = self._read_snapshot()
        upto = 0
        if snap:
            upto = int(snap.get("upto_seq", 0))
            states = snap.get("states") or {}
            if snap.get("version", 1) >= 2:
                cols = [states[name] for name in STATE_FIELDS]
                self.states = {cid: dict(zip(STATE_FIELDS, vals)) for cid, *vals in zip(states["ids"], *cols)}
            else:
                self.states = dict(states)
            self.undo_stack = [Step.from_json(d) for d in snap.get("undo") or []]
            cursor = snap.get("cursor")
            self.cursor = (cursor[0], cursor[1]) if cursor else None
            self._seq = upto
        for offset, raw in lines:
            try:
                entry = json.loads(raw)
                seq = int(entry["seq"])
            except (ValueError, KeyError, TypeError):
                self.problems.append(f"{JOURNAL} at byte {offset}: unreadable decision skipped")
                continue
            self._journal_entries += 1
            if seq <= upto:
                continue
            self._apply(entry)
        self._journal_read_to = end
        by_id = self.by_id
        self.status_counts = Counter(st["status"] for cid, st in self.states.items() if cid in by_id)
        self.status_counts["pending"] = len(self.rows) - sum(self.status_counts.values())
        self._decisions_loaded = True

    def _read_snapshot(self) -> dict | None:
        path = self.dir / SNAPSHOT
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise WorkspaceError(
                f"{path}: not valid JSON; move it aside (the decisions since it was written are in {JOURNAL})"
            ) from None

    def _apply(self, entry: dict) -> Step | None:
        """Apply one journal entry to the in-memory states; returns the step it made or undid."""
        self._seq = max(self._seq, int(entry["seq"]))
        op = entry.get("op")
        if op in ("decide", "bulk"):
            if entry.get("at"):
                self.cursor = (entry["at"][0], entry["at"][1])
            step = Step(
                int(entry["seq"]),
                op,
                list(entry["ids"]),
                entry["status"],
                entry.get("reason"),
                entry.get("text"),
                entry.get("reviewer") or "",
                float(entry.get("t") or 0),
                entry.get("rule"),
            )
            state = {
                "status": step.status,
                "reason": step.reason,
                "text": step.text,
                "reviewer": step.reviewer,
                "t": step.t,
                "seq": step.seq,
            }
            for cid in step.ids:
                prev = self.states.get(cid)
                step.before[cid] = prev
                self._set_state(cid, prev, state if step.status != "pending" else None)
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
            for cid in step.ids:
                self._set_state(cid, self.states.get(cid), step.before.get(cid))
            return step
        return None

    def _set_state(self, cid: str, prev: dict | None, new: dict | None) -> None:
        if new is None:
            self.states.pop(cid, None)
        else:
            self.states[cid] = new
        if self._decisions_loaded and cid in self.by_id:
            self.status_counts[prev["status"] if prev else "pending"] -= 1
            self.status_counts[new["status"] if new else "pending"] += 1

    # ---------------------------------------------------------------------------------------
    # writing decisions (review)

    def begin_review(self, purpose: str = "review") -> None:
        """Take the review lock now (the screen calls this on open to fail early and clearly)."""
        if self._journal_fd is not None:
            return
        self._load_decisions()
        self._review_lock = self.workspace.acquire(REVIEW_LOCK, f"{purpose} by {self.reviewer}")
        journal = self.dir / JOURNAL
        _cut_torn_tail(journal)
        # Entries another session wrote between our read and our lock.
        lines, end = _read_complete_lines(journal, self._journal_read_to)
        for _, raw in lines:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            self._journal_entries += 1
            if int(entry.get("seq", 0)) > self._seq:
                self._apply(entry)
        self._journal_read_to = end
        if self._journal_entries >= COMPACT_EVERY:
            self.compact()
        self._journal_fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fsync_dir(self.dir)

    @property
    def can_write(self) -> bool:
        return self._journal_fd is not None

    def _append(self, entry: dict) -> None:
        if self._journal_fd is None:
            self.begin_review()
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        _append_durably(self._journal_fd, data, self.dir / JOURNAL, "the decision")
        self._journal_entries += 1

    def decide(self, cid: str, action: str, *, reason: str | None = None, text: str | None = None) -> Step:
        """Record a decision on one candidate; durable (fsynced) when this returns."""
        self._check_action(action, reason, text)
        self.load()
        if cid not in self.by_id:
            raise KeyError(cid)
        status = ACTIONS[action]
        if status == "rejected":
            reason = reason or DEFAULT_REASON
        elif status != "flagged":
            reason = None
        row = self.by_id[cid]
        entry = {
            "seq": self._seq + 1,
            "op": "decide",
            "ids": [cid],
            "status": status,
            "reason": reason,
            "text": text if status == "edited" else None,
            "reviewer": self.reviewer,
            "t": time.time(),
            "at": [self._shards[row.shard].name, row.offset],
        }
        with self._mutex:
            self._append(entry)
            self.session_decisions.append(entry["t"])
            step = self._apply(entry)
            self._maybe_compact()
            return step  # type: ignore[return-value]

    def bulk(
        self, ids: Iterable[str], action: str, *, reason: str | None = None, rule: str | None = None
    ) -> Step | None:
        """One journal entry that sets the status of many candidates; one undo reverts it."""
        if action not in ("accept", "reject", "skip", "flag", "reset"):
            raise ValueError(f"bulk action must be accept, reject, skip, flag or reset, not {action!r}")
        self.load()
        ids = [cid for cid in ids if cid in self.by_id]
        if not ids:
            return None
        status = ACTIONS[action]
        entry = {
            "seq": self._seq + 1,
            "op": "bulk",
            "ids": ids,
            "status": status,
            "reason": (reason or DEFAULT_REASON) if status == "rejected" else None,
            "text": None,
            "reviewer": self.reviewer,
            "t": time.time(),
            "rule": rule,
        }
        with self._mutex:
            self._append(entry)
            step = self._apply(entry)
            self._maybe_compact()
            return step  # type: ignore[return-value]

    def remember_position(self, cid: str) -> None:
        """Note where the reviewer left off, so the next open reads that part of the store first."""
        row = self.by_id.get(cid)
        if row is None or self._journal_fd is None:
            return
        entry = {
            "seq": self._seq + 1,
            "op": "cursor",
            "at": [self._shards[row.shard].name, row.offset],
            "reviewer": self.reviewer,
            "t": time.time(),
        }
        with self._mutex:
            self._append(entry)
            self._apply(entry)

    def undo(self) -> Step | None:
        """Revert the newest decision or bulk step not yet undone; None if there is none."""
        self.load()
        if not self.undo_stack:
            return None
        target = self.undo_stack[-1]
        entry = {"seq": self._seq + 1, "op": "undo", "target": target.seq, "reviewer": self.reviewer, "t": time.time()}
        with self._mutex:
            self._append(entry)
            step = self._apply(entry)
            self._maybe_compact()
            return step

    def _maybe_compact(self) -> None:
        # Keeps what a kill leaves to replay bounded in a long session. It rewrites the
        # snapshot (a fraction of a second at 100k decisions) once per COMPACT_EVERY entries,
        # after the decision that triggered it is already durable.
        if self._journal_entries >= COMPACT_EVERY:
            self.compact()

    @staticmethod
    def _check_action(action: str, reason: str | None, text: str | None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        if action == "edit" and not (isinstance(text, str) and text.strip()):
            raise ValueError("an edit needs the new text")

    def compact(self) -> None:
        """Fold the journal into the snapshot and start an empty journal. Needs the review lock."""
        if self._review_lock is None:
            raise WorkspaceError(f"{self.dir}: compacting the decisions needs the review lock")
        # Columns, not one object per candidate: at 100k decisions this loads about three
        # times faster, and it is loaded before the first card shows.
        ids = list(self.states)
        columns: dict[str, list] = {"ids": ids}
        for name in STATE_FIELDS:
            columns[name] = [self.states[cid].get(name) for cid in ids]
        snap = {
            "version": 2,
            "upto_seq": self._seq,
            "written": time.time(),
            "states": columns,
            "undo": [s.to_json() for s in self.undo_stack[-UNDO_KEEP:]],
            "cursor": list(self.cursor) if self.cursor else None,
        }
        atomic_write_bytes(self.dir / SNAPSHOT, json.dumps(snap, ensure_ascii=False, separators=(",", ":")).encode())
        # A kill here leaves the old journal beside the new snapshot: seq numbers skip it.
        if self._journal_fd is not None:
            os.close(self._journal_fd)
        atomic_write_bytes(self.dir / JOURNAL, b"")
        self._journal_fd = os.open(self.dir / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._journal_entries = 0
        self._journal_read_to = 0
        del self.undo_stack[:-UNDO_KEEP]

    # ---------------------------------------------------------------------------------------
    # queries

    def status(self, cid: str) -> str:
        st = self.states.get(cid)
        return st["status"] if st else "pending"

    def state(self, cid: str) -> dict | None:
        return self.states.get(cid)

    def query_text(self, cid: str) -> str:
        """The question as it stands: the edited text where edited."""
        st = self.states.get(cid)
        if st and st.get("status") == "edited" and st.get("text"):
            return st["text"]
        return self.by_id[cid].query

    def recent(self, n: int = 10) -> list[Step]:
        """The newest `n` decision steps that are still in effect, newest first."""
        return list(reversed(self.undo_stack[-n:]))

    def counts(self) -> dict[str, int]:
        self.load()
        out = {s: 0 for s in STATUSES}
        with self._mutex:
            items = list(self.status_counts.items())
        for k, v in items:
            if k in out:
                out[k] = v
        return out

    def progress(self, now: float | None = None) -> dict:
        """Reviewed/total, this session's decisions per hour and the ETA for the open ones."""
        c = self.counts()
        total = len(self.rows)
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

    def refresh(self) -> int:
        """Pick up candidates a running generation job stored since the last look."""
        added = self.scan()
        return added

    def facets(self) -> dict[str, list[str]]:
        """Distinct values of the filterable columns (for filter pickers)."""
        out: dict[str, set] = {"backend_model": set(), "prompt_version": set(), "template": set(), "video_uid": set()}
        for r in self.rows:
            out["backend_model"].add(f"{r.backend}/{r.model}")
            out["prompt_version"].add(r.prompt_version)
            out["template"].add(r.template)
            out["video_uid"].add(r.video_uid)
        return {k: sorted(v) for k, v in out.items()}

    def select(self, flt: Filter, upto: int | None = None) -> list[Row]:
        """Rows matching the filter, in store order (of the first `upto` rows if given)."""
        self.load()
        pred = flt.predicate(self)
        rows = self.rows if upto is None else self.rows[:upto]
        return [r for r in rows if pred(r)]

    def close(self) -> None:
        if self._review_lock is not None and self._journal_entries >= COMPACT_ON_CLOSE:
            try:
                self.compact()
            except OSError:
                pass  # the journal still holds every decision; the next open folds it
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        if self._gen_fd is not None:
            os.close(self._gen_fd)
            self._gen_fd = None
        for lock in (self._review_lock, self._gen_lock):
            if lock is not None:
                lock.release()
        self._review_lock = self._gen_lock = None

    def __enter__(self) -> CandidateStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def encode_group_line(group_key: str, candidates: list[dict], rejected: list[dict], meta: dict) -> bytes:
    """One shard line. The group key and index come first so `scan` can stop reading there."""
    record = {
        "group_key": group_key,
        "index": [_index_row(c) for c in candidates],
        "rejected": rejected,
        "candidates": candidates,
        "meta": meta,
        "stored": time.time(),
    }
    return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _append_durably(fd: int, data: bytes, path: Path | None, what: str) -> None:
    """Append `data` and fdatasync; on failure take the partial line back and raise WorkspaceError.

    Without the take-back, the next append after a full disk would land behind a torn line
    and the two would read as one corrupt line.
    """
    size = os.fstat(fd).st_size
    try:
        _write_all(fd, data)
        os.fdatasync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise WorkspaceError(
            f"{path}: could not write {what} ({exc.strerror or exc}); nothing was recorded, "
            "free some disk space and try again"
        ) from None


def _write_all(fd: int, data: bytes) -> None:
    # One write() for a line this size is one syscall in practice; the loop only guards the
    # rare short write (a full disk raises instead).
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# --------------------------------------------------------------------------------------------
# filters


@dataclass
class Filter:
    """What the review queue shows. Empty fields match everything.

    status: a set of statuses, or "open" (pending, skipped, flagged) / "all".
    flags: "any" | "none" | a flag name ("duplicate", "near-duplicate", "ambiguous", "window").
    """

    status: str | frozenset[str] = "open"
    backend_model: str = ""
    prompt_version: str = ""
    flags: str = "any"
    max_ambiguity: int | None = None
    template: str = ""
    video: str = ""
    text: str = ""

    def statuses(self) -> frozenset[str] | None:
        if self.status == "all":
            return None
        if self.status == "open":
            return OPEN
        if isinstance(self.status, str):
            return frozenset(s.strip() for s in self.status.split(",") if s.strip())
        return frozenset(self.status)

    def predicate(self, store: CandidateStore) -> Callable[[Row], bool]:
        statuses = self.statuses()
        states = store.states
        needle = self.text.strip().lower()
        flag_bit = next((b for b, n in FLAG_NAMES.items() if n == self.flags), None)
        if self.flags not in ("any", "none") and flag_bit is None:
            raise ValueError(f"unknown flag filter {self.flags!r}")

        def pred(r: Row) -> bool:
            if statuses is not None:
                st = states.get(r.id)
                if (st["status"] if st else "pending") not in statuses:
                    return False
            if (
                self.backend_model
                and f"{r.backend}/{r.model}" != self.backend_model
                and r.model != self.backend_model
                and r.backend != self.backend_model
            ):
                return False
            if self.prompt_version and r.prompt_version != self.prompt_version:
                return False
            if self.flags == "none" and r.flags:
                return False
            if flag_bit is not None and not r.flags & flag_bit:
                return False
            # An ambiguity that was never computed (-1) is not "ambiguity 0".
            if self.max_ambiguity is not None and not 0 <= r.ambiguity <= self.max_ambiguity:
                return False
            if self.template and r.template != self.template:
                return False
            if self.video and not r.video_uid.startswith(self.video):
                return False
            if needle:
                st = states.get(r.id)
                text = st["text"] if st and st.get("text") else r.query
                if needle not in text.lower():
                    return False
            return True

        return pred

    def describe(self) -> str:
        parts = []
        st = self.status if isinstance(self.status, str) else ",".join(sorted(self.status))
        parts.append(f"status={st}")
        for name in ("backend_model", "prompt_version", "template", "video", "text"):
            v = getattr(self, name)
            if v:
                parts.append(f"{name}={v}")
        if self.flags != "any":
            parts.append(f"flags={self.flags}")
        if self.max_ambiguity is not None:
            parts.append(f"ambiguity<={self.max_ambiguity}")
        return " ".join(parts)


def _check_candidates(group_key: str, candidates: list[dict]) -> None:
    """A bug in the caller, not a user error: every candidate needs its keys and this group."""
    for c in candidates:
        for k in ("id", "video_uid", "clip_uid", "window", "query"):
            if k not in c:
                raise ValueError(f"candidate of group {group_key!r} lacks {k!r}")
        if c.get("group_key", group_key) != group_key:
            raise ValueError(f"candidate {c['id']!r} belongs to group {c.get('group_key')!r}, not {group_key!r}")
