"""Read and validate an Ego4D tree and build its `Index` (see engine/index.py).

Layout (DESIGN.md):

    ROOT/ego4d.json                                 clips[] with video_start_sec / video_end_sec
    ROOT/v1/annotations/narration.json              {video_uid: {narration_pass_1: {narrations: [...]}, ...}}
    ROOT/v1/annotations/nlq_train.json, nlq_val.json, nlq_test_unannotated.json
    ROOT/v1/<feature_dir>/<video_uid>.pt

What real files contain (a null `template`, a query without `query`, zero-length answers,
curly apostrophes, `#unsure` / `#O` narrations, unsorted or duplicate timestamps, videos with
narrations but no clips or with only `narration_pass_2`, unknown extra fields) is accepted and
counted as a warning. Anything else is a `DataError` whose one line names the file, the JSON
path or video, and what to do.

`narration.json` of the full dataset is ~650 MB (~4M narrations). `json.load` of it builds
GBs of Python objects and spends most of its time in the cyclic garbage collector, so it is
decoded one video at a time (`raw_decode` over the top-level object's members, the bytes read
as Latin-1, see `_Stream`) with the garbage collector paused, and each video is turned into
compact arrays at once while its objects are still in the CPU cache; nothing but arrays
outlives its video. Text goes straight into files (the cache's, when there is one) that the
index memory-maps. At Ego4D scale: ~7 s CPU and ~420 MB peak for a cold open, ~0.1 s warm.

A big file (>= PARALLEL_MIN_BYTES) is decoded by one forked worker per CPU, each taking a
contiguous run of videos and returning flat arrays plus its own text files, joined in file
order; the result and any error line are exactly the serial reader's (see _read_parallel).
This buys wall time only where cores are free (the CPU time is ~10-15% more), so the number
of workers follows the CPUs idle at the moment (`_workers`); on a busy machine the serial reader runs.

Public: `load_index`, `check` (-> `CheckReport`), `load_nlq` (-> `NLQSplit`), and the layout
constants. `load_index` raises the first problem; `check` collects them all.
"""

from __future__ import annotations

import array
import gc
import json
import math
import operator
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError
from engine.index import (
    FLAG_CAMERA_WEARER,
    FLAG_OTHER,
    FLAG_UNSURE,
    Index,
    Issue,
    NarrationArrays,
    TextColumn,
    flags_of,
)

EGO4D_JSON = "ego4d.json"
ANNOTATIONS = "v1/annotations"
NARRATION_JSON = f"{ANNOTATIONS}/narration.json"
NLQ_FILES = {
    "train": f"{ANNOTATIONS}/nlq_train.json",
    "val": f"{ANNOTATIONS}/nlq_val.json",
    "test": f"{ANNOTATIONS}/nlq_test_unannotated.json",
}
DEFAULT_FEATURES = "egovlp_fp16"

Progress = Callable[[str, int, int], None]

# The official schema's fields (docs: "Narrations - narrations.json"); real files carry all five.
_NARRATION_KEYS = {"timestamp_sec", "timestamp_frame", "_unmapped_timestamp_sec", "narration_text", "annotation_uid"}
_PASS_KEYS = {"narrations", "summaries"}
_VIDEO_KEYS = {"status", "narration_pass_1", "narration_pass_2"}
_NLQ_QUERY_KEYS = {
    "clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec",
    "video_start_frame", "video_end_frame", "template", "query",
    "slot_x", "verb_x", "slot_y", "verb_y", "raw_tags",
}  # fmt: skip
_NLQ_ANNOTATION_KEYS = {"language_queries", "annotation_uid"}
_NLQ_CLIP_KEYS = {
    "clip_uid", "video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame",
    "clip_start_sec", "clip_end_sec", "clip_start_frame", "clip_end_frame",
    "source_clip_uid", "annotations",
}  # fmt: skip
_NLQ_VIDEO_KEYS = {"video_uid", "clips", "split"}
_NLQ_TOP_KEYS = {"version", "date", "description", "manifest", "videos"}
_CURLY = ("\u2018", "\u2019", "\u201c", "\u201d")


# --------------------------------------------------------------------------- problems


class Problems:
    """Collects warnings (aggregated per code and file) and errors.

    strict: the first error raises DataError (load_index); otherwise errors are collected
    (check), up to `max_errors` per file so a broken 4M-row file does not flood the report.
    """

    def __init__(self, root: Path, strict: bool, max_errors: int = 20) -> None:
        self.root = root
        self.strict = strict
        self.max_errors = max_errors
        self.errors: list[Issue] = []
        self._errors_per_file: dict[str, int] = {}
        self._warn: dict[tuple[str, str], list] = {}

    def error(self, code: str, file: str, message: str) -> None:
        if self.strict:
            raise DataError(message, path=file)
        n = self._errors_per_file.get(file, 0) + 1
        self._errors_per_file[file] = n
        if n <= self.max_errors:
            self.errors.append(Issue("error", code, file, " ".join(message.split())))

    def warn(self, code: str, file: str, what: str, where: str = "", count: int = 1) -> None:
        """Count `count` occurrences of quirk `code`; the message keeps the first `where`."""
        if count <= 0:
            return
        slot = self._warn.get((code, file))
        if slot is None:
            self._warn[(code, file)] = [count, what, where]
        else:
            slot[0] += count

    def errors_in(self, file: str) -> int:
        return self._errors_per_file.get(file, 0)

    def issues(self) -> list[Issue]:
        out = list(self.errors)
        for file, n in self._errors_per_file.items():
            if n > self.max_errors:
                out.append(
                    Issue(
                        "error",
                        "more_errors",
                        file,
                        f"{file}: {n - self.max_errors} more errors not shown",
                        n - self.max_errors,
                    )
                )
        for (code, file), (count, what, where) in self._warn.items():
            msg = f"{file}: {what}: {count}" + (f" (first: {where})" if where else "")
            out.append(Issue("warning", code, file, msg, count))
        return out


def _disp(root: Path, rel: str) -> str:
    return str(root / rel)


# --------------------------------------------------------------------------- files


def _check_file(root: Path, rel: str, problems: Problems, what: str) -> Path | None:
    """The path of a required file, or None after reporting why it cannot be read."""
    p = root / rel
    shown = _disp(root, rel)
    if not p.exists():
        if not root.is_dir():
            problems.error(
                "root_missing",
                rel,
                f"{root}: data root not found or not a folder; pass the folder that holds ego4d.json and v1/",
            )
        else:
            problems.error("missing_file", rel, f"{shown}: not found; {what} must be at ROOT/{rel} (Ego4D layout)")
        return None
    if p.is_dir():
        problems.error(
            "folder_not_file", rel, f"{shown}: is a folder, expected the {what} file; put the JSON file at this path"
        )
        return None
    try:
        size = p.stat().st_size
    except OSError as exc:
        problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
        return None
    if size == 0:
        problems.error("empty_file", rel, f"{shown}: is empty (0 bytes); download or copy {what} again")
        return None
    return p


def _json_type(obj: Any) -> str:
    if isinstance(obj, dict):
        return "an object"
    if isinstance(obj, list):
        return "a list"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, bool):
        return "a boolean"
    if obj is None:
        return "null"
    return "a number"


def _read_json(root: Path, rel: str, problems: Problems, what: str) -> Any:
    """Parse a whole (small) JSON file; None after reporting why it cannot be used."""
    p = _check_file(root, rel, problems, what)
    if p is None:
        return None
    shown = _disp(root, rel)
    try:
        data = p.read_bytes()
    except OSError as exc:
        problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.error(
            "not_utf8",
            rel,
            f"{shown}: not UTF-8 text (bad byte at {exc.start}); it is not a JSON file or is damaged, download it again",
        )
        return None
    del data
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a big metadata file is millions of containers that the GC would rescan
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.error("bad_json", rel, _json_error_message(shown, exc.msg, exc.lineno, exc.colno, exc.pos, len(text)))
        return None
    finally:
        if gc_was_enabled:
            gc.enable()


