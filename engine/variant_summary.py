"""The variants table from a summary kept up to date by folding in only what was appended (docs/ARCHITECTURE.md, "Store", "Scale").

The shard log and the checks file only grow (a delete or a torn-tail cut rewrites or shortens
them), so `WS/candidates/variants.summary.json` records, per variant, what the table counts
over the groups and candidates read so far (groups, tokens, seconds, cost, generation rejects,
each candidate's id and flags, validity) and how far each shard and the checks file were read.
Opening it folds in only the bytes appended since, in the order a full read takes them, so the
sums come out the same to the last bit. The review part (the decisions and second opinions on
reviewed candidates) is kept beside it for the journal and snapshot it was replayed from, and
replayed again through `DecisionJournal` when either changed.

It is a cache, never the source of truth: a shard that is shorter than recorded, another file
at a recorded name, changed bytes just before a recorded offset, a shard written in place (not
grown, yet changed), an earlier shard grown after a later one was read, a new shard sorting
before a read one, a damaged or foreign summary file: the summary is rebuilt from the store,
silently. It is written with a temp file and a rename, and only when it changed; a workspace
that cannot be written is read every time instead. The same warnings as a full read come out,
in its order. `engine.variant_cache` keeps the finished rows beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.candidate import FLAG_AMBIGUOUS, FLAG_NAMES, FLAG_NEAR_DUPLICATE, FLAG_PENDING, Checks, default_variant_name
from engine.errors import ConfigError
from engine.store.journal import JOURNAL, SNAPSHOT, DecisionJournal
from engine.store.lines import loads
from engine.store.rows import Row, row_ok
from engine.store.shards import CHECKS, MAX_PROBLEMS, ShardLog, read_failures
from engine.variant_cache import SUMMARY, cached_table, inputs, save_table, write_quietly
from engine.variants import Variant, empty_row, finish_rows, group_stat

if TYPE_CHECKING:
    from engine.store import CandidateStore

VERSION = 5
TAIL = 4096  # bytes before a recorded offset that must be unchanged for the fold to go on
REVIEWED3 = ("accepted", "edited", "rejected")


class Rebuild(Exception):
    """The summary does not describe the files as they are: start again from nothing."""


class Problems:
    """Warning lines of one part of the read, kept as the store keeps them (the first few, and a count)."""

    def __init__(self, lines: list[str] | None = None, count: int = 0) -> None:
        self.lines = list(lines or [])
        self.count = max(count, len(self.lines))

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_PROBLEMS:
            self.lines.append(line)

    def take(self, log: ShardLog) -> None:
        """Move a scratch log's problems in here."""
        for line in log.problems:
            self.add(line)
        self.count += log.problem_count - len(log.problems)
        log.problems.clear()
        log.problem_count = 0

    def replay(self, store: CandidateStore) -> None:
        """Hand the lines to the store, as if its own read had met them."""
        for line in self.lines:
            store.log.problem(line)
        store.log.problem_count += self.count - len(self.lines)

    def to_json(self) -> list:
        return [self.count, self.lines]

    @classmethod
    def of(cls, d: list) -> Problems:
        return cls(d[1], d[0])


def _stat_key(path: Path) -> list | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, *when(st)]


def when(st: os.stat_result) -> list[int]:
    """When a file last changed, as far as a cache can tell: the change time too, which no
    `touch -r`, `cp -p` or `rsync -t` can set back, and the device (docs/ARCHITECTURE.md, "Store")."""
    return [st.st_dev, st.st_mtime_ns, st.st_ctime_ns]


