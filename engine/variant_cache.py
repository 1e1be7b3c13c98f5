"""The variants table as last computed, for files that have not changed since (docs/ARCHITECTURE.md, "Store", "Scale").

`WS/candidates/variants.table.json` holds the rows and warnings `engine.variant_summary` last
produced, with the identity (device, inode, size, modification and change time) of every file they were computed from,
taken before the read: the shards, the checks, the decision journal and snapshot, the variant
records and the failures. When every one is the same, nothing was appended, replaced or
written, and the rows are those rows. Anything else, or a damaged file, is a miss and the
summary is read. This module imports nothing of the store, so `nlq-tui variants` answers from
it without importing the store at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SUMMARY = "variants.summary.json"  # engine.variant_summary's file
TABLE = "variants.table.json"
CACHE_FILES = frozenset({SUMMARY, TABLE})
# What the table is computed from besides the shards (the names engine.store uses).
INPUTS = ("checks.jsonl", "decisions.jsonl", "decisions.snapshot.json", "variants.jsonl", "failures.jsonl")
SHARD_PREFIX, SHARD_SUFFIX = "groups-", ".jsonl"
VERSION = 2


def _loads(data: bytes) -> Any:
    try:
        import orjson

        return orjson.loads(data)
    except ImportError:  # pragma: no cover - depends on the environment
        return json.loads(data)
    except ValueError:
        return json.loads(data)  # what orjson refuses and the stdlib reads (Infinity)


def inputs(directory: Path) -> list | None:
    """The identity of every file the table is computed from, in a fixed order; None when the folder cannot be listed."""
    try:
        with os.scandir(directory) as it:
            shards = sorted(
                (e.name, e)
                for e in it
                if e.name.startswith(SHARD_PREFIX)
                and e.name.endswith(SHARD_SUFFIX)
                and len(e.name) >= len(SHARD_PREFIX) + len(SHARD_SUFFIX)
            )
        out: list = []
        for name, entry in shards:
            if entry.is_file():
                st = entry.stat()
                out.append([name, st.st_ino, st.st_size, st.st_dev, st.st_mtime_ns, st.st_ctime_ns])
        for name in INPUTS:
            try:
                st = os.stat(directory / name)
                out.append([name, st.st_ino, st.st_size, st.st_dev, st.st_mtime_ns, st.st_ctime_ns])
            except OSError:
                out.append([name, None])
    except OSError:
        return None
    return out


def cached_table(directory: Path, now: list | None = None) -> tuple[list[dict], list[str], int] | None:
    """(rows, warning lines, warning count) as computed from files that are all still as they were; None otherwise."""
    now = inputs(directory) if now is None else now
    if now is None:
        return None
    try:
        raw = (directory / TABLE).read_bytes()
        nl = raw.index(b"\n")
        head, body = _loads(raw[:nl]), raw[nl + 1 :]
        if head.get("version") != VERSION or head.get("digest") != hashlib.blake2b(body, digest_size=16).hexdigest():
            return None
        d = _loads(body)
        if d["inputs"] != now:
            return None
        rows, lines, count = d["rows"], d["problems"], d["problem_count"]
        if not isinstance(rows, list) or not isinstance(lines, list) or not isinstance(count, int):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    return rows, lines, count


def save_table(directory: Path, before: list | None, rows: list[dict], lines: list[str], count: int) -> None:
    """Keep the rows for the files as they were before the read (`before`); temp file and rename, never an error."""
    if before is None:
        return
    body = json.dumps(
        {"inputs": before, "rows": rows, "problems": lines, "problem_count": count},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8", "backslashreplace")
    head = json.dumps({"version": VERSION, "digest": hashlib.blake2b(body, digest_size=16).hexdigest()})
    write_quietly(directory / TABLE, head.encode() + b"\n" + body)


def write_quietly(path: Path, data: bytes) -> None:
    """Temp file and rename, no sync (a cache lost to a crash is rebuilt); a folder that cannot be written is fine."""
    if not path.parent.is_dir():
        return
    from engine.workspace import file_mode  # here: a reader that finds its rows never imports it

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        os.fchmod(fd, file_mode())  # as the store's files: teammates on a shared box read it too
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