def _json_error_message(shown: str, msg: str, line: int, col: int, pos: int, length: int, context: str = "") -> str:
    where = f"line {line} column {col}" + (f", {context}" if context else "")
    if pos >= length - 1 or msg.startswith("Unterminated") or msg == "Expecting value" and pos >= length - 2:
        return f"{shown}: ends early at {where} (truncated JSON: {msg}); download or copy the file again"
    return f"{shown}: not valid JSON at {where} ({msg}); download or copy the file again"


# --------------------------------------------------------------------------- narration.json streaming

_WS = re.compile(r"[ \t\n\r]*")
_CHUNK = 1 << 24


class _Stream:
    """A file's bytes as Latin-1 text (one character per byte), read in chunks.

    Why not UTF-8: decoding to `str` is a third of the cost of streaming a big file once it
    holds a single curly apostrophe (CPython's decoder leaves its ASCII fast path and builds
    2-byte strings), while Latin-1 is a plain copy. JSON's structure is ASCII and UTF-8
    multi-byte sequences contain no ASCII byte, so the parse is the same; strings with
    non-ASCII characters come out as their UTF-8 bytes spelled in Latin-1, and `_raw_mode`
    says per value how to get the real text back. Positions are byte offsets.
    """

    def __init__(self, path: Path, progress: Progress | None, label: str, start: int = 0) -> None:
        self.path = path
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size
        if start:
            self.f.seek(start)
        self.buf = ""
        self.pos = 0
        self.base = start  # characters dropped before buf (or not read: a parallel worker's chunk)
        self.read_bytes = 0
        self.stopped_at: int | None = None  # where _iter_top_members stopped at `stop`
        self.quick_errors = False  # a worker's errors are redone serially: skip counting lines
        self.eof = False
        self.progress = progress
        self.label = label

    def close(self) -> None:
        self.f.close()

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(_CHUNK)
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
            self.pos = _WS.match(self.buf, self.pos).end()
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
                    chunk = f.read(min(left, _CHUNK))
                    if not chunk:
                        break
                    before += chunk.count(b"\n")
                    left -= len(chunk)
        line = before + self.buf.count("\n", 0, pos) + 1
        start = self.buf.rfind("\n", 0, pos)
        col = pos - start if start >= 0 else self.base + pos + 1 if not before else pos + 1
        return line, col


def _iter_top_members(
    stream: _Stream, shown: str, rel: str, problems: Problems, stop: int | None = None
) -> Iterator[tuple[str, Any, bool]]:
    """(key, value, latin) for each member of the file's top-level object, decoded one at a time.

    `latin`: the value's strings are UTF-8 bytes spelled in Latin-1 (see _Stream); `s.encode
    ("latin-1")` gives their true UTF-8. Otherwise they are the real text.

    A stream opened at `start` > 0 (a parallel worker's chunk) begins at a member's key, not at
    "{"; with `stop`, the iteration ends before the first member whose key starts at or after
    `stop`, and `stream.stopped_at` is that key's position.

    Errors stop the iteration after being reported (a broken JSON text cannot be resynced).
    """
    decoder = json.JSONDecoder()
    if stream.base == 0:
        c = stream.skip_ws()
        if c != "{":
            kind = {"[": "a list", '"': "a string", "": "nothing but whitespace", "n": "null"}.get(c, "not an object")
            problems.error(
                "wrong_top_type",
                rel,
                f"{shown}: top level is {kind}, expected an object {{video_uid: {{narration_pass_1: ...}}}}; this is not Ego4D's narration.json",
            )
            return
        stream.pos += 1
    # else: a worker's chunk, which starts inside the top-level object, at a key
    last_key = None

    def decode_at() -> tuple[Any, bool]:
        stream.ensure(_CHUNK // 4)
        while True:
            try:
                value, end = decoder.raw_decode(stream.buf, stream.pos)
            except json.JSONDecodeError as exc:
                # Cut by the end of the buffer (a value bigger than the margin): read on. A
                # real error further back is reported at once, without reading the rest.
                if exc.pos > len(stream.buf) - (1 << 20) and stream.more():
                    continue
                line, col = stream.line_col(exc.pos)
                after = f"after video {last_key!r}" if last_key else "before the first video"
                problems.error(
                    "bad_json",
                    rel,
                    _json_error_message(shown, exc.msg, line, col, exc.pos, len(stream.buf), after),
                )
                return None, False
            # A value ending exactly at the end of the buffer may be cut (a number): read on.
            if end == len(stream.buf) and stream.more():
                continue
            stream.pos = end
            return value, True

    def fail(expected: str) -> None:
        line, col = stream.line_col(stream.pos)
        after = f"after video {last_key!r}" if last_key else "before the first video"
        if stream.pos >= len(stream.buf):
            problems.error(
                "bad_json",
                rel,
                f"{shown}: ends early at line {line} column {col}, {after} (truncated JSON); download or copy the file again",
            )
        else:
            problems.error(
                "bad_json",
                rel,
                f"{shown}: not valid JSON at line {line} column {col}, {after} (expected {expected}); download or copy the file again",
            )

    c = stream.skip_ws()
    if c == "}":
        stream.pos += 1
    else:
        while True:
            if c != '"':
                return fail("a video uid in quotes")
            start = stream.base + stream.pos
            if stop is not None and start >= stop:
                stream.stopped_at = start
                return
            key, ok = decode_at()
            if not ok:
                return
            raw = stream.buf[start - stream.base : stream.pos]
            if stream.skip_ws() != ":":
                return fail("':'")
            stream.pos += 1
            stream.skip_ws()
            start = stream.base + stream.pos
            value, ok = decode_at()
            if not ok:
                return
            try:
                if not raw.isascii():
                    key = json.loads(raw.encode("latin-1").decode("utf-8"))
                raw = stream.buf[start - stream.base : stream.pos]
                latin = not raw.isascii()
                if latin and "\\u" in raw:  # real non-ASCII text and escapes: decode it properly
                    value = json.loads(raw.encode("latin-1").decode("utf-8"))
                    latin = False
            except UnicodeDecodeError as exc:
                line, col = stream.line_col(start - stream.base + exc.start)
                problems.error(
                    "not_utf8",
                    rel,
                    f"{shown}: not UTF-8 text at line {line} column {col} (video {key!r}); the file is damaged, download it again",
                )
                return
            last_key = key
            yield key, value, latin
            c = stream.skip_ws()
            if c == ",":
                stream.pos += 1
                c = stream.skip_ws()
                continue
            if c == "}":
                stream.pos += 1
                break
            return fail("',' or '}'")
    if stream.skip_ws() != "":
        line, col = stream.line_col(stream.pos)
        problems.error(
            "bad_json",
            rel,
            f"{shown}: extra data after the top-level object at line {line} column {col}; the file is damaged, download it again",
        )


# --------------------------------------------------------------------------- per-video narrations


def _encode(strings: list[str], joined: str | None = None, latin: bool = False) -> tuple[bytes, np.ndarray]:
    """Strings as one UTF-8 blob and the byte length of each (`joined`: "".join(strings)).

    latin: the strings are UTF-8 bytes spelled in Latin-1 (see _Stream), so the blob is their
    Latin-1 encoding, checked to be valid UTF-8 (UnicodeDecodeError otherwise).
    """
    if joined is None:
        joined = "".join(strings)
    n = len(strings)
    chars = np.fromiter(map(len, strings), dtype=np.int32, count=n)
    if latin:
        blob = joined.encode("latin-1")
        if not blob.isascii():
            blob.decode("utf-8")
        return blob, chars
    blob = joined.encode("utf-8")
    if len(blob) == len(joined):  # all ASCII: byte lengths are character lengths
        return blob, chars
    # UTF-8 width of every code point, summed per string.
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    width = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    ends = np.cumsum(width)
    char_ends = np.cumsum(chars, dtype=np.int64)
    byte_ends = np.where(char_ends > 0, ends[np.maximum(char_ends - 1, 0)], 0)
    return blob, np.diff(byte_ends, prepend=0).astype(np.int32)


def _describe_bad_number(v: Any) -> str:
    if isinstance(v, str):
        return f"a string ({v[:20]!r})"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, float):
        return "infinite"
    return _json_type(v)


def _good_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


