"""The shard log: generated groups, one line each, appended by generation (docs/ARCHITECTURE.md, "Store").

    groups-<ms>-<pid>.jsonl    one line per generated group of one variant
    variants.jsonl             one line per variant record (what its output depends on)
    failures.jsonl             one line per group a variant tried and failed
    checks.jsonl               late embedding checks of stored candidates (the latest wins)

A group line is atomic: all of a group's candidates land, or none. Its first keys (group key,
variant, stats, a compact index row per candidate, the generation rejects) come before the
candidates, so opening the store decodes only that head and reads a full candidate from disk
when someone looks at it. The group's raw LLM answer is stored once, truncated, after them.
Lines written before variants existed have no variant: their rows read as the default variant
of their backend, model and prompt version.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.candidate import Candidate, CandidateError, Window, as_candidate, default_variant_name, truncate_raw
from engine.errors import ConfigError, WorkspaceError
from engine.store.lines import append_durably, cut_torn_tail, loads, open_append, read_complete_lines
from engine.store.rows import GroupResult as GroupResult  # re-exported: the generation engine imports it from here
from engine.store.rows import (
    Row,
    apply_checks,
    as_result,
    check_candidates,
    encode_group_line,
    index_row,
    row_ok,
)
from engine.variants import Variant
from engine.workspace import atomic_write_bytes, fsync_dir

SHARD_PREFIX = "groups-"
SHARD_LIMIT = 256 * 1024 * 1024  # roll over to a new shard past this many bytes
VARIANTS = "variants.jsonl"
FAILURES = "failures.jsonl"
CHECKS = "checks.jsonl"  # late embedding checks, merged into rows and candidates on read
GENERATION_LOCK = "candidates"
MAX_PROBLEMS = 50  # lines kept for the UI; the count goes on

_CANDIDATES_MARK = b', "candidates": '
# What reading a candidate from a damaged line raises (a truncated file, bad JSON, wrong types).
UNREADABLE = (OSError, ValueError, RecursionError, KeyError, IndexError, TypeError, AttributeError)


def variant_of_index(index: list) -> str:
    """The variant of a group line that names none (older lines): its first row's."""
    first = next((r for r in index if row_ok(r)), None)
    return default_variant_name(first[3], first[4], first[5]) if first else "unknown"


