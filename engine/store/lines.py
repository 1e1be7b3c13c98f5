"""Append-only line files: complete-line reads, torn-tail cuts and durable appends (docs/ARCHITECTURE.md, "Store").

Every store write is one `write()` of whole lines followed by a data sync, so a kill can only
tear the last line; readers ignore a last line without its newline and the next writer cuts it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.workspace import disk_error


def _fast_decoder() -> Callable[[bytes], Any] | None:
    """orjson's decoder where installed, else msgspec's (a dependency), else None: either reads
    the journal's entries at about twice the stdlib's rate. Where it refuses what the stdlib reads
    (NaN, a lone surrogate escape, which the store writes for text that holds one; 1e400; a BOM),
    and on every error, `loads` asks the stdlib, so results and errors are the stdlib's.

    A function rather than try/except around the imports, so mypy reads it the same with and
    without orjson installed.
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    else:
        return orjson.loads
    try:
        import msgspec
    except ImportError:  # pragma: no cover - a dependency; the stdlib then does it all
        return None
    return msgspec.json.decode


_fast_loads = _fast_decoder()


def loads(data: bytes) -> Any:
    """JSON from bytes, exactly as `json.loads` reads it (see `_fast_decoder`); deep nesting is
    RecursionError, as the stdlib reports it."""
    # Deep nesting goes to the stdlib, which stops at the recursion limit: the fast decoders use
    # more C stack per level and can overflow a small thread stack (musl's 128 KiB) first.
    if _fast_loads is not None and (len(data) < _DEEP or data.count(b"[") + data.count(b"{") < _DEEP):
        try:
            return _fast_loads(data)
        except ValueError:
            pass
    return json.loads(data)


_DEEP = 256  # brackets in a line from which the stdlib reads it (a group line of 5 candidates has ~70)


def datasync(fd: int) -> None:
    """fdatasync where the platform has it (not macOS), fsync otherwise."""
    sync = getattr(os, "fdatasync", None) or os.fsync
    sync(fd)


def read_complete_lines(path: Path, start: int = 0) -> tuple[list[tuple[int, bytes]], int]:
    """Lines (offset, bytes without newline) from `start` up to the last newline; and the end.

    A last line without its newline is a write in progress or one torn by a kill: not ours.
    """
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
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


def cut_torn_tail(path: Path) -> None:
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


def append_durably(fd: int, data: bytes, path: Path | None, what: str) -> None:
    """Append `data` and sync; on failure take the partial line back and raise WorkspaceError.

    Without the take-back, the next append after a full disk would land behind a torn line
    and the two would read as one corrupt line.
    """
    size = os.fstat(fd).st_size
    try:
        write_all(fd, data)
        datasync(fd)
    except OSError as exc:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise disk_error(path, what, exc) from None


def write_all(fd: int, data: bytes) -> None:
    # One write() for a line this size is one syscall in practice; the loop only guards the
    # rare short write (a full disk raises instead).
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def open_append(path: Path) -> int:
    """An append-only fd; created with the user's umask (mode 0o666 before it)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