_get_time = operator.itemgetter("timestamp_sec")
_get_text = operator.itemgetter("narration_text")
_get_uid = operator.itemgetter("annotation_uid")


class _BlobFile:
    """A text column's UTF-8 blob, appended video by video to a file instead of kept in RAM.

    The finished file is memory-mapped, so the index holds ~250 MB of Ego4D text without it
    counting as process memory until read, and without the 2x copy of joining pieces.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "wb", buffering=1 << 20)
        self.size = 0

    def write(self, blob: bytes) -> int:
        start = self.size
        self.f.write(blob)
        self.size += len(blob)
        return start

    def finish(self):
        from engine.cache import map_bytes

        self.f.close()
        return map_bytes(self.path)


def _video_pass(
    uid: str, p: int, narrs: list, problems: Problems, rel: str, shown: str, latin: bool = False
) -> tuple[np.ndarray, bytes, np.ndarray, bytes, np.ndarray] | None:
    """One pass of one video, validated and stably sorted by time: (time, text blob, text
    byte lengths, uid blob, uid byte lengths); None after an error.

    The common case is a handful of C-level passes over the list; type problems surface as
    exceptions and only then is the list walked in Python to say where.
    """
    where = f"video {uid!r} narration_pass_{p}.narrations"
    n = len(narrs)

    def fail(code: str, i: int, what: str) -> None:
        problems.error(code, rel, f"{shown}: {where}[{i}]{what}; fix or re-download the file")

    try:
        ts = list(map(_get_time, narrs))
    except (KeyError, TypeError):
        for i, x in enumerate(narrs):
            if type(x) is not dict:
                return fail("bad_narration", i, f" is {_json_type(x)}, expected an object")
            if "timestamp_sec" not in x:
                return fail("missing_timestamp", i, " has no timestamp_sec; every narration needs one")
        raise
    try:
        t = np.frombuffer(array.array("d", ts), dtype=np.float64) if n else np.zeros(0)
        bad = None if np.isfinite(t).all() else int(np.flatnonzero(~np.isfinite(t))[0])
    except TypeError:  # a string or null: array("d") takes numbers only
        bad = next(i for i, v in enumerate(ts) if not isinstance(v, (int, float)))
    if bad is not None:
        return fail(
            "bad_timestamp", bad, f".timestamp_sec is {_describe_bad_number(ts[bad])}, expected a number of seconds"
        )
    try:
        texts = list(map(_get_text, narrs))
    except KeyError:
        texts = [x.get("narration_text") for x in narrs]
    try:
        texts_joined = "".join(texts)
    except TypeError:
        for i, v in enumerate(texts):
            if v is not None and type(v) is not str:
                return fail("bad_text", i, f".narration_text is {_json_type(v)}, expected a string")
        missing = [i for i, v in enumerate(texts) if v is None]
        problems.warn(
            "narration_without_text",
            rel,
            "narrations without narration_text (kept as empty text)",
            f"{where}[{missing[0]}]",
            len(missing),
        )
        texts = ["" if v is None else v for v in texts]
        texts_joined = "".join(texts)
    try:
        uids = list(map(_get_uid, narrs))
        uids_joined = "".join(uids)
    except (KeyError, TypeError):
        uids = [x.get("annotation_uid") for x in narrs]
        uids = ["" if v is None else str(v) for v in uids]
        uids_joined = "".join(uids)
    # Unknown fields: a narration with more keys than the first one (files without the optional
    # `_unmapped_timestamp_sec` have 4 known keys, not 5), or a first narration with another key.
    # (One that swaps a known key for an unknown one in the middle of a list goes uncounted: a
    # warning is not worth a full pass over 4M dicts.)
    if n and (max(map(len, narrs)) > len(narrs[0]) or not narrs[0].keys() <= _NARRATION_KEYS):
        extra = set(chain.from_iterable(narrs)).difference(_NARRATION_KEYS)
        if extra:
            problems.warn(
                "unknown_field", rel, "unknown extra fields (ignored)", f"{where}[]: {', '.join(sorted(extra)[:3])}"
            )
    if n > 1:
        d = t[1:] - t[:-1]
        if (d < 0).any():
            problems.warn(
                "unsorted_timestamps", rel, "videos whose narrations are not in time order (sorted, stable)", where
            )
            order = np.argsort(t, kind="stable")
            t = t[order]
            ol = order.tolist()
            texts = [texts[i] for i in ol]
            uids = [uids[i] for i in ol]
            texts_joined = "".join(texts)
            uids_joined = "".join(uids)
            d = t[1:] - t[:-1]
        dups = int(np.count_nonzero(d == 0))
        if dups:
            problems.warn(
                "duplicate_timestamps", rel, "narrations at the same timestamp as the previous one", where, dups
            )
    try:
        tb, tl = _encode(texts, texts_joined, latin)
        ub, ul = _encode(uids, uids_joined, latin)
    except UnicodeDecodeError:
        problems.error(
            "not_utf8", rel, f"{shown}: {where} hold text that is not UTF-8; the file is damaged, download it again"
        )
        return None
    return t, tb, tl, ub, ul


_UNSURE = re.compile(rb"#[uU][nN][sS][uU][rR][eE]")


def text_flags(blob: bytes, offsets: np.ndarray) -> np.ndarray:
    """FLAG_* bits of every string of a TextColumn, vectorised; equal to `flags_of` per string."""
    n = len(offsets) - 1
    flags = np.zeros(max(n, 0), dtype=np.uint8)
    if n <= 0 or not len(blob):
        return flags
    buf = np.frombuffer(blob, dtype=np.uint8)
    last = len(buf) - 1
    starts = offsets[:-1]
    lens = offsets[1:] - starts

    def byte(k: int) -> np.ndarray:
        return np.where(lens > k, buf[np.minimum(starts + k, last)], 0)

    b0, b1, b2 = byte(0), byte(1), byte(2)
    hash0 = b0 == ord("#")
    space2 = b2 == ord(" ")
    flags[hash0 & ((b1 == ord("O")) | ((b1 == ord("o")) & space2))] |= FLAG_OTHER
    flags[hash0 & ((b1 == ord("C")) | ((b1 == ord("c")) & space2))] |= FLAG_CAMERA_WEARER
    hits = np.array([m.start() for m in _UNSURE.finditer(blob)], dtype=np.int64)
    if len(hits):
        rows = np.searchsorted(offsets, hits, side="right") - 1
        inside = hits + len("#unsure") <= offsets[rows + 1]  # not across two strings
        flags[rows[inside]] |= FLAG_UNSURE
    # Leading whitespace (or a non-ASCII first byte, which may be Unicode whitespace): exact rule.
    slow = np.flatnonzero((lens > 0) & ((b0 <= 32) | (b0 >= 128)))
    for i in slow.tolist():
        flags[i] = flags_of(blob[offsets[i] : offsets[i + 1]].decode("utf-8"))
    # "#unsure" is matched case-insensitively on bytes: str.lower() maps no non-ASCII
    # character onto these ASCII letters, so this agrees with flags_of.
    return flags


def _videos(
    stream: _Stream, shown: str, rel: str, problems: Problems, files: dict, stop: int | None = None
) -> Iterator[tuple[str, dict]]:
    """(uid, {pass: (time, text start, text lens, uid start, uid lens)}) per video, in file
    order; text goes to `files` (_BlobFile per (pass, column)) as it is decoded."""
    for uid, entry, latin in _iter_top_members(stream, shown, rel, problems, stop):
        if type(entry) is not dict:
            problems.error(
                "bad_video",
                rel,
                f"{shown}: video {uid!r} is {_json_type(entry)}, expected an object with narration_pass_1/2; fix or re-download the file",
            )
            continue
        extra = entry.keys() - _VIDEO_KEYS
        if extra:
            problems.warn(
                "unknown_field", rel, "unknown extra fields (ignored)", f"video {uid!r}: {', '.join(sorted(extra)[:3])}"
            )
        got: dict[int, tuple] = {}
        for pn in (1, 2):
            block = entry.get(f"narration_pass_{pn}")
            if block is None:
                continue
            if type(block) is not dict:
                problems.error(
                    "bad_pass",
                    rel,
                    f"{shown}: video {uid!r} narration_pass_{pn} is {_json_type(block)}, expected an object with 'narrations'; fix or re-download the file",
                )
                continue
            extra = block.keys() - _PASS_KEYS
            if extra:
                problems.warn(
                    "unknown_field",
                    rel,
                    "unknown extra fields (ignored)",
                    f"video {uid!r} narration_pass_{pn}: {', '.join(sorted(extra)[:3])}",
                )
            narrs = block.get("narrations")
            if narrs is None:
                narrs = []
            if type(narrs) is not list:
                problems.error(
                    "bad_pass",
                    rel,
                    f"{shown}: video {uid!r} narration_pass_{pn}.narrations is {_json_type(narrs)}, expected a list; fix or re-download the file",
                )
                continue
            res = _video_pass(uid, pn, narrs, problems, rel, shown, latin)
            if res is None or problems.errors_in(rel):
                continue  # after an error only validation goes on (check collects more)
            t, tb, tl, ub, ul = res
            got[pn] = (t, files[pn, "text"].write(tb), tl, files[pn, "uid"].write(ub), ul)
        del entry
        yield uid, got


def _read_narrations(
    root: Path, problems: Problems, progress: Progress | None, workdir: Path
) -> tuple[list[str], dict[int, NarrationArrays]] | None:
    """Stream narration.json into per-pass arrays, text blobs in files under `workdir`.

    A big file is decoded in parallel (`_read_parallel`) when it can be; what comes out is the
    same either way. Returns (video_uids in file order, {1: pass 1, 2: pass 2}) or None after
    an error.
    """
    rel = NARRATION_JSON
    shown = _disp(root, rel)
    p = _check_file(root, rel, problems, "narration.json")
    if p is None:
        return None
    files = {(pn, col): _BlobFile(workdir / f"p{pn}.{col}.bin") for pn in (1, 2) for col in ("text", "uid")}
    pieces = None
    try:
        pieces = _read_parallel(p, root, problems, progress, workdir, files)
    except Exception:  # no processes (limits, a sandbox): the serial reader does the same work
        pieces = None
    finally:
        if pieces is None:  # not parallel, or a problem that the serial reader will name
            for f in files.values():
                f.f.seek(0)
                f.f.truncate()
                f.size = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived dicts: the cyclic GC would only burn time here
    try:
        if pieces is None:
            try:
                stream = _Stream(p, progress, "narration.json")
            except OSError as exc:
                problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
                return None
            try:
                pieces = list(_videos(stream, shown, rel, problems, files))
            except UnicodeDecodeError as exc:
                problems.error(
                    "not_utf8",
                    rel,
                    f"{shown}: not UTF-8 text near byte {stream.read_bytes} ({exc.reason}); the file is damaged, download it again",
                )
            finally:
                stream.close()
    finally:
        blobs = {k: f.finish() for k, f in files.items()}
        if gc_was_enabled:
            gc.enable()
    if problems.errors_in(rel):
        return None
    # Per video and pass: (time, text start, text lens, uid start, uid lens). A uid seen twice
    # keeps its first position and its last value, as json.load would.
    per_video: dict[str, dict[int, tuple]] = {}
    only_pass2 = 0
    first_only_pass2 = ""
    duplicates = 0
    for uid, got in pieces:
        if 2 in got and 1 not in got and len(got[2][0]):
            only_pass2 += 1
            first_only_pass2 = first_only_pass2 or uid
        if uid in per_video:
            duplicates += 1
        per_video[uid] = got
    del pieces
    if only_pass2:
        problems.warn(
            "only_pass_2",
            rel,
            "videos with narration_pass_2 only (no pass 1: no groups)",
            f"video {first_only_pass2!r}",
            only_pass2,
        )
    if duplicates:
        problems.warn("duplicate_video", rel, "video uids that appear twice (the last one is kept)", "", duplicates)
    video_uids = list(per_video)
    passes = {}
    for pn in (1, 2):
        if progress is not None:
            progress("narration arrays", pn, 2)
        passes[pn] = _assemble(pn, video_uids, per_video, blobs, workdir, duplicates > 0)
    return video_uids, passes


# --------------------------------------------------------------------------- parallel decoding

# Below this size narration.json is read serially: starting workers costs more than it saves.
PARALLEL_MIN_BYTES = 32 << 20
# Each worker's share is at least this many bytes (a smaller file gets fewer workers).
PARALLEL_MIN_CHUNK = 16 << 20
# A candidate boundary between two videos: `}, "<uid>": {` (checked by the workers, see below).
_BOUNDARY = re.compile(rb'\}\s*,\s*("(?:[^"\\]|\\.)*")\s*:\s*\{')
_NOT_VIDEO_KEYS = {b'"narration_pass_1"', b'"narration_pass_2"', b'"status"'}


def _workers() -> int:
    """Worker processes worth starting: one per CPU that is idle now, counting our own.

    Workers cost ~10-15% more CPU in all than the serial reader (fresh heaps, faults), so they
    only pay where cores are free: on a busy shared machine the serial reader is as fast in
    wall time and cheaper.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, int(_idle_cpus(n) + 0.5), 8))


