"""Reads ahead of the scan: just the group lines a second opinion needs (docs/ARCHITECTURE.md, "Scale").

A blind second opinion is drawn from every candidate another reviewer decided, so those must
be in before its queue: `read_lines` reads the lines the journal located (a keypress decision
names its line), `read_groups` walks the shards and decodes only the lines of the other
candidates' group keys. Both ingest through the shard log's own parser, under the scan's lock;
the scan that follows skips the groups already in.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from engine.store.rows import Row, apply_checks, row_ok
from engine.store.shards import _CANDIDATES_MARK, variant_of_index
from engine.store.snapshot import MAX_OFFSET

if TYPE_CHECKING:
    from engine.store.shards import ShardLog

# A line's start as encode_group_line writes it: its group key first, whose bytes (for a key
# without a character JSON escapes) are the key's UTF-8 up to the next quote.
_HEAD = b'{"group_key": "'


def read_groups(log: ShardLog, keys: set[str], chunk: int = 16 << 20) -> int:
    """Ingest only the lines of these group keys (of any variant), in file order, before
    the scan: a line's key is read from its first bytes, and only the lines asked for are
    decoded (a second opinion's few thousand groups out of a million candidates), with any
    line not in `encode_group_line`'s form (its head is decoded to tell its key). The scan
    that follows still reads every line and skips the groups already in; until then the
    store holds only these (`load`, `counts` included). An unreadable line is reported by
    the scan alone. Returns how many candidates came in."""
    with _before_scan(log):
        added = 0
        wanted = {k.encode("utf-8", "surrogatepass") for k in keys}
        for path in log._register_shards():
            added += _read_groups_of(log, path, wanted, keys, chunk)
        return added


@contextmanager
def _before_scan(log: ShardLog) -> Iterator[None]:
    """What a read ahead of the scan runs under: the scan's lock, the collector off (it
    makes many objects and no cycle, as the scan does), the late checks read first."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        with log._scan_lock:
            log.scan_started = True
            log._read_checks()
            yield
    finally:
        if gc_was:
            gc.enable()


def read_lines(log: ShardLog, places: Iterable[tuple[str, int]]) -> int:
    """Ingest the group lines that start at these (shard name, offset) places, before the
    scan (a second opinion's decided candidates, where the journal says their lines are).
    A place that is not the start of a whole line of a shard is skipped: they are hints.
    Returns how many candidates came in."""
    with _before_scan(log):
        paths = {p.name: p for p in log._register_shards()}
        added = 0
        by_shard: dict[str, list[int]] = {}
        for name, offset in places:
            if name in paths and 0 <= offset < MAX_OFFSET:
                by_shard.setdefault(name, []).append(offset)
        for name in sorted(by_shard):  # in file order, as the scan would ingest them
            added += _read_lines_of(log, paths[name], sorted(set(by_shard[name])))
        return added


def peek_row(log: ShardLog, place: tuple[str, int], cid: str) -> Row | None:
    """Candidate `cid`'s row from the group line at `place` (shard name, offset), read and
    parsed but not taken into the store: a card to show while the store's own reads, in file
    order, decide which copy of a repeated id counts. None where that line is not there."""
    name, offset = place
    with log._scan_lock:
        path = next((p for p in log._register_shards() if p.name == name), None)
        log._read_checks()  # the late check results the card's badges show
    if path is None or not 0 <= offset < MAX_OFFSET:
        return None
    for gk, variant, _stats, index, _rejected, shard, at, length in _parsed_lines(log, path, [offset]):
        for pos, r in enumerate(index):
            if row_ok(r) and r[0] == cid:
                row = Row(r, gk, variant or variant_of_index(index), shard, at, length, pos, -1)
                if cid in log.check_updates:
                    apply_checks(row, log.check_updates[cid])
                return row
    return None


def _read_lines_of(log: ShardLog, path: Path, offsets: list[int]) -> int:
    parsed = _parsed_lines(log, path, offsets)
    if not parsed:
        return 0
    with log.mutex:
        return log._ingest(parsed, path)


def _parsed_lines(log: ShardLog, path: Path, offsets: list[int]) -> list[tuple]:
    """The parsed group lines that start at these offsets of a shard (see `_line_at`); a place
    that is not a whole line's start, or not readable, is skipped and not reported."""
    shard, parsed = log._shard_idx[path.name], []
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return []
    try:
        for offset in offsets:
            data = _line_at(fd, offset)
            if data is None:
                continue
            nl = len(data) - 1
            cut = data.find(_CANDIDATES_MARK, 0, nl)
            item = log._parse_line(data, 0, nl, cut, offset, shard, path, report=False)
            if item is not None:
                parsed.append(item)
    finally:
        os.close(fd)
    return parsed


def _line_at(fd: int, offset: int) -> bytes | None:
    """The whole line (with its newline) that starts at `offset`, or None: not a line's start,
    not written whole yet, or not readable."""
    try:
        data = os.pread(fd, 1 << 14, offset - 1 if offset else 0)  # most group lines fit
        if offset and data[:1] != b"\n":
            return None
        data = data[1:] if offset else data
        while b"\n" not in data:
            more = os.pread(fd, max(len(data), 1 << 14), offset + len(data))
            if not more:
                return None
            data += more
    except OSError:
        return None
    return data[: data.index(b"\n") + 1]


def _read_groups_of(log: ShardLog, path: Path, keys: set[bytes], names: set[str], chunk: int) -> int:
    shard, added, start = log._shard_idx[path.name], 0, 0
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        while True:
            f.seek(start)
            data = f.read(chunk)
            end = data.rfind(b"\n") + 1
            if end == 0 and len(data) == chunk:
                data += f.readline()  # one line longer than the chunk
                end = data.rfind(b"\n") + 1
            if end == 0:
                return added  # the rest is a line not written whole yet: the scan's
            parsed = []
            find, pos = data.find, 0
            while pos < end:  # pos: a line's start (lines are JSON: no raw newline inside)
                nl = find(b"\n", pos, end)  # memchr: the line's bytes are skipped in C
                a = pos + len(_HEAD)
                b = find(b'"', a, nl) if data.startswith(_HEAD, pos) else -1
                plain = b >= 0 and find(b"\\", a, b) < 0
                if not plain or data[a:b] in keys:
                    # A line not in encode_group_line's form may be the first of a wanted
                    # group (the first stored wins): its head is decoded to tell.
                    cut = find(_CANDIDATES_MARK, pos, nl)
                    item = log._parse_line(data, pos, nl, cut, start, shard, path, report=False)
                    if item is not None and (plain or item[0] in names):
                        parsed.append(item)
                pos = nl + 1
            if parsed:
                with log.mutex:
                    added += log._ingest(parsed, path)
            start += end