class ShardLog:
    """The generated groups of one workspace: scanning, reading candidates, and the one add path."""

    def __init__(self, directory: Path, workspace, problems: list[str]) -> None:
        self.dir = directory
        self.workspace = workspace
        self.problems = problems
        self.problem_count = 0
        self.rows: list[Row] = []
        self.by_id: dict[str, Row] = {}
        self.groups: dict[tuple[str, str], list[Row]] = {}  # (variant, group_key) -> rows
        self.group_rejected: dict[tuple[str, str], list[dict]] = {}
        self.group_stats: dict[tuple[str, str], dict] = {}
        self._shards: list[Path] = []
        self._shard_ends: dict[str, int] = {}
        self._shard_idx: dict[str, int] = {}
        self._plan: list[list] | None = None
        self.scanned = False
        self.scan_started = False
        self.scan_done = False
        self._scan_lock = threading.Lock()
        self.mutex = threading.RLock()  # rows change under it (scan may be in a thread)
        self._fds: dict[int, int] = {}
        self._cache: OrderedDict[tuple[int, int], dict] = OrderedDict()
        self.on_rows: Callable[[list[Row]], None] | None = None  # the rows each scan step added (under the mutex)
        self._gen_lock = None
        self._gen_fd: int | None = None
        self._gen_path: Path | None = None
        self._variants: dict[str, Variant] | None = None
        self.check_updates: dict[str, dict] = {}  # cid -> the latest late checks
        self._checks_read_to = 0

    def problem(self, line: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line)

    def _check_dir(self) -> None:
        if self.dir.exists() and not self.dir.is_dir():
            raise WorkspaceError(f"{self.dir}: is a file where the candidates folder should be; move it aside")

    # scanning --------------------------------------------------------------------------------
    def shard_paths(self) -> list[Path]:
        self._check_dir()
        return sorted(p for p in self.dir.glob(f"{SHARD_PREFIX}*.jsonl") if p.is_file())

    def shard_name(self, row: Row) -> str:
        return self._shards[row.shard].name

    def scan(self, budget: int | None = None, hint: tuple[str, int] | None = None) -> int:
        """Read new group lines (all of the store the first time); returns how many candidates came in.

        Only bytes written since the last call are read. With `budget`, stops after about that many
        bytes (`scan_done` says whether all was read). The first pass starts at `hint` (where the
        last decision was) and wraps round, so a resumed review finds its next card in the first slice.
        """
        # The cyclic collector would walk every row made so far, again and again, while a scan
        # makes hundreds of thousands of objects without a cycle: off for the scan (1.6-2x faster).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._scan(budget, hint)
        finally:
            if collecting:
                gc.enable()

    def _scan(self, budget: int | None, hint: tuple[str, int] | None) -> int:
        with self._scan_lock:
            self.scan_started = True
            self._read_checks()
            if self._plan is None:
                self._plan = self._make_plan(None if self.scanned else hint)
            added = 0
            remaining = budget
            while self._plan:
                seg = self._plan[0]
                path, pos, stop = seg
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
                parsed = self._parse(data, end, pos, self._shard_idx[path.name], path)
                with self.mutex:
                    added += self._ingest(parsed, path)
                    seg[1] = pos + end
                    if stop is None:
                        self._shard_ends[path.name] = pos + end
                if short or (stop is not None and seg[1] >= stop):
                    self._plan.pop(0)
                if remaining is not None:
                    remaining -= len(data)
                    if remaining <= 0 and self._plan:
                        self.scan_done = False
                        return added
            self._plan = None
            self.scan_done = True
            self.scanned = True
            return added

    def _register_shards(self) -> list[Path]:
        paths = self.shard_paths()
        for path in paths:
            if path.name not in self._shard_ends:
                self._shard_idx[path.name] = len(self._shards)
                self._shards.append(path)
                self._shard_ends[path.name] = 0
        return paths

    def _make_plan(self, hint: tuple[str, int] | None) -> list[list]:
        """Segments [path, from, to-or-None(to the end)] to read, in order."""
        paths = self._register_shards()
        if hint is None:
            return [[p, self._shard_ends[p.name], None] for p in paths]
        names = [p.name for p in paths]
        if hint[0] in names:
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
        """(key, variant, stats, index rows, rejects, shard, offset, length) of every complete line."""
        out = []
        pos = 0
        find = data.find
        while pos < end:
            nl = find(b"\n", pos, end)
            # Only the head of each line is decoded: the candidates after it are most of the
            # bytes and are read one group at a time when shown.
            cut = find(_CANDIDATES_MARK, pos, nl)
            item = self._parse_line(data, pos, nl, cut, start, shard, path)
            if item is not None:
                out.append(item)
            pos = nl + 1
        return out

    def _parse_line(
        self, data: bytes, pos: int, nl: int, cut: int, start: int, shard: int, path: Path, report: bool = True
    ):
        offset, length = start + pos, nl - pos
        try:
            head = None
            if cut >= 0:
                try:
                    head = loads(data[pos:cut] + b"}")
                except (ValueError, RecursionError):
                    head = None  # the marker met inside a reject: read the whole line
            if not isinstance(head, dict) or "index" not in head:
                head = loads(data[pos:nl])
                if isinstance(head, dict) and "index" not in head:
                    cands = head.get("candidates")
                    head["index"] = [
                        index_row(as_candidate(c)) for c in (cands if isinstance(cands, list) else [])
                    ]  # fmt: skip
            gk, index, rejected = head["group_key"], head["index"], head.get("rejected") or []
            if not isinstance(gk, str) or not isinstance(index, list) or not isinstance(rejected, list):
                raise TypeError("wrong types in the group line")
        except (UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError, CandidateError) as exc:
            if report and data[pos:nl].strip():
                self.problem(f"{path.name} at byte {offset}: unreadable group line skipped ({exc})")
            return None
        variant = head.get("variant") if isinstance(head.get("variant"), str) else ""
        stats = head.get("stats") if isinstance(head.get("stats"), dict) else {}
        if not variant and not index:
            variant = self._legacy_variant_of_empty(path, offset, length)
        return gk, variant, stats, index, [r for r in rejected if isinstance(r, dict)], shard, offset, length

    def _legacy_variant_of_empty(self, path: Path, offset: int, length: int) -> str:
        # An old line whose every narration was rejected has no rows to name its variant: its meta does.
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                meta = loads(f.read(length)).get("meta") or {}
            return default_variant_name(meta.get("backend", ""), meta.get("model", ""), meta.get("prompt_version"))
        except (OSError, ValueError, RecursionError, AttributeError):
            return "unknown"

    def _ingest(self, parsed: list[tuple], path: Path) -> int:
        new: list[Row] = []
        for gk, variant, stats, index, rejected, shard, offset, length in parsed:
            variant = variant or variant_of_index(index)
            key = (variant, gk)
            if key in self.groups:
                # The first stored result of a group wins: a decision made on its questions
                # must never silently attach to different text.
                continue
            rows = []
            for pos, r in enumerate(index):
                if not row_ok(r):
                    self.problem(f"{path.name} at byte {offset}: a candidate row with wrong types skipped")
                    continue
                if r[0] in self.by_id:
                    self.problem(f"{path.name} at byte {offset}: candidate id {r[0]!r} repeated; kept the first")
                    continue
                row = Row(r, gk, variant, shard, offset, length, pos, len(self.rows))
                if self.check_updates and row.id in self.check_updates:
                    apply_checks(row, self.check_updates[row.id])
                self.rows.append(row)
                self.by_id[row.id] = row
                rows.append(row)
            self.groups[key] = rows
            if rejected:
                self.group_rejected[key] = rejected
            if stats:
                self.group_stats[key] = stats
            new.extend(rows)
        if new and self.on_rows is not None:
            self.on_rows(new)
        return len(new)

    @property
    def scan_begun(self) -> bool:
        """The scan proper has begun (a read ahead of it, engine.store.early, has not)."""
        return self.scanned or self._plan is not None

    def ensure_scanned(self) -> None:
        # A progressive scan in a worker (the review screen) is not repeated here.
        if not self.scanned and not self.scan_started:
            self.scan()

    # reading candidates ----------------------------------------------------------------------
    def group_line(self, row: Row) -> dict:
        key = (row.shard, row.offset)
        obj = self._cache.get(key)
        if obj is not None:
            self._cache.move_to_end(key)
            return obj
        fd = self._fds.get(row.shard)
        if fd is None:
            fd = self._fds[row.shard] = os.open(self._shards[row.shard], os.O_RDONLY)
        obj = loads(os.pread(fd, row.length, row.offset))
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        self._cache[key] = obj
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return obj

    def read(self, row: Row) -> tuple[Candidate, dict | None]:
        """The full candidate of a row and its group's raw answer; from the index row if the line is damaged."""
        try:
            return self.read_exact(row)
        except UNREADABLE as exc:
            self.problem(f"{self._shards[row.shard].name} at byte {row.offset}: candidate {row.id} unreadable ({exc})")
            c = Candidate(row.id, row.group_key, row.video_uid, row.clip_uid, row.query, Window.from_json(None))
            c.backend, c.model, c.prompt_version = row.backend, row.model, row.prompt_version
            return self._as_stored(row, c), None

    def read_exact(self, row: Row) -> tuple[Candidate, dict | None]:
        """`read` from the line alone: an UNREADABLE error where it is damaged, nothing reported."""
        obj = self.group_line(row)
        c = Candidate.from_json(obj["candidates"][row.pos], row.group_key)
        raw = obj.get("raw") if isinstance(obj.get("raw"), dict) else None
        if raw is None and isinstance(obj["candidates"][row.pos].get("raw"), str):
            raw = truncate_raw(obj["candidates"][row.pos]["raw"])
        return self._as_stored(row, c), raw

    def _as_stored(self, row: Row, c: Candidate) -> Candidate:
        c.variant = row.variant
        found = self.check_updates.get(row.id)
        if found is not None:
            c.checks.update(found)
        return c

    def rejections(self) -> Iterator[tuple[str, dict]]:
        """(variant, reject) for what generation threw out, every group."""
        self.ensure_scanned()
        for (variant, _), rejected in self.group_rejected.items():
            for r in rejected:
                yield variant, r

    def done_groups(self, variant: str | None = None) -> set[str]:
        self.ensure_scanned()
        if variant is None:
            return {gk for _, gk in self.groups}
        return {gk for v, gk in self.groups if v == variant}

    # variants and failures -------------------------------------------------------------------
    def variants(self) -> dict[str, Variant]:
        """Registered variants, then the legacy ones only their candidates name; in first-seen order."""
        self.ensure_scanned()
        out = dict(self._registered())
        for (variant, _), rows in self.groups.items():
            if variant in out:
                continue
            r = rows[0] if rows else None
            try:
                out[variant] = Variant(
                    variant, r.backend if r else "", r.model if r else "", (r.prompt_version or None) if r else None,
                    legacy=True,
                )  # fmt: skip
            except ConfigError:  # a hand-edited name: its rows still show, under no record
                continue
        return out

    def _registered(self) -> dict[str, Variant]:
        if self._variants is None:
            self._variants = {}
            lines, _ = read_complete_lines(self.dir / VARIANTS)
            for offset, raw in lines:
                try:
                    v = Variant.from_json(loads(raw))
                except (ValueError, RecursionError, KeyError, TypeError, AttributeError, ConfigError):
                    self.problem(f"{VARIANTS} at byte {offset}: unreadable variant record skipped")
                    continue
                self._variants[v.name] = v
        return self._variants

    def register_variant(self, variant: Variant) -> Variant:
        self.open_generation()
        self._variants = None
        known = self._registered().get(variant.name)
        if known is None:
            rows = next((rows for (v, _), rows in self.groups.items() if v == variant.name and rows), None)
            if rows and (rows[0].backend, rows[0].model) != (variant.backend, variant.model):
                raise ConfigError(
                    f"variant {variant.name!r} already holds {rows[0].backend}/{rows[0].model} candidates; "
                    "give the job another --name"
                )
            data = (json.dumps(variant.to_json(), ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
            fd = open_append(self.dir / VARIANTS)
            try:
                append_durably(fd, data, self.dir / VARIANTS, "the variant record")
            finally:
                os.close(fd)
            self._registered()[variant.name] = variant
            return variant
        diff = known.differs_from(variant)
        if diff:
            raise ConfigError(
                f"variant {variant.name!r} exists with other settings ({'; '.join(diff[:3])}); "
                "give the job another --name to compare them side by side"
            )
        return known

    def failures(self) -> dict[str, dict[str, str]]:
        """variant -> {group_key: reason} of groups that failed and were not stored since."""
        out = read_failures(self.dir, self.problem)
        self.ensure_scanned()
        for v, failed in out.items():
            for gk in [gk for gk in failed if (v, gk) in self.groups]:
                del failed[gk]
        return out

    def add_failure(self, variant: str, group_key: str, reason: str, detail: str = "") -> None:
        self.open_generation()
        entry: dict[str, Any] = {"variant": variant, "group_key": group_key, "reason": reason}
        entry.update(detail=str(detail)[:500], t=time.time())
        fd = open_append(self.dir / FAILURES)
        try:
            append_durably(
                fd,
                (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace"),
                self.dir / FAILURES,
                "a failure",
            )
        finally:
            os.close(fd)

    # late checks -----------------------------------------------------------------------------
    def add_checks(self, variant: str, updates: list[tuple[str, dict]]) -> None:
        """Record the embedding checks of stored candidates: one line, one data sync."""
        if not updates:
            return
        self.open_generation()
        found = {
            cid: {"near_duplicate_of": d.get("near_duplicate_of"), "ambiguity": d.get("ambiguity")}
            for cid, d in updates
        }
        line = json.dumps({"variant": variant, "checks": found, "t": time.time()}, ensure_ascii=False) + "\n"
        fd = open_append(self.dir / CHECKS)
        try:
            append_durably(fd, line.encode("utf-8", "backslashreplace"), self.dir / CHECKS, "the checks")
        finally:
            os.close(fd)
        self._read_checks()

    def _read_checks(self) -> None:
        lines, end = read_complete_lines(self.dir / CHECKS, self._checks_read_to)
        self._checks_read_to = end
        with self.mutex:
            for offset, raw in lines:
                try:
                    found = loads(raw)["checks"]
                    items = [(cid, d) for cid, d in found.items() if isinstance(cid, str) and isinstance(d, dict)]
                except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
                    self.problem(f"{CHECKS} at byte {offset}: unreadable checks line skipped")
                    continue
                for cid, d in items:
                    self.check_updates[cid] = d
                    row = self.by_id.get(cid)
                    if row is not None:
                        apply_checks(row, d)

    # the add path ----------------------------------------------------------------------------
    def add(self, results: list, variant: Variant | str | None = None) -> list[bool]:
        """Store groups with one write and one data sync; per group, False when already stored.

        Each group is one line, so each is all or nothing; a kill can tear only the last line.
        """
        self.ensure_scanned()
        self.open_generation()
        self.scan()  # a group another (earlier) writer stored since we opened
        if isinstance(variant, Variant) and variant.name not in self._registered():
            self.register_variant(variant)
        name = variant.name if isinstance(variant, Variant) else (variant or "")
        out: list[bool] = []
        lines: list[bytes] = []
        batch: set[tuple[str, str]] = set()
        for item in results:
            res = as_result(item)
            typed = [as_candidate(c, res.group_key) for c in res.candidates]
            vname = name or (typed[0].variant_name() if typed else "")
            key = (vname, res.group_key)
            if key in self.groups or key in batch:
                out.append(False)
                continue
            check_candidates(res.group_key, res.candidates, self.by_id)
            raw = res.raw
            if raw is None:
                raw = next((c.get("raw") for c in res.candidates if isinstance(c, dict)), None)
            lines.append(encode_group_line(res.group_key, typed, res.rejected, res.meta, variant=vname, raw=raw))
            batch.add(key)
            out.append(True)
        if lines:
            data = b"".join(lines)
            assert self._gen_fd is not None
            size = os.fstat(self._gen_fd).st_size
            if size + len(data) > SHARD_LIMIT and size > 0:
                self._new_shard()
            append_durably(self._gen_fd, data, self._gen_path, "the generated group" + ("s" if len(lines) > 1 else ""))
            self.scan()
        return out

    def open_generation(self) -> None:
        if self._gen_fd is not None:
            return
        self._check_dir()
        self._gen_lock = self.workspace.acquire(GENERATION_LOCK, "generation")
        for path in self.shard_paths():
            cut_torn_tail(path)
        self._new_shard()

    def _new_shard(self) -> None:
        if self._gen_fd is not None:
            os.close(self._gen_fd)
        name = f"{SHARD_PREFIX}{int(time.time() * 1000):013d}-{os.getpid()}.jsonl"
        self._gen_path = self.dir / name
        self._gen_fd = open_append(self._gen_path)
        fsync_dir(self.dir)

    # deleting a variant ----------------------------------------------------------------------
    def delete_variant(self, name: str) -> set[str]:
        """Rewrite every shard without the variant's lines; returns the ids of its candidates."""
        self.ensure_scanned()
        self.open_generation()
        ids = {r.id for (v, _), rows in self.groups.items() if v == name for r in rows}
        for path in self.shard_paths():
            lines, _ = read_complete_lines(path)
            kept = [raw for _, raw in lines if not _line_of(raw, name)]
            if len(kept) != len(lines):
                atomic_write_bytes(path, b"".join(line + b"\n" for line in kept))
        registered = [v for v in self._registered().values() if v.name != name]
        atomic_write_bytes(
            self.dir / VARIANTS,
            b"".join((json.dumps(v.to_json()) + "\n").encode("utf-8", "backslashreplace") for v in registered),
        )
        self._variants = None
        # Its failures and late checks go too: a variant made again under the name gets the same
        # candidate ids, and old checks must not land on new questions.
        for extra in (FAILURES, CHECKS):
            lines, _ = read_complete_lines(self.dir / extra)
            kept = [raw for _, raw in lines if _record_variant(raw) != name]
            if len(kept) != len(lines):
                atomic_write_bytes(self.dir / extra, b"".join(line + b"\n" for line in kept))
        for cid in ids:
            self.check_updates.pop(cid, None)
        return ids

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self._gen_fd is not None:
            os.close(self._gen_fd)
            self._gen_fd = None
        if self._gen_lock is not None:
            self._gen_lock.release()
            self._gen_lock = None


def _record_variant(raw: bytes) -> str | None:
    try:
        d = loads(raw)
    except (ValueError, RecursionError):
        return None
    return d.get("variant") if isinstance(d, dict) else None


def _line_of(raw: bytes, variant: str) -> bool:
    """Whether a shard line belongs to the variant (read as the scanner reads it)."""
    try:
        obj = loads(raw)
    except (ValueError, RecursionError):
        return False
    if not isinstance(obj, dict):
        return False
    v = obj.get("variant")
    if isinstance(v, str) and v:
        return v == variant
    cands = obj.get("candidates")
    if isinstance(cands, list) and cands:
        try:
            return as_candidate(cands[0]).variant_name() == variant
        except CandidateError:
            return False
    meta = obj.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    return default_variant_name(meta.get("backend", ""), meta.get("model", ""), meta.get("prompt_version")) == variant


def read_failures(directory: Path, problem: Callable[[str], None]) -> dict[str, dict[str, str]]:
    """variant -> {group_key: reason} of every failure record, stored since or not; a record of
    the wrong shape is skipped and goes to `problem`."""
    out: dict[str, dict[str, str]] = {}
    lines, _ = read_complete_lines(directory / FAILURES)
    for offset, raw in lines:
        try:
            d = loads(raw)
            v, gk, reason = d["variant"], d["group_key"], d.get("reason") or "failed"
            if not isinstance(v, str) or not isinstance(gk, str):
                raise TypeError
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            problem(f"{FAILURES} at byte {offset}: unreadable failure record skipped")
            continue
        out.setdefault(v, {})[gk] = str(reason)
    return out