def _idle_cpus(n: int, sample_s: float = 0.05) -> float:
    """CPUs idle right now, from two /proc/stat samples `sample_s` apart.

    Not the 1-minute load average: it lags, so right after a busy minute (the previous step
    of a script, a benchmark's baseline) it reports cores busy that are idle again.
    """

    def snap() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait

    try:
        idle0, total0 = snap()
        time.sleep(sample_s)
        idle1, total1 = snap()
        return (idle1 - idle0) / max(1, total1 - total0) * (os.cpu_count() or n)
    except (OSError, ValueError, IndexError):
        try:
            return n - os.getloadavg()[0] + 1  # + 1: this process is part of the load
        except OSError:
            return float(n)


def _fork_safe() -> bool:
    import threading

    return threading.active_count() == 1


def _chunk_starts(path: Path, size: int, n: int) -> list[int]:
    """Up to n - 1 byte positions, roughly size/n apart, each likely the key of a top-level member.

    Likely, not certain: the pattern can occur inside a narration's text or one level down.
    Workers check it (see _read_parallel), so a wrong guess costs time, never correctness.
    """
    starts = []
    with open(path, "rb") as f:
        for k in range(1, n):
            at = max(size * k // n, starts[-1] + 1 if starts else 0)
            f.seek(at)
            window = f.read(1 << 20)
            for m in _BOUNDARY.finditer(window):
                if m.group(1) not in _NOT_VIDEO_KEYS:
                    starts.append(at + m.start(1))
                    break
    return sorted(set(starts))


_progress_counter = None  # a worker's shared byte counter (set in the pool's initializer)


def _init_worker(counter) -> None:
    global _progress_counter
    _progress_counter = counter


def _decode_chunk(path: str, root: str, start: int, stop: int | None, workdir: str, k: int, read_chunk: int) -> dict:
    """A worker: the videos whose keys lie in [start, stop), decoded as the serial reader does.

    Text goes to `<workdir>/p<pass>.<col>.<k>.bin`; the result is a few flat arrays (pickled
    to the parent), not Python objects per narration. Any error makes the result
    {"error": ...}: the parent then redoes the file serially, which names the problem exactly.
    """
    global _CHUNK
    _CHUNK = read_chunk  # tests shrink it; a spawned worker would not inherit the change
    rel = NARRATION_JSON
    problems = Problems(Path(root), strict=True)
    counted = 0
    limit = (stop if stop is not None else os.path.getsize(path)) - start

    def progress(_label: str, done: int, _total: int) -> None:
        nonlocal counted
        done = min(done, limit)
        if _progress_counter is not None and done > counted:
            with _progress_counter.get_lock():
                _progress_counter.value += done - counted
            counted = done

    files = {(pn, col): _BlobFile(Path(workdir) / f"p{pn}.{col}.{k}.bin") for pn in (1, 2) for col in ("text", "uid")}
    gc.disable()
    try:
        stream = _Stream(Path(path), progress, "narration.json", start)
        stream.quick_errors = True
        try:
            pieces = list(_videos(stream, _disp(Path(root), rel), rel, problems, files, stop))
        finally:
            stream.close()
            for f in files.values():
                f.f.close()
    except Exception as exc:  # DataError, or anything a chunk that starts mid-string may raise
        return {"error": f"{type(exc).__name__}: {exc}"}
    progress("", limit, 0)
    out: dict = {
        "start": start,
        "stopped_at": stream.stopped_at,
        "uids": [u for u, _ in pieces],
        "warn": problems._warn,
        "sizes": {key: f.size for key, f in files.items()},
    }
    for pn in (1, 2):
        has = [pn in got for _, got in pieces]
        mine = [got[pn] for _, got in pieces if pn in got]
        out[pn] = {
            "has": np.array(has, dtype=bool),
            "n": np.array([len(x[0]) for x in mine], dtype=np.int64),
            "time": np.concatenate([x[0] for x in mine]) if mine else np.zeros(0),
            "text_start": np.array([x[1] for x in mine], dtype=np.int64),
            "text_len": np.concatenate([x[2] for x in mine]) if mine else np.zeros(0, dtype=np.int32),
            "uid_start": np.array([x[3] for x in mine], dtype=np.int64),
            "uid_len": np.concatenate([x[4] for x in mine]) if mine else np.zeros(0, dtype=np.int32),
        }
    return out


def _read_parallel(
    path: Path, root: Path, problems: Problems, progress: Progress | None, workdir: Path, files: dict
) -> list | None:
    """The (uid, pieces) of every video as _videos gives them, decoded by worker processes,
    with the text appended to `files`; None when the file is read serially instead.

    The file is cut at guessed member boundaries (_chunk_starts). Chunk 0 starts right after
    "{"; a worker decoding chunk i from a true boundary stops at the first key at or after
    chunk i+1's start, and reports where: when that is exactly the start of chunk i+1, that
    chunk began at a true boundary too. So all chunks are checked in file order, and one
    mismatch, error or failure anywhere means the whole file is read serially (which reports
    the file's first problem with its line and column, exactly as before).
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    try:
        size = path.stat().st_size
    except OSError:
        return None
    n = min(_workers(), size // max(PARALLEL_MIN_CHUNK, 1))
    # fork: workers start in milliseconds and inherit the loaded modules. Forking a process
    # that runs other threads (the TUI loads in a worker thread) is unsafe: read serially.
    if size < PARALLEL_MIN_BYTES or n < 2 or "fork" not in multiprocessing.get_all_start_methods() or not _fork_safe():
        return None
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    first = _WS.match(head.decode("latin-1")).end()
    if head[first : first + 1] != b"{":
        return None  # not an object: the serial reader says so
    cuts = [first + 1] + [c for c in _chunk_starts(path, size, n) if c > first + 1]
    if len(cuts) < 2:
        return None
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", cuts[0])  # the bytes before chunk 0 ("{") count as read
    results: list[dict | None] = [None] * len(cuts)
    with ProcessPoolExecutor(
        max_workers=len(cuts), mp_context=ctx, initializer=_init_worker, initargs=(counter,)
    ) as pool:
        futures = {
            pool.submit(
                _decode_chunk,
                str(path),
                str(root),
                cut,
                cuts[k + 1] if k + 1 < len(cuts) else None,
                str(workdir),
                k,
                _CHUNK,
            ): k
            for k, cut in enumerate(cuts)
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    results[futures[fut]] = fut.result()
                except Exception as exc:  # a worker that died (killed, out of memory)
                    results[futures[fut]] = {"error": repr(exc)}
            if progress is not None:
                progress("narration.json", min(counter.value, size), size)
    try:
        ok = all("error" not in r for r in results)
        ok = ok and all(r["stopped_at"] == cuts[k + 1] for k, r in enumerate(results[:-1]))
        ok = ok and results[-1]["stopped_at"] is None
        if not ok:
            return None
        pieces: list[tuple[str, dict]] = []
        for k, r in enumerate(results):
            base = {key: f.size for key, f in files.items()}
            for key, f in files.items():
                _append_file(f, workdir / f"p{key[0]}.{key[1]}.{k}.bin", r["sizes"][key])
            for code_file, (count, what, where) in r["warn"].items():
                problems.warn(code_file[0], code_file[1], what, where, count)
            per_pass = {}
            for pn in (1, 2):
                a = r[pn]
                ends = np.cumsum(a["n"])
                starts = ends - a["n"]
                per_pass[pn] = iter(
                    [
                        (a["time"][s:e], ts, a["text_len"][s:e], us, a["uid_len"][s:e])
                        for s, e, ts, us in zip(
                            starts.tolist(),
                            ends.tolist(),
                            (a["text_start"] + base[pn, "text"]).tolist(),
                            (a["uid_start"] + base[pn, "uid"]).tolist(),
                        )
                    ]
                )
            has1, has2 = r[1]["has"].tolist(), r[2]["has"].tolist()
            for uid, h1, h2 in zip(r["uids"], has1, has2):
                got = {}
                if h1:
                    got[1] = next(per_pass[1])
                if h2:
                    got[2] = next(per_pass[2])
                pieces.append((uid, got))
            results[k] = None
        return pieces
    finally:
        for k in range(len(cuts)):
            for pn in (1, 2):
                for col in ("text", "uid"):
                    try:
                        os.unlink(workdir / f"p{pn}.{col}.{k}.bin")
                    except OSError:
                        pass


def _append_file(dst: _BlobFile, src: Path, size: int) -> None:
    """Append a worker's blob file to `dst`, in the kernel where it can (no copy through Python)."""
    dst.f.flush()
    with open(src, "rb") as f:
        left = size
        out = dst.f.fileno()
        os.lseek(out, 0, os.SEEK_END)
        while left > 0:
            try:
                n = os.copy_file_range(f.fileno(), out, left)
            except (AttributeError, OSError):
                data = f.read(min(left, _CHUNK))
                os.write(out, data)
                n = len(data)
            if n <= 0:
                raise OSError(f"{src}: shorter than its worker said")
            left -= n
    dst.size += size


_CURLY_BYTES = re.compile("|".join(_CURLY).encode("utf-8"))


def _rows_matching(col: TextColumn, pattern: re.Pattern) -> np.ndarray:
    """Sorted distinct row numbers of the strings in `col` that contain a match (bytes regex)."""
    hits = [m.start() for m in pattern.finditer(col.blob)]
    if not hits:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.searchsorted(col.offsets, np.array(hits), side="right") - 1)


