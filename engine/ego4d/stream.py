"""The JSON stream reader: the members of a big file's top-level object, decoded one at a time.

`narration.json` of the full dataset is ~650 MB (~4M narrations). `json.load` of it builds
GBs of Python objects and spends most of its time in the cyclic garbage collector, so it is
decoded one video at a time (`raw_decode` over the top-level object's members, the bytes read
as Latin-1, see `Stream`); nothing but the caller's arrays outlives its video. How the reading
is tuned (chunk size, when to use worker processes) is a `ReadPolicy`, passed down, never a
module global (docs/ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ego4d.problems import (
    Problems,
    encoding_error,
    json_error_message,
    sniff_encoding,
    too_deep_message,
    warn_bom,
)

Progress = Callable[[str, int, int], None]

_WS = re.compile(r"[ \t\n\r]*")  # matches anywhere (possibly empty)
# Where one top-level member (a video) of narration.json may end and the next begin,
# `}, "<uid>": {`, for the readers that cut the file (engine.ego4d.fast, .parallel). JSON's
# whitespace only: a bytes \s also matches \x0b and \x0c, which a cut would then erase (the
# reader accepted a file the streaming reader rejects at that byte). The keys one level down
# that the pattern also finds are NOT_VIDEO_KEYS.
VIDEO_BOUNDARY = re.compile(rb'\}[ \t\n\r]*,[ \t\n\r]*("(?:[^"\\]|\\.)*")[ \t\n\r]*:[ \t\n\r]*\{')
NOT_VIDEO_KEYS = {b'"narration_pass_1"', b'"narration_pass_2"', b'"status"'}


def ws_end(text: str, pos: int) -> int:
    """The position after the JSON whitespace that starts at `pos`."""
    m = _WS.match(text, pos)
    return m.end() if m is not None else pos


@dataclass(frozen=True)
class ReadPolicy:
    """How narration.json is read; the defaults suit the full dataset on one box.

    chunk: bytes read at a time (tests shrink it to cut values at every place).
    parallel_min_bytes: below this size the file is read serially (starting workers costs
    more than it saves). parallel_min_chunk: each worker's share is at least this many bytes.
    workers: worker processes to start (None: one per CPU idle now, see parallel.workers).
    fork_ok: whether forking is safe (None: only when this process runs no other thread).
    decoder: "auto" (parallel workers where CPUs are idle, each reading its share with msgspec,
    else msgspec in this process, see engine.ego4d.fast; else the streaming reader), "msgspec"
    (only msgspec in this process) or "stdlib" (the streaming reader, or its parallel workers).
    scanner: whether the C narration scanner (engine/ego4d/_scan.c, where it was built) reads
    the chunks it can before msgspec does (off: the bench measures the msgspec reader alone).
    """

    chunk: int = 1 << 24
    parallel_min_bytes: int = 32 << 20
    parallel_min_chunk: int = 16 << 20
    workers: int | None = None
    fork_ok: bool | None = None
    decoder: str = "auto"
    scanner: bool = True


DEFAULT_POLICY = ReadPolicy()


class Stream:
    """A file's bytes as Latin-1 text (one character per byte), read in chunks.

    Why not UTF-8: decoding to `str` is a third of the cost of streaming a big file once it
    holds a single curly apostrophe (CPython's decoder leaves its ASCII fast path and builds
    2-byte strings), while Latin-1 is a plain copy. JSON's structure is ASCII and UTF-8
    multi-byte sequences contain no ASCII byte, so the parse is the same; strings with
    non-ASCII characters come out as their UTF-8 bytes spelled in Latin-1, and the member
    reader says per value how to get the real text back. Positions are byte offsets.
    """

    def __init__(
        self, path: Path, progress: Progress | None, label: str, start: int = 0, policy: ReadPolicy = DEFAULT_POLICY
    ) -> None:
        self.path = path
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size
        if start:
            self.f.seek(start)
        self.chunk = max(1, policy.chunk)
        self.buf = ""
        self.pos = 0
        self.base = start  # characters dropped before buf (or not read: a parallel worker's chunk)
        self.read_bytes = 0
        self.stopped_at: int | None = None  # where iter_top_members stopped at `stop`
        self.quick_errors = False  # a worker's errors are redone serially: skip counting lines
        self.eof = False
        self.progress = progress
        self.label = label

    def close(self) -> None:
        self.f.close()

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        self.read_bytes += len(data)
        if not data:
            self.eof = True
        text = data.decode("latin-1")
        self.base += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        if self.progress is not None:
            self.progress(self.label, self.read_bytes, self.size)
        return True

    def ensure(self, n: int) -> None:
        """Read on until `n` characters lie ahead of pos (or the file ends).

        Decoding a value that is cut by the end of the buffer fails after parsing all of it
        (and json then counts the lines of the whole buffer for its message), so values are
        decoded only with a comfortable margin ahead.
        """
        while len(self.buf) - self.pos < n and self.more():
            pass

    def skip_ws(self) -> str:
        """The next non-whitespace character ("" at the end of the file), not consumed."""
        while True:
            self.pos = ws_end(self.buf, self.pos)
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def line_col(self, pos: int) -> tuple[int, int]:
        """Line and column of buf[pos], counting the lines before buf only now (errors are rare)."""
        if self.quick_errors:
            return 0, 0
        before = 0
        if self.base:
            with open(self.path, "rb") as f:
                left = self.base
                while left > 0:
                    chunk = f.read(min(left, self.chunk))
                    if not chunk:
                        break
                    before += chunk.count(b"\n")
                    left -= len(chunk)
        line = before + self.buf.count("\n", 0, pos) + 1
        start = self.buf.rfind("\n", 0, pos)
        col = pos - start if start >= 0 else self.base + pos + 1 if not before else pos + 1
        return line, col


class _Members:
    """The state of one pass over a top-level object (see iter_top_members)."""

    def __init__(self, stream: Stream, shown: str, rel: str, problems: Problems) -> None:
        self.stream = stream
        self.shown = shown
        self.rel = rel
        self.problems = problems
        self.decoder = json.JSONDecoder()
        self.last_key: str | None = None

    def after(self) -> str:
        return f"after video {self.last_key!r}" if self.last_key else "before the first video"

    def decode(self) -> tuple[Any, bool]:
        s = self.stream
        s.ensure(s.chunk // 4)
        while True:
            try:
                value, end = self.decoder.raw_decode(s.buf, s.pos)
            except json.JSONDecodeError as exc:
                # Cut by the end of the buffer (a value bigger than the margin): read on. A
                # real error further back is reported at once, without reading the rest.
                if exc.pos > len(s.buf) - (1 << 20) and s.more():
                    continue
                line, col = s.line_col(exc.pos)
                msg = json_error_message(self.shown, exc.msg, line, col, exc.pos, len(s.buf), self.after())
                self.problems.error("bad_json", self.rel, msg)
                return None, False
            except RecursionError:
                self.problems.error("too_deep", self.rel, too_deep_message(self.shown, s.buf, s.pos, self.after()))
                return None, False
            except ValueError as exc:  # an integer with more digits than Python converts
                self.problems.error(
                    "bad_json", self.rel, f"{self.shown}: unreadable number {self.after()} ({str(exc)[:60]})"
                )
                return None, False
            # A value ending exactly at the end of the buffer may be cut (a number): read on.
            if end == len(s.buf) and s.more():
                continue
            s.pos = end
            return value, True

    def fail(self, expected: str) -> None:
        s = self.stream
        line, col = s.line_col(s.pos)
        if s.pos >= len(s.buf):
            what = f"ends early at line {line} column {col}, {self.after()} (truncated JSON)"
        else:
            what = f"not valid JSON at line {line} column {col}, {self.after()} (expected {expected})"
        self.problems.error("bad_json", self.rel, f"{self.shown}: {what}; download or copy the file again")

    def open_object(self) -> bool:
        """Step over the top-level "{" (a file start) or nothing (a worker's chunk, at a key)."""
        s = self.stream
        if s.base != 0:
            return True
        c = s.skip_ws()
        if s.buf.startswith(codecs.BOM_UTF8.decode("latin-1"), s.pos):
            warn_bom(self.problems, self.rel)
            s.pos += len(codecs.BOM_UTF8)
            c = s.skip_ws()
        found = sniff_encoding(s.buf[:4].encode("latin-1")) if s.pos < 4 else None
        if c != "{" and found is not None:
            encoding_error(self.problems, self.rel, self.shown, found)
            return False
        if c != "{":
            kind = {"[": "a list", '"': "a string", "": "nothing but whitespace", "n": "null"}.get(c, "not an object")
            self.problems.error(
                "wrong_top_type",
                self.rel,
                f"{self.shown}: top level is {kind}, expected an object {{video_uid: {{narration_pass_1: ...}}}}; "
                "this is not Ego4D's narration.json",
            )
            return False
        s.pos += 1
        return True

    def member(self) -> tuple[str, Any, bool, bool] | None:
        """The member at pos (a key in quotes), or None after an error."""
        s = self.stream
        start = s.base + s.pos
        key, ok = self.decode()
        if not ok:
            return None
        raw = s.buf[start - s.base : s.pos]
        if s.skip_ws() != ":":
            self.fail("':'")
            return None
        s.pos += 1
        s.skip_ws()
        start = s.base + s.pos
        value, ok = self.decode()
        if not ok:
            return None
        try:
            if not raw.isascii():
                key = json.loads(raw.encode("latin-1").decode("utf-8"))
            raw = s.buf[start - s.base : s.pos]
            latin = not raw.isascii()
            if latin and "\\u" in raw:  # real non-ASCII text and escapes: decode it properly
                value = json.loads(raw.encode("latin-1").decode("utf-8"))
                latin = False
        except UnicodeDecodeError as exc:
            line, col = s.line_col(start - s.base + exc.start)
            self.problems.error(
                "not_utf8",
                self.rel,
                f"{self.shown}: not UTF-8 text at line {line} column {col} (video {key!r}); "
                "the file is damaged, download it again",
            )
            return None
        self.last_key = key
        # JSON true/false where numbers belong convert silently to 1.0/0.0: say where to look.
        literal = "true" in raw or "false" in raw
        return key, value, latin, literal


def iter_top_members(
    stream: Stream, shown: str, rel: str, problems: Problems, stop: int | None = None
) -> Iterator[tuple[str, Any, bool, bool]]:
    """(key, value, latin, literal) for each member of the top-level object, decoded one at a time.

    `latin`: the value's strings are UTF-8 bytes spelled in Latin-1 (see Stream); `s.encode
    ("latin-1")` gives their true UTF-8. Otherwise they are the real text. `literal`: the
    value's text holds `true` or `false` somewhere (a hint: only then are types checked).

    A stream opened at `start` > 0 (a parallel worker's chunk) begins at a member's key, not at
    "{"; with `stop`, the iteration ends before the first member whose key starts at or after
    `stop`, and `stream.stopped_at` is that key's position.

    Errors stop the iteration after being reported (a broken JSON text cannot be resynced).
    """
    m = _Members(stream, shown, rel, problems)
    if not m.open_object():
        return
    c = stream.skip_ws()
    if c == "}":
        stream.pos += 1
    else:
        while True:
            if c != '"':
                return m.fail("a video uid in quotes")
            start = stream.base + stream.pos
            if stop is not None and start >= stop:
                stream.stopped_at = start
                return
            got = m.member()
            if got is None:
                return
            yield got
            c = stream.skip_ws()
            if c == ",":
                stream.pos += 1
                c = stream.skip_ws()
                continue
            if c == "}":
                stream.pos += 1
                break
            return m.fail("',' or '}'")
    if stream.skip_ws() != "":
        line, col = stream.line_col(stream.pos)
        problems.error(
            "bad_json",
            rel,
            f"{shown}: extra data after the top-level object at line {line} column {col}; "
            "the file is damaged, download it again",
        )