def _dumps_std(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


def _dumps_fast(obj: Any) -> bytes:
    """orjson where installed (strings, ints, bools and None only here, which it writes as the stdlib does)."""
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        return _dumps_std(obj)
    try:
        return orjson.dumps(obj)
    except TypeError:  # a lone surrogate in an id: the stdlib writes its escape
        return _dumps_std(obj)


def _pack(names: list[str]) -> str | list[str]:
    """Many short strings as one (a list of them loads several times slower), unless one holds the separator."""
    joined = "\n".join(names)
    return joined if names and joined.count("\n") == len(names) - 1 else names


def _unpack(packed: str | list[str]) -> list[str]:
    return packed.split("\n") if isinstance(packed, str) else list(packed)


def _tail_digest(f, end: int) -> str:
    start = max(0, end - TAIL)
    f.seek(start)
    return hashlib.blake2b(f.read(end - start), digest_size=12).hexdigest()


def checked_flags(flags: int, found: dict) -> int:
    """A candidate's flags once its late checks came in (as `engine.store.rows.apply_checks`)."""
    checks = Checks()
    checks.update(found)
    keep = flags & ~(FLAG_NEAR_DUPLICATE | FLAG_AMBIGUOUS | FLAG_PENDING)
    return keep | (checks.flags() & (FLAG_NEAR_DUPLICATE | FLAG_AMBIGUOUS))


class Summary:
    """What the table needs of the shards and checks read so far, and where each read stopped."""

    def __init__(self) -> None:
        # {name, ino, end, digest (of the bytes before end), parse and ingest warnings}
        self.shards: list[dict] = []
        self.checks: dict = {"ino": None, "end": 0, "digest": ""}
        self.groups: dict[str, list[str]] = {}  # variant -> group keys, in store order
        self.at: dict[str, list[list]] = {}  # variant -> [shard, offset, length, kept] per group (kept: positions or n)
        self.first: list[list] = []  # [variant, backend, model, prompt_version] or [variant]: first-seen order
        self.figs: dict[str, dict] = {}  # variant -> tokens, seconds, cost, rejected
        self.ids: dict[str, list[str]] = {}  # variant -> candidate ids, in store order
        self.flags: dict[str, list[int]] = {}  # variant -> each candidate's flags (late checks applied)
        self.valid: dict[str, int] = {}
        self.orphans: dict[str, dict] = {}  # late checks of ids not stored (yet)
        self.check_problems = Problems()
        self.review: dict | None = None  # {"key", "states": {cid: [status, reason, pair]}, "problems"}
        self.source = "new"  # how the last read got it: "unchanged", "folded" or "rebuilt"
        self.build = os.urandom(8).hex()  # kept by every fold; a rebuild is a new build
        self._sets: dict | None = None
        self._where: dict[str, tuple[str, int]] | None = None

    # the file ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        # Two lines under the head: the small part by the stdlib (it may hold an infinite float,
        # which orjson would write as null), the big per-candidate part by orjson where installed.
        small = {
            "shards": self.shards, "checks": self.checks, "first": self.first, "figs": self.figs,
            "valid": self.valid, "orphans": self.orphans, "check_problems": self.check_problems.to_json(),
            "build": self.build,
        }  # fmt: skip
        big = {
            "groups": {v: _pack(keys) for v, keys in self.groups.items()},
            "ids": {v: _pack(ids) for v, ids in self.ids.items()},
            "at": self.at, "flags": self.flags, "review": self.review,
        }  # fmt: skip
        data = _dumps_std(small) + b"\n" + _dumps_fast(big)
        head = json.dumps({"version": VERSION, "digest": hashlib.blake2b(data, digest_size=16).hexdigest()})
        return head.encode() + b"\n" + data

    @classmethod
    def from_bytes(cls, raw: bytes) -> Summary:
        """The summary a file holds; ValueError/KeyError/TypeError when it is not one of ours, whole."""
        nl = raw.index(b"\n")
        head, data = loads(raw[:nl]), raw[nl + 1 :]
        if head.get("version") != VERSION or head.get("digest") != hashlib.blake2b(data, digest_size=16).hexdigest():
            raise ValueError("another version, or damaged")
        cut = data.index(b"\n")
        small, big = loads(data[:cut]), loads(data[cut + 1 :])
        s = cls()
        s.shards, s.checks, s.first, s.figs = small["shards"], small["checks"], small["first"], small["figs"]
        s.valid, s.orphans, s.build = small["valid"], small["orphans"], str(small["build"])
        s.check_problems = Problems.of(small["check_problems"])
        s.groups = {v: _unpack(keys) for v, keys in big["groups"].items()}
        s.ids = {v: _unpack(ids) for v, ids in big["ids"].items()}
        s.at, s.flags, s.review = big["at"], big["flags"], big["review"]
        for name, v in (("shards", s.shards), ("first", s.first), ("at", s.at), ("flags", s.flags)):
            if not isinstance(v, (list, dict)):
                raise TypeError(name)
        return s

    # folding in what was appended ----------------------------------------------------------
    def fold(self, log: ShardLog) -> bool:
        """Read what was appended since (raises Rebuild when the files are not what was read); True if anything was."""
        changed = self._fold_checks(log)
        paths = log.shard_paths()
        names = [p.name for p in paths]
        if names[: len(self.shards)] != [s["name"] for s in self.shards]:
            raise Rebuild("a shard went, or a new one sorts before one read")
        for i, rec in enumerate(self.shards):
            changed |= self._fold_shard(log, paths[i], rec, i == len(self.shards) - 1, i)
        for path in paths[len(self.shards) :]:
            rec = {"name": path.name, "ino": None, "end": 0, "digest": "", "parse": [0, []], "ingest": [0, []]}
            self.shards.append(rec)
            self._fold_shard(log, path, rec, True, len(self.shards) - 1)
            changed = True
        return changed

    @staticmethod
    def _open_checked(path: Path, rec: dict):
        """The file at `path` with its stat, checked to be the one `rec` read up to rec["end"]."""
        f = open(path, "rb")
        try:
            st = os.fstat(f.fileno())
            if rec["end"] and (
                st.st_ino != rec["ino"] or st.st_size < rec["end"] or _tail_digest(f, rec["end"]) != rec["digest"]
            ):
                raise Rebuild(f"{path.name} is not the file read")
            f.seek(rec["end"])
        except BaseException:
            f.close()
            raise
        return f, st

    def _fold_shard(self, log: ShardLog, path: Path, rec: dict, last: bool, index: int) -> bool:
        try:
            st = os.stat(path)
            if (st.st_ino, st.st_size, when(st)) == (rec["ino"], rec["end"], rec.get("mtime")):
                return False  # as read: not even opened (a workspace may hold hundreds of shards)
            f, st = self._open_checked(path, rec)
        except FileNotFoundError:
            raise Rebuild(f"{path.name} went") from None
        with f:
            if st.st_size == rec["end"] and rec["ino"] == st.st_ino:
                if when(st) != rec.get("mtime"):
                    raise Rebuild(f"{path.name} was written in place")  # a shard only grows
                return False
            # Up to the size its change time goes with: what a writer appends meanwhile comes next time.
            data = f.read(max(0, st.st_size - rec["end"]))
            if not last and b"\n" in data:
                raise Rebuild(f"{path.name} grew after a later shard was read")  # a full read puts these lines earlier
            end = data.rfind(b"\n") + 1
            if rec["ino"] == st.st_ino and not end:
                return False  # only a line being written (or torn): not ours yet
            # A full read parses a shard whole, then takes its groups in: its warnings in that order.
            parsed = log._parse(data, end, rec["end"], index, path)
            parse, ingest = Problems.of(rec["parse"]), Problems.of(rec["ingest"])
            parse.take(log)
            self._ingest(parsed, path, ingest)
            rec["parse"], rec["ingest"] = parse.to_json(), ingest.to_json()
            rec["ino"], rec["end"], rec["mtime"] = st.st_ino, rec["end"] + end, when(st)
            rec["digest"] = _tail_digest(f, rec["end"])
        return True

    def _index_sets(self) -> dict:
        if self._sets is None:
            self._sets = {
                "groups": {(v, gk) for v, keys in self.groups.items() for gk in keys},
                "ids": {cid for ids in self.ids.values() for cid in ids},
                "first": {item[0] for item in self.first},
            }
        return self._sets

    def _ingest(self, parsed: list[tuple], path: Path, problems: Problems) -> None:
        """As `ShardLog._ingest` does with rows, into counts: the first result of a group wins, a repeated id is skipped."""
        sets = self._index_sets()
        for gk, variant, stats, index, rejected, shard, offset, length in parsed:
            if not variant:
                first_ok = next((r for r in index if row_ok(r)), None)
                variant = default_variant_name(first_ok[3], first_ok[4], first_ok[5]) if first_ok else "unknown"
            key = (variant, gk)
            if key in sets["groups"]:
                continue
            kept, positions = [], []
            for pos, r in enumerate(index):
                if not row_ok(r):
                    problems.add(f"{path.name} at byte {offset}: a candidate row with wrong types skipped")
                    continue
                if r[0] in sets["ids"]:
                    problems.add(f"{path.name} at byte {offset}: candidate id {r[0]!r} repeated; kept the first")
                    continue
                sets["ids"].add(r[0])
                kept.append(r)
                positions.append(pos)
            at = [shard, offset, length, len(kept) if positions == list(range(len(kept))) else positions]
            self.at.setdefault(variant, []).append(at)
            self._add_group(variant, gk, stats, rejected, kept)
            sets["groups"].add(key)

    def _add_group(self, variant: str, gk: str, stats: dict, rejected: list[dict], kept_rows: list[list]) -> None:
        sets = self._index_sets()
        if variant not in sets["first"]:
            sets["first"].add(variant)
            first = kept_rows[0] if kept_rows else None
            self.first.append([variant, first[3], first[4], first[5]] if first else [variant])
        self.groups.setdefault(variant, []).append(gk)
        f = self.figs.setdefault(variant, {"tokens": 0, "seconds": 0.0, "cost": None, "rejected": {}})
        if stats:  # the sums as `CandidateStore.group_figures` makes them, in the same order
            f["tokens"] += int(group_stat(stats, "tokens"))
            f["seconds"] += float(group_stat(stats, "seconds"))
            if (cost := group_stat(stats, "cost", None)) is not None:
                f["cost"] = (f["cost"] or 0.0) + cost
        for rej in rejected:
            reason = str(rej.get("reason") or "unspecified")
            f["rejected"][reason] = f["rejected"].get(reason, 0) + 1
        ids, flags = self.ids.setdefault(variant, []), self.flags.setdefault(variant, [])
        where = self._where
        for r in kept_rows:
            found = self.orphans.pop(r[0], None)
            if where is not None:
                where[r[0]] = (variant, len(ids))
            ids.append(r[0])
            flags.append(r[7] if found is None else checked_flags(r[7], found))
            if r[10]:
                self.valid[variant] = self.valid.get(variant, 0) + 1

    def _fold_checks(self, log: ShardLog) -> bool:
        """The late checks appended since: onto the candidates read, or kept for ones not stored yet."""
        path, rec = log.dir / CHECKS, self.checks
        try:
            f, st = self._open_checked(path, rec)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if rec["end"]:
                raise Rebuild(f"{CHECKS} went") from None
            return False
        with f:
            if st.st_size == rec["end"]:
                return False
            data = f.read(max(0, st.st_size - rec["end"]))
            end = data.rfind(b"\n") + 1
            if not end:
                return False
            pos = 0
            for raw in data[:end].split(b"\n")[:-1]:  # as ShardLog._read_checks reads them
                offset, pos = rec["end"] + pos, pos + len(raw) + 1
                try:
                    found = loads(raw)["checks"]
                    items = [(cid, d) for cid, d in found.items() if isinstance(cid, str) and isinstance(d, dict)]
                except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
                    self.check_problems.add(f"{CHECKS} at byte {offset}: unreadable checks line skipped")
                    continue
                for cid, d in items:
                    self._check_one(cid, d)
            rec["ino"], rec["end"] = st.st_ino, rec["end"] + end
            rec["digest"] = _tail_digest(f, rec["end"])
        return True

    def _check_one(self, cid: str, found: dict) -> None:
        if self._where is None:
            self._where = {cid: (v, i) for v, ids in self.ids.items() for i, cid in enumerate(ids)}
        at = self._where.get(cid)
        if at is None:
            self.orphans[cid] = found
        else:
            flags = self.flags[at[0]]
            flags[at[1]] = checked_flags(flags[at[1]], found)

    # the review part -----------------------------------------------------------------------
    def fold_review(self, store: CandidateStore) -> bool:
        """Replay the decisions when the journal or snapshot changed since the last replay; True if it ran."""
        key = [_stat_key(store.dir / JOURNAL), _stat_key(store.dir / SNAPSHOT)]
        if self.review is not None and self.review.get("key") == key:
            return False
        problems = Problems()
        journal = DecisionJournal(store.dir, store.workspace, store.reviewer, problems.add)
        journal.load()
        states: dict[str, list] = {}
        for cid, st in journal.states.items():
            status = st["status"]
            if status not in REVIEWED3:
                continue
            pair = None
            for reviewer, op in journal.opinions.get(cid, {}).items():
                if reviewer != st.get("reviewer") and op["status"] in REVIEWED3:
                    pair = op["status"] != "rejected"
                    break
            text = st.get("text") if status == "edited" else None
            states[cid] = [status, st.get("reason") if status == "rejected" else None, pair, text]
        self.review = {"key": key, "states": states, "problems": problems.to_json()}
        return True


# ---------------------------------------------------------------------------------------------
# reading it


def read_summary(store: CandidateStore) -> Summary:
    """The summary of the store's files as they are now, folded forward or rebuilt, and saved when it changed."""
    path = store.dir / SUMMARY
    summary = None
    try:
        summary = Summary.from_bytes(path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        summary = None  # missing, damaged or another version: rebuilt below
    changed = True
    if summary is not None:
        try:
            grew = summary.fold(_scratch(store))
            summary.source = "folded" if grew else "unchanged"
            changed = summary.fold_review(store) | grew
        except (Rebuild, KeyError, TypeError, ValueError, AttributeError, IndexError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise
            summary, changed = None, True
    if summary is None:
        summary = Summary()
        summary.fold(_scratch(store))
        summary.fold_review(store)
        summary.source = "rebuilt"
    if changed:
        _save(path, summary)
    return summary


def _scratch(store: CandidateStore) -> ShardLog:
    # A log of its own for parsing, so a discarded attempt leaves the store's warnings untouched.
    return ShardLog(store.dir, store.workspace, [])


def _save(path: Path, summary: Summary) -> None:
    if os.access(path.parent, os.W_OK):  # a read-only workspace: not even encoded
        write_quietly(path, summary.to_bytes())


def _failures(dir_: Path, summary: Summary, problems: Problems) -> dict[str, int]:
    """variant -> how many of its groups failed and were not stored since (as `ShardLog.failures`)."""
    out = read_failures(dir_, problems.add)
    counts = {}
    for v, failed in out.items():
        done = set(summary.groups.get(v, ()))
        counts[v] = sum(1 for gk in failed if gk not in done)
    return counts


def _variants(store: CandidateStore, summary: Summary) -> list[Variant]:
    """Registered variants, then the legacy ones only their candidates name (as `ShardLog.variants`)."""
    out = dict(store.log._registered())
    for item in summary.first:
        name = item[0]
        if name in out:
            continue
        try:
            if len(item) > 1:
                out[name] = Variant(name, item[1], item[2], item[3] or None, legacy=True)
            else:
                out[name] = Variant(name, "", "", None, legacy=True)
        except ConfigError:
            continue
    return list(out.values())


def summary_table(store: CandidateStore) -> list[dict]:
    """`engine.variants.variant_table` of a store not read yet, from the summary; the same rows and warnings.

    The store is left unread (its rows stay empty); its `problems` get the lines a full read gives.
    """
    store.log.shard_paths()  # a file where the candidates folder should be: the same error as a read
    before = inputs(store.dir)  # taken before reading: a file changed meanwhile misses next time
    hit = cached_table(store.dir, before)
    if hit is not None:
        rows_, lines, count = hit
        Problems(lines, count).replay(store)
        return rows_
    first, count = len(store.problems), store.log.problem_count
    out = _table(store)
    save_table(store.dir, before, out, store.problems[first:], store.log.problem_count - count)
    return out


def _table(store: CandidateStore) -> list[dict]:
    summary = read_summary(store)
    review = summary.review or {"states": {}, "problems": [0, []]}
    summary.check_problems.replay(store)
    for rec in summary.shards:
        Problems.of(rec["parse"]).replay(store)
        Problems.of(rec["ingest"]).replay(store)
    Problems.of(review["problems"]).replay(store)
    rows: dict[str, dict] = {v.name: empty_row(v) for v in _variants(store, summary)}
    failure_problems = Problems()
    failed = _failures(store.dir, summary, failure_problems)
    failure_problems.replay(store)
    where: dict[str, str] = {}
    for name, row in rows.items():
        _fill_generation(row, summary, name, failed.get(name, 0))
        for cid in summary.ids.get(name, ()):
            where[cid] = name
    for cid, (status, reason, pair, _text) in review["states"].items():
        target = rows.get(where.get(cid, ""))
        if target is None:
            continue
        if status == "accepted":
            target["accepted"] += 1
        elif status == "edited":
            target["edited"] += 1
        else:
            target["rejected_in_review"][reason or "unspecified"] += 1
        if pair is not None:
            target["_pairs"].append((status != "rejected", pair))
    for row in rows.values():
        row["pending"] = row["candidates"] - row["accepted"] - row["edited"] - sum(row["rejected_in_review"].values())
    return finish_rows(list(rows.values()))


def _fill_generation(row: dict, summary: Summary, name: str, failed: int) -> None:
    figs: dict[str, Any] | None = summary.figs.get(name)
    if figs is not None:
        row["groups_done"] = len(summary.groups.get(name, ()))
        row["tokens"] = figs["tokens"]
        row["seconds"] = round(figs["seconds"], 3)
        row["cost"] = figs["cost"]
        row["rejected"].update(figs["rejected"])
    row["groups_failed"] = failed
    flags = summary.flags.get(name, [])
    row["candidates"] = len(flags)
    row["questions_valid"] = summary.valid.get(name, 0)
    for value, n in Counter(flags).items():
        for bit, flag in FLAG_NAMES.items():
            if value & bit:
                row["flagged"][flag] += n


def summary_compare(store: CandidateStore, a: str, b: str, limit: int = 200) -> list[dict]:
    """`engine.variants.compare_variants` of a store not read yet: the summary finds the groups both
    variants covered and where their lines are; only those lines are read. The same pairs."""
    store.log.shard_paths()
    summary = read_summary(store)
    states = (summary.review or {}).get("states", {})
    b_at = dict(zip(summary.groups.get(b, ()), summary.at.get(b, ())))
    key = _compare_key(store, summary, states, a, b, limit)
    with _COMPARED_LOCK:
        done = _COMPARED.get(key)
    if done is not None:
        return [dict(p) for p in done]
    out = _compare_lines(store, summary, states, b_at, a, b, limit)
    with _COMPARED_LOCK:
        _COMPARED[key] = [dict(p) for p in out]
        while len(_COMPARED) > 16:
            _COMPARED.popitem(last=False)
    return out


# The pairs last compared in this process, by everything they are made of (see _compare_key).
_COMPARED: OrderedDict[tuple, list[dict]] = OrderedDict()
_COMPARED_LOCK = threading.Lock()


def _kept(where: list) -> int:
    return where[3] if isinstance(where[3], int) else len(where[3])


def _compare_key(store: CandidateStore, summary: Summary, states: dict, a: str, b: str, limit: int) -> tuple:
    """What the first `limit` pairs are made of: the lines of the groups that can hold them and the
    review states of their candidates. Each group with a question gives at least one pair, so the
    first `limit` such groups both covered hold them all (perhaps more)."""
    b_start, pos = {}, 0
    for gk, where in zip(summary.groups.get(b, ()), summary.at.get(b, ())):
        b_start[gk] = (pos, where)
        pos += _kept(where)
    a_ids, b_ids = summary.ids.get(a, []), summary.ids.get(b, [])
    parts: list = []
    counted, pos = 0, 0
    for gk, where in zip(summary.groups.get(a, ()), summary.at.get(a, ())):
        if counted >= limit:
            break
        start, n = pos, _kept(where)
        pos += n
        if gk not in b_start:
            continue
        b_pos, b_where = b_start[gk]
        ids = a_ids[start : start + n] + b_ids[b_pos : b_pos + _kept(b_where)]
        parts.append((gk, json.dumps(where), json.dumps(b_where), json.dumps([states.get(cid) for cid in ids])))
        counted += 1 if ids else 0
    # Within one build a folded line never changes (anything that would rebuilds, with a new build).
    return (str(store.dir), summary.build, a, b, limit, tuple(parts))


def _compare_lines(
    store: CandidateStore, summary: Summary, states: dict, b_at: dict, a: str, b: str, limit: int
) -> list[dict]:
    log = _scratch(store)
    log._shards = [store.dir / rec["name"] for rec in summary.shards]
    out: list[dict] = []
    try:
        for gk, at in zip(summary.groups.get(a, ()), summary.at.get(a, ())):
            if gk not in b_at:
                continue
            by_number: dict[int, dict] = {}
            for side, name, where in (("a", a, at), ("b", b, b_at[gk])):
                for row in _rows_at(log, where, gk, name):
                    c = log.read(row)[0]
                    n = c.narration_number
                    slot = by_number.setdefault(
                        n, {"group_key": gk, "number": n, "narration": "", "a": None, "b": None}
                    )
                    slot["narration"] = slot["narration"] or str(c.narration.get("text") or "")
                    st = states.get(row.id)  # the question as it stands, as CandidateStore.query_text
                    slot[side] = st[3] if st and st[0] == "edited" and st[3] else row.query
            out.extend(by_number[n] for n in sorted(by_number))
            if len(out) >= limit:
                return out[:limit]
        return out
    finally:
        log.close()


def _rows_at(log: ShardLog, where: list, gk: str, variant: str) -> list[Row]:
    """The stored rows of one group line, as a full read makes them (the line is the one folded in)."""
    shard, offset, length, kept = where
    with open(log._shards[shard], "rb") as f:
        f.seek(offset)
        data = f.read(length) + b"\n"
    parsed = log._parse(data, len(data), offset, shard, log._shards[shard])
    index = parsed[0][3] if parsed else []
    positions = range(kept) if isinstance(kept, int) else kept
    return [Row(index[pos], gk, variant, shard, offset, length, pos, 0) for pos in positions if pos < len(index)]