def _assemble(
    pn: int, video_uids: list[str], per_video: dict, blobs: dict, workdir: Path, reorder: bool
) -> NarrationArrays:
    """The CSR arrays of one pass from the per-video pieces (which are dropped as used)."""
    V = len(video_uids)
    counts = np.zeros(V, dtype=np.int64)
    times, starts = [], {"text": [], "uid": []}
    lens: dict[str, list] = {"text": [], "uid": []}
    for v, uid in enumerate(video_uids):
        got = per_video[uid].pop(pn, None)
        if got is None:
            continue
        t, ts, tl, us, ul = got
        counts[v] = len(t)
        times.append(t)
        starts["text"].append(ts)
        starts["uid"].append(us)
        lens["text"].append(tl)
        lens["uid"].append(ul)
    offsets = np.zeros(V + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    N = int(offsets[-1])
    time = np.concatenate(times) if times else np.zeros(0, dtype=np.float64)
    del times
    cols = {}
    for col in ("text", "uid"):
        off = np.zeros(N + 1, dtype=np.int64)
        if N:
            np.cumsum(np.concatenate(lens[col]), dtype=np.int64, out=off[1:])
        blob = blobs[pn, col]
        if reorder:  # a video uid seen twice: its stale pieces are in the file, gather the kept ones
            path = workdir / f"p{pn}.{col}.bin"
            data = b"".join(blob[s : s + int(l.sum())] for s, l in zip(starts[col], lens[col]))
            if hasattr(blob, "close"):
                blob.close()
            path.write_bytes(data)
            from engine.cache import map_bytes

            blob = map_bytes(path)
        cols[col] = TextColumn(blob, off)
        lens[col].clear()
    text = cols["text"]
    return NarrationArrays(
        video_offsets=offsets, time=time, flags=text_flags(text.blob, text.offsets), text=text, uid=cols["uid"]
    )


# --------------------------------------------------------------------------- ego4d.json


def _read_clips(root: Path, problems: Problems) -> tuple[list[dict], int] | None:
    """The validated clips of ego4d.json (clip_uid, video_uid, start, end) and its video count."""
    rel = EGO4D_JSON
    shown = _disp(root, rel)
    data = _read_json(root, rel, problems, "ego4d.json")
    if data is None:
        return None
    if type(data) is not dict:
        problems.error(
            "wrong_top_type",
            rel,
            f"{shown}: top level is {_json_type(data)}, expected an object with 'videos' and 'clips'; this is not Ego4D's ego4d.json",
        )
        return None
    clips = data.get("clips")
    if type(clips) is not list:
        what = "missing" if clips is None else _json_type(clips)
        problems.error(
            "no_clips",
            rel,
            f"{shown}: 'clips' is {what}, expected a list of clips; use the full ego4d.json metadata file",
        )
        return None
    videos = data.get("videos")
    n_videos = len(videos) if type(videos) is list else 0
    out = []
    for i, c in enumerate(clips):
        where = f"clips[{i}]"
        if type(c) is not dict:
            problems.error(
                "bad_clip", rel, f"{shown}: {where} is {_json_type(c)}, expected an object; fix or re-download the file"
            )
            continue
        vu, cu = c.get("video_uid"), c.get("clip_uid")
        if type(vu) is not str or not vu:
            problems.error(
                "bad_clip",
                rel,
                f"{shown}: {where}.video_uid is {'missing' if vu is None else _json_type(vu)}, expected a video uid string; fix or re-download the file",
            )
            continue
        ok = True
        for k in ("video_start_sec", "video_end_sec"):
            v = c.get(k)
            if not _good_number(v):
                what = "missing" if k not in c else _describe_bad_number(v)
                problems.error(
                    "bad_timestamp",
                    rel,
                    f"{shown}: {where}.{k} is {what} (clip of video {vu!r}), expected a number of seconds; fix or re-download the file",
                )
                ok = False
        if not ok:
            continue
        if c["video_end_sec"] < c["video_start_sec"]:
            problems.error(
                "bad_clip",
                rel,
                f"{shown}: {where} ends before it starts ({c['video_start_sec']} > {c['video_end_sec']}, video {vu!r}); fix or re-download the file",
            )
            continue
        out.append(
            {
                "clip_uid": str(cu) if cu is not None else "",
                "video_uid": vu,
                "start": float(c["video_start_sec"]),
                "end": float(c["video_end_sec"]),
            }
        )
    return out, n_videos


# --------------------------------------------------------------------------- NLQ splits


@dataclass
class NLQClip:
    video_uid: str
    clip_uid: str
    video_start_sec: float  # the clip's span in the video
    video_end_sec: float
    where: str  # JSON path, e.g. "videos[3].clips[0]"


@dataclass
class NLQQuery:
    """One language query; times are None in nlq_test_unannotated.json."""

    video_uid: str
    clip_uid: str
    annotation_uid: str
    query_index: int  # position in its annotation's language_queries
    query: str | None
    template: str | None
    clip_start_sec: float | None  # answer window, relative to the clip
    clip_end_sec: float | None
    video_start_sec: float | None  # answer window, absolute in the video
    video_end_sec: float | None
    where: str  # "videos[3].clips[0].annotations[1].language_queries[2]"


@dataclass
class NLQSplit:
    path: Path
    data: dict  # the parsed file, unchanged (export copies its nesting)
    video_uids: list[str]
    clips: list[NLQClip]
    queries: list[NLQQuery]
    issues: list[Issue]


def load_nlq(
    path: str | os.PathLike, *, annotated: bool | None = None, problems: Problems | None = None, rel: str | None = None
) -> NLQSplit | None:
    """Parse and validate an NLQ split file (nlq_train.json, nlq_val.json, nlq_test_unannotated.json).

    `annotated`: whether answer times are required (default: unless the name says
    "unannotated"). With no `problems`, the first error raises DataError; quirks are in
    `.issues` as warnings. Returns None only when errors are being collected into `problems`.
    """
    path = Path(path)
    own = problems is None
    if own:
        problems = Problems(path.parent, strict=True)
    rel = rel or path.name
    root = path.parent if rel == path.name else Path(str(path)[: -len(rel)].rstrip("/") or "/")
    shown = str(path)
    if annotated is None:
        annotated = "unannotated" not in path.name
    data = _read_json(root, rel, problems, path.name)
    if data is None:
        return None
    n_err = problems.errors_in(rel)

    def err(code: str, where: str, what: str) -> None:
        problems.error(code, rel, f"{shown}: {where} {what}; fix or re-download the file")

    if type(data) is not dict:
        problems.error(
            "wrong_top_type",
            rel,
            f"{shown}: top level is {_json_type(data)}, expected an object with 'videos'; this is not an Ego4D NLQ file",
        )
        return None
    videos = data.get("videos")
    if type(videos) is not list:
        problems.error(
            "no_videos",
            rel,
            f"{shown}: 'videos' is {'missing' if videos is None else _json_type(videos)}, expected a list; this is not an Ego4D NLQ file",
        )
        return None
    if data.keys() - _NLQ_TOP_KEYS:
        problems.warn(
            "unknown_field",
            rel,
            "unknown extra fields (ignored)",
            f"top level: {', '.join(sorted(data.keys() - _NLQ_TOP_KEYS)[:3])}",
        )
    video_uids: list[str] = []
    clips: list[NLQClip] = []
    queries: list[NLQQuery] = []

    def extra(obj: dict, known: set, where: str) -> None:
        e = obj.keys() - known
        if e:
            problems.warn(
                "unknown_field", rel, "unknown extra fields (ignored)", f"{where}: {', '.join(sorted(e)[:3])}"
            )

    def number(obj: dict, key: str, where: str, required: bool) -> tuple[float | None, bool]:
        if key not in obj:
            if required:
                err("missing_field", where, f"has no {key}")
                return None, False
            return None, True
        v = obj[key]
        if not _good_number(v):
            err("bad_timestamp", f"{where}.{key}", f"is {_describe_bad_number(v)}, expected a number of seconds")
            return None, False
        return float(v), True

    for vi, v in enumerate(videos):
        vw = f"videos[{vi}]"
        if type(v) is not dict:
            err("bad_video", vw, f"is {_json_type(v)}, expected an object")
            continue
        vu = v.get("video_uid")
        if type(vu) is not str or not vu:
            err("bad_video", f"{vw}.video_uid", "is missing or not a string")
            continue
        extra(v, _NLQ_VIDEO_KEYS, vw)
        video_uids.append(vu)
        vclips = v.get("clips")
        if type(vclips) is not list:
            err(
                "bad_video",
                f"{vw}.clips",
                f"is {'missing' if vclips is None else _json_type(vclips)}, expected a list (video {vu!r})",
            )
            continue
        for ci, c in enumerate(vclips):
            cw = f"{vw}.clips[{ci}]"
            if type(c) is not dict:
                err("bad_clip", cw, f"is {_json_type(c)}, expected an object")
                continue
            extra(c, _NLQ_CLIP_KEYS, cw)
            cu = c.get("clip_uid")
            cu = cu if type(cu) is str else ""
            vs, ok1 = number(c, "video_start_sec", cw, True)
            ve, ok2 = number(c, "video_end_sec", cw, True)
            _, ok3 = number(c, "clip_start_sec", cw, False)
            _, ok4 = number(c, "clip_end_sec", cw, False)
            if not (ok1 and ok2 and ok3 and ok4):
                continue
            clips.append(NLQClip(vu, cu, vs, ve, cw))
            anns = c.get("annotations")
            if anns is None:
                anns = []
            if type(anns) is not list:
                err("bad_clip", f"{cw}.annotations", f"is {_json_type(anns)}, expected a list")
                continue
            for ai, a in enumerate(anns):
                aw = f"{cw}.annotations[{ai}]"
                if type(a) is not dict:
                    err("bad_annotation", aw, f"is {_json_type(a)}, expected an object")
                    continue
                extra(a, _NLQ_ANNOTATION_KEYS, aw)
                au = a.get("annotation_uid")
                au = au if type(au) is str else ""
                lqs = a.get("language_queries")
                if type(lqs) is not list:
                    err(
                        "bad_annotation",
                        f"{aw}.language_queries",
                        f"is {'missing' if lqs is None else _json_type(lqs)}, expected a list",
                    )
                    continue
                for qi, q in enumerate(lqs):
                    qw = f"{aw}.language_queries[{qi}]"
                    if type(q) is not dict:
                        err("bad_query", qw, f"is {_json_type(q)}, expected an object")
                        continue
                    extra(q, _NLQ_QUERY_KEYS, qw)
                    times = []
                    ok = True
                    for k in ("clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec"):
                        val, good = number(q, k, qw, annotated)
                        ok = ok and good
                        times.append(val)
                    if not ok:
                        continue
                    text = q.get("query")
                    if text is None:
                        problems.warn("query_missing", rel, "queries without 'query' text (skipped by training)", qw)
                    elif type(text) is not str:
                        err("bad_query", f"{qw}.query", f"is {_json_type(text)}, expected a string")
                        continue
                    elif any(ch in text for ch in _CURLY):
                        problems.warn("curly_quotes", rel, "queries with curly apostrophes or quotes", qw)
                    tmpl = q.get("template")
                    if tmpl is None:
                        problems.warn("template_null", rel, "queries with template null", qw)
                    elif type(tmpl) is not str:
                        err("bad_query", f"{qw}.template", f"is {_json_type(tmpl)}, expected a string or null")
                        continue
                    cs, ce, vs_, ve_ = times
                    if cs is not None and ce is not None:
                        if ce < cs:
                            err(
                                "bad_window",
                                qw,
                                f"answer ends before it starts (clip_start_sec {cs} > clip_end_sec {ce})",
                            )
                            continue
                        if ce == cs:
                            problems.warn("zero_length_answer", rel, "queries with a zero-length answer window", qw)
                    queries.append(NLQQuery(vu, cu, au, qi, text, tmpl, cs, ce, vs_, ve_, qw))
    if problems.errors_in(rel) > n_err:
        return None
    issues = [i for i in problems.issues() if i.file == rel and i.level == "warning"] if own else []
    return NLQSplit(path=path, data=data, video_uids=video_uids, clips=clips, queries=queries, issues=issues)


# --------------------------------------------------------------------------- the index


def _feature_state(root: Path, feature_dir: str, problems: Problems) -> set[str]:
    from engine.features import feature_root, scan_feature_dir

    rel = f"v1/{feature_dir}"
    p = feature_root(root) / feature_dir
    if not p.is_dir():
        others = (
            sorted(d.name for d in feature_root(root).iterdir() if d.is_dir() and d.name != "annotations")
            if feature_root(root).is_dir()
            else []
        )
        hint = (
            f"; folders here: {', '.join(others)} (pick one with --features)"
            if others
            else "; copy the features there or pick another folder with --features"
        )
        what = "is a file, expected a folder of <video_uid>.pt files" if p.exists() else "not found"
        problems.error("no_feature_dir", rel, f"{p}: feature folder {what}{hint}")
        return set()
    try:
        return scan_feature_dir(p)
    except OSError as exc:
        problems.error(
            "unreadable", rel, f"{p}: cannot list the feature folder ({exc.strerror}); check its permissions"
        )
        return set()


def _build(root: Path, feature_dir: str, problems: Problems, progress: Progress | None, workdir: Path) -> Index | None:
    got = _read_clips(root, problems)
    if progress is not None:
        progress("ego4d.json", 1, 1)
    splits: dict[str, NLQSplit | None] = {}
    for split in ("val", "test"):
        splits[split] = load_nlq(
            root / NLQ_FILES[split], annotated=split != "test", problems=problems, rel=NLQ_FILES[split]
        )
    nar = _read_narrations(root, problems, progress, workdir)
    if got is None or nar is None or any(s is None for s in splits.values()):
        return None
    clips, n_ego_videos = got
    video_uids, passes = nar
    n_narrated = len(video_uids)
    row = {u: i for i, u in enumerate(video_uids)}
    for c in clips:
        if c["video_uid"] not in row:
            row[c["video_uid"]] = len(video_uids)
            video_uids.append(c["video_uid"])
    V = len(video_uids)
    for pn in (1, 2):  # videos only in ego4d.json have no narrations: pad the CSR offsets
        a = passes[pn]
        if len(a.video_offsets) < V + 1:
            a.video_offsets = np.concatenate(
                [a.video_offsets, np.full(V + 1 - len(a.video_offsets), a.video_offsets[-1], dtype=np.int64)]
            )
    clip_video = np.array([row[c["video_uid"]] for c in clips], dtype=np.int32)
    clip_offsets = np.zeros(V + 1, dtype=np.int64)
    np.cumsum(np.bincount(clip_video, minlength=V), out=clip_offsets[1:])
    n_clips_per_video = np.diff(clip_offsets)
    narrated = (np.diff(passes[1].video_offsets) + np.diff(passes[2].video_offsets)) > 0
    no_clips = np.flatnonzero(narrated & (n_clips_per_video == 0))
    if len(no_clips):
        problems.warn(
            "video_without_clips",
            NARRATION_JSON,
            "narrated videos with no clip in ego4d.json (no groups)",
            f"video {video_uids[no_clips[0]]!r}",
            len(no_clips),
        )
    val_uids = set(splits["val"].video_uids)
    test_uids = set(splits["test"].video_uids)
    excluded = np.array([u in val_uids or u in test_uids for u in video_uids], dtype=bool)
    index = Index(
        root=root,
        feature_dir=feature_dir,
        video_uids=video_uids,
        clip_uids=[c["clip_uid"] for c in clips],
        clip_video=clip_video,
        clip_start=np.array([c["start"] for c in clips], dtype=np.float64),
        clip_end=np.array([c["end"] for c in clips], dtype=np.float64),
        clip_order=np.argsort(clip_video, kind="stable").astype(np.int32),
        clip_offsets=clip_offsets,
        passes=passes,
        excluded=excluded,
        has_features=np.zeros(V, dtype=bool),
    )
    counts = {
        "videos": V,
        "videos_in_ego4d_json": n_ego_videos,
        "narrated_videos": n_narrated,
        "clips": len(clips),
        "narrations": {f"pass_{pn}": len(passes[pn]) for pn in (1, 2)},
        "unsure_narrations": {f"pass_{pn}": int(np.count_nonzero(passes[pn].flags & FLAG_UNSURE)) for pn in (1, 2)},
        "other_person_narrations": {
            f"pass_{pn}": int(np.count_nonzero(passes[pn].flags & FLAG_OTHER)) for pn in (1, 2)
        },
        "queries": {s: len(splits[s].queries) for s in ("val", "test")},
        "val_videos": len(val_uids),
        "test_videos": len(test_uids),
        "excluded_videos": int(excluded.sum()),
        "videos_without_clips": int(np.count_nonzero(n_clips_per_video == 0)),
    }
    curly = [_rows_matching(passes[pn].text, _CURLY_BYTES) for pn in (1, 2)]
    n_curly = sum(len(r) for r in curly)
    if n_curly:
        pn, first = (1, curly[0][0]) if len(curly[0]) else (2, curly[1][0])
        v = int(np.searchsorted(passes[pn].video_offsets, first, side="right")) - 1
        problems.warn(
            "curly_quotes",
            NARRATION_JSON,
            "narrations with curly apostrophes or quotes (kept as they are)",
            f"video {video_uids[v]!r} narration_pass_{pn}",
            n_curly,
        )
    for pn in (1, 2):
        f = NARRATION_JSON
        problems.warn(
            f"unsure_narrations_pass_{pn}",
            f,
            f"narration_pass_{pn} narrations tagged #unsure",
            "",
            counts["unsure_narrations"][f"pass_{pn}"],
        )
        problems.warn(
            f"other_person_narrations_pass_{pn}",
            f,
            f"narration_pass_{pn} #O narrations (about another person)",
            "",
            counts["other_person_narrations"][f"pass_{pn}"],
        )
    index.counts = counts
    index.issues = problems.issues()
    return index


def _apply_features(index: Index, feature_dir: str, problems: Problems) -> bool:
    uids = _feature_state(index.root, feature_dir, problems)
    index.feature_dir = feature_dir
    index.has_features = np.fromiter((u in uids for u in index.video_uids), dtype=bool, count=index.n_videos)
    narrated = (np.diff(index.passes[1].video_offsets) + np.diff(index.passes[2].video_offsets)) > 0
    c = index.counts
    c["feature_dir"] = feature_dir
    c["feature_files"] = len(uids)
    c["videos_with_features"] = int(np.count_nonzero(index.has_features))
    c["videos_without_features"] = int(index.n_videos - c["videos_with_features"])
    c["narrated_videos_with_features"] = int(np.count_nonzero(index.has_features & narrated))
    c["feature_coverage"] = round(c["narrated_videos_with_features"] / max(1, int(narrated.sum())), 4)
    return not problems.errors_in(f"v1/{feature_dir}")


def load_index(
    root: str | os.PathLike,
    features: str = DEFAULT_FEATURES,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> Index:
    """The Index of an Ego4D tree, from the cache when its source files are unchanged.

    Raises DataError (one line: file, JSON path or video, what to do) at the first problem.
    `progress(stage, done, total)` is called as loading goes on. Feature files are never
    opened here: only whether `<video_uid>.pt` exists counts.
    """
    from engine import cache

    root = Path(root)
    problems = Problems(root, strict=True)
    _check_root(root, problems)
    index = cache.load(root, progress) if use_cache else None
    if index is None:
        index = _build_and_cache(root, features, problems, progress, use_cache)
        assert index is not None  # strict mode raised otherwise
    _apply_features(index, features, problems)
    return index


def _build_and_cache(
    root: Path, features: str, problems: Problems, progress: Progress | None, use_cache: bool
) -> Index | None:
    """Build the index (text blobs go straight to files), and cache it when it has no error."""
    import shutil
    import tempfile

    from engine import cache

    workdir = cache.new_data_dir(root) if use_cache else None
    cached = workdir is not None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="nlq-index-"))
    index = None
    try:
        index = _build(root, features, problems, progress, workdir)
    finally:
        if index is None or problems.errors or not cached:
            # The blobs are mapped; on POSIX the mapping outlives the files' names.
            shutil.rmtree(workdir, ignore_errors=True)
    if index is not None and cached and not problems.errors:
        if progress is not None:
            progress("writing cache", 0, 1)
        cache.save(index, workdir)
    return index


def _check_root(root: Path, problems: Problems) -> None:
    if not root.exists():
        problems.error(
            "root_missing",
            ".",
            f"{root}: data root not found; pass the folder that holds ego4d.json and v1/annotations/",
        )
    elif not root.is_dir():
        problems.error(
            "root_missing", ".", f"{root}: is a file, expected the Ego4D data root folder (ego4d.json, v1/annotations/)"
        )


# --------------------------------------------------------------------------- check


@dataclass
class CheckReport:
    root: str
    feature_dir: str
    counts: dict
    issues: list[Issue]
    feature_dirs: list[dict]  # {"name", "dim", "files"}

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {
            "root": self.root,
            "features": self.feature_dir,
            "ok": self.ok,
            "counts": self.counts,
            "feature_dirs": self.feature_dirs,
            "warnings": [asdict(i) for i in self.warnings],
            "errors": [asdict(i) for i in self.errors],
        }


FEATURE_SAMPLE = 32  # feature files opened by `check` (spread over the folder); all in small trees


def check(
    root: str | os.PathLike,
    features: str = DEFAULT_FEATURES,
    progress: Progress | None = None,
    use_cache: bool = True,
) -> CheckReport:
    """Validate every file of an Ego4D tree, collecting all problems instead of stopping."""
    from engine import cache

    root = Path(root)
    problems = Problems(root, strict=False)
    _check_root(root, problems)
    counts: dict = {}
    feature_dirs: list[dict] = []
    if problems.errors:
        return CheckReport(str(root), features, counts, problems.issues(), feature_dirs)
    index = cache.load(root, progress) if use_cache else None
    cached_issues: list[Issue] = []
    if index is not None:
        cached_issues = list(index.issues)  # warnings of the build that made the cache
    else:
        index = _build_and_cache(root, features, problems, progress, use_cache)
    train = load_nlq(root / NLQ_FILES["train"], annotated=True, problems=problems, rel=NLQ_FILES["train"])
    feature_ok = True
    if index is not None:
        feature_ok = _apply_features(index, features, problems)
        counts = dict(index.counts)
        counts["queries"] = dict(counts.get("queries", {}))
        if train is not None:
            counts["queries"]["train"] = len(train.queries)
            counts["train_videos"] = len(set(train.video_uids))
        counts["queries"] = {k: counts["queries"][k] for k in ("train", "val", "test") if k in counts["queries"]}
    else:
        _feature_state(root, features, problems)
    feature_dirs = _check_feature_dirs(root, features, problems, progress, feature_ok)
    for d in feature_dirs:
        if d["selected"] and counts:
            counts["feature_dim"] = d["dim"]
            counts["empty_feature_files"] = d.get("empty", 0)
    issues = problems.issues() + cached_issues
    issues.sort(key=lambda i: i.level != "error")  # errors first, stable otherwise
    return CheckReport(str(root), features, counts, issues, feature_dirs)


def _check_feature_dirs(
    root: Path, features: str, problems: Problems, progress: Progress | None, feature_ok: bool
) -> list[dict]:
    """Each feature folder as {name, dim, files, selected}; the selected one also has `empty`.

    Of the selected folder, up to FEATURE_SAMPLE non-empty files spread over it are opened
    (safely) and must be 2-D tensors of one dimension, the most common among them. Other
    folders: one file is opened to report the dimension.
    """
    from collections import Counter

    from engine.features import KNOWN_DIMS, feature_root, load_features

    out: list[dict] = []
    base = feature_root(root)
    if not base.is_dir():
        return out
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "annotations"):
        with os.scandir(sub) as it:
            files = sorted(e.path for e in it if e.name.endswith(".pt") and e.is_file())
        selected = sub.name == features
        if not files and not selected:
            continue
        rel = f"v1/{sub.name}"
        entry: dict = {"name": sub.name, "dim": None, "files": len(files), "selected": selected}
        if selected and feature_ok:
            sizes = [os.stat(f).st_size for f in files]
            nonempty = [f for f, n in zip(files, sizes) if n > 0]
            entry["empty"] = len(files) - len(nonempty)
            if entry["empty"]:
                problems.warn("empty_feature_files", rel, "empty (0-byte) feature files: fine for indexing and the lab, not for training",
                              os.path.basename(files[sizes.index(0)]), entry["empty"])  # fmt: skip
            step = max(1, len(nonempty) // FEATURE_SAMPLE)
            sample = nonempty[::step][:FEATURE_SAMPLE]
            shapes: dict[str, int] = {}
            for k, f in enumerate(sample):
                if progress is not None:
                    progress("feature files", k, len(sample))
                try:
                    shapes[f] = int(load_features(f).shape[1])
                except DataError as exc:
                    problems.error("bad_feature_file", rel, str(exc))
            if shapes:
                dim = Counter(shapes.values()).most_common(1)[0][0]
                entry["dim"] = dim
                for f, d in shapes.items():
                    if d != dim:
                        problems.error(
                            "bad_feature_file",
                            rel,
                            f"{f}: feature dimension {d}, but this folder's features are {dim}-d; the file belongs to another feature set or is damaged",
                        )
                if sub.name in KNOWN_DIMS and KNOWN_DIMS[sub.name] != dim:
                    problems.warn(
                        "unexpected_dim",
                        rel,
                        f"features are {dim}-d where this folder name usually means {KNOWN_DIMS[sub.name]}-d",
                        "",
                    )
        elif not selected:
            for f in files:
                if os.stat(f).st_size > 0:
                    try:
                        entry["dim"] = int(load_features(f).shape[1])
                    except DataError:
                        pass  # only the selected folder is validated
                    break
        out.append(entry)
    return out
