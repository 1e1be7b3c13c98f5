"""The fast narration reader: msgspec decodes the JSON, in chunks of whole videos.

narration.json (or a parallel worker's span of it) is read in chunks of at most a few MiB
(ReadPolicy.chunk caps it) into one reused buffer; each chunk is cut after the last video that
ends in it (`}, "<uid>": {`). The C scanner (engine/ego4d/_scan.c, where the install built
it) reads a chunk into columns with no Python object per narration; a chunk it declines (any
JSON or schema it does not read exactly as the others do) goes to the columnar reader
(engine.ego4d.columns), which decodes it at once into typed structs and builds its columns;
a chunk that one declines goes the slower way here:
msgspec skips over the chunk's videos keeping each pass as raw JSON, decodes each pass on its
own (engine.ego4d.typed), and a pass that one declines is decoded into dicts for the streaming
reader's per-video code, so the arrays, warnings and errors are exactly that reader's. Where
msgspec refuses a pass that Python's json reads (NaN, lone surrogates), json decodes it.
Anything else (a chunk that is not valid JSON, a cut that was not between two videos, an
unknown field of a video, one uid twice in a chunk, an integer longer than Python reads) ends
this reader, reporting nothing: the streaming reader then reads the whole file and names the
problem with its line and column.

msgspec is optional (docs/ARCHITECTURE.md, "Scale"): without it `read_fast` returns None and
the streaming reader does all the work."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from engine.ego4d.columns import STOP, Columns, chunk_pieces, scan_pieces
from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.narration import pass_block, store_pass, video_pass
from engine.ego4d.problems import Problems, disp
from engine.ego4d.stream import DEFAULT_POLICY, NOT_VIDEO_KEYS, VIDEO_BOUNDARY, Progress, ReadPolicy, ws_end
from engine.ego4d.typed import Batch

_TAIL = 1 << 20  # where the cut is looked for: the last MiB of a chunk (a video is ~70 KB)
_SCAN_TRIES = 4  # chunks the C scanner may decline before this reader stops offering it any
_CHUNK = 4 << 20  # at most this much decoded at once: its structs then stay in the CPU caches longer


class _Stop(Exception):
    """This reader cannot go on; the streaming reader reads the file instead."""


@functools.cache
def _decoder() -> Any:
    """(msgspec decoder of `{uid: video}` keeping each pass as raw JSON, msgspec.json.decode,
    msgspec's errors), or None without msgspec."""
    try:
        import msgspec
    except ImportError:
        return None

    def count(self) -> None:
        _COUNT[0] += 1  # videos decoded, duplicates included (a dict keeps only the last)

    # Raw: each pass is kept as its JSON text, skipped over in C, decoded on its own later.
    fields = [(name, msgspec.Raw, _NULL) for name in ("status", "narration_pass_1", "narration_pass_2")]
    Video = msgspec.defstruct("Video", fields, forbid_unknown_fields=True, gc=False, namespace={"__post_init__": count})
    videos = msgspec.json.Decoder(dict[str, Video])  # type: ignore[valid-type]  # a class made at run time
    return videos, msgspec.json.decode, (msgspec.ValidationError, msgspec.DecodeError)


def _null() -> Any:
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec.Raw(b"null")


_NULL = _null()
_COUNT = [0]


def available() -> bool:
    return _decoder() is not None


class _Reader:
    """One pass over the file; `pieces` as the streaming reader's `videos` gives them.

    Every video goes through the streaming reader's own per-video code (`video_entry`), so the
    arrays, warnings and errors are its; only the JSON decoding differs.
    """

    def __init__(self, root: Path, problems: Problems, files: dict, scanner: bool = True) -> None:
        self.scanner = scanner
        self.scanned = self.declined = 0  # chunks the C scanner read, and declined
        self.rel = NARRATION_JSON
        self.shown = disp(root, self.rel)
        self.problems = problems
        self.files = files
        self.pieces: list[tuple[str, dict]] = []
        self.videos, self.decode, self.refused = _decoder()
        self.columns = Columns()

    def chunk(self, data) -> None:
        """The videos of `data` (`{...}`: a run of whole members of the top-level object)."""
        if self.scanner:  # the C scanner first: no Python object per narration
            pieces = scan_pieces(data, self.problems, self.rel, self.files)
            if pieces is not None:
                self.scanned += 1
                self.pieces.extend(pieces)
                return
            self.declined += 1
            # A file whose every chunk it declines (a layout it does not read) would pay for
            # both readers to the end: after a few declines and no chunk read, msgspec alone.
            self.scanner = self.scanned > 0 or self.declined < _SCAN_TRIES
        videos = self.columns.decode(data)
        if videos is STOP:
            raise _Stop("the streaming reader names it")
        if videos is not None:
            pieces = chunk_pieces(videos, self.columns.extra, self.problems, self.rel, self.files)
            if pieces is not None:
                self.pieces.extend(pieces)
                return
        self._slow(bytes(data))

    def _slow(self, data: bytes) -> None:
        """A chunk the columnar reader declined: each pass decoded on its own (`Batch`), and the
        ones it declines into dicts for the streaming reader's code."""
        _COUNT[0] = 0
        try:
            videos = self.videos.decode(data)
        except self.refused:  # not JSON, a cut inside a video, an unknown video field
            raise _Stop("the streaming reader names it") from None
        if len(videos) != _COUNT[0]:
            raise _Stop("a video uid twice in one chunk: the streaming reader counts it")
        batch = Batch()
        slots = []
        for uid, v in videos.items():
            for pn, raw in ((1, v.narration_pass_1), (2, v.narration_pass_2)):
                if raw is not _NULL:
                    slots.append((uid, pn, batch.add(bytes(raw), f"video {uid!r} narration_pass_{pn}.narrations")))
        results = batch.finish()
        by_video: dict[str, dict] = {uid: {} for uid in videos}
        for uid, pn, i in slots:  # in file order, so warnings are counted as the streaming reader counts them
            res = results[i]
            if res is None:
                res = self._dict_pass(uid, pn, batch.passes[i].raw)
            else:
                batch.count(i, self.problems, self.rel)
            if res is not None and not self.problems.errors_in(self.rel):
                store_pass(by_video[uid], pn, res, self.files)
        self.pieces.extend(by_video.items())

    def _dict_pass(self, uid: str, pn: int, text: bytes) -> tuple | None:
        """The streaming reader's code, on the pass decoded into dicts."""
        p, rel = self.problems, self.rel
        narrs = pass_block(uid, pn, self._pass(text), p, rel, self.shown)
        if narrs is None:
            return None
        literal = b"true" in text or b"false" in text
        return video_pass(uid, pn, narrs, p, rel, self.shown, False, literal)

    def _pass(self, text: bytes) -> Any:
        try:
            return self.decode(text)
        except (*self.refused, RecursionError):
            pass
        try:  # what msgspec refuses and Python reads (NaN, lone surrogates): reported as the streaming reader does
            # Decoded strictly first: json.loads of bytes lets surrogates written as raw bytes through
            # ("surrogatepass"), which the streaming reader rejects as not UTF-8.
            return json.loads(text.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise _Stop("the streaming reader names it") from None


def read_fast(
    path: Path,
    root: Path,
    problems: Problems,
    progress: Progress | None,
    files: dict,
    policy: ReadPolicy = DEFAULT_POLICY,
    span: tuple[int, int | None] = (0, None),
) -> list | None:
    """The (uid, pieces) of every video, as the streaming reader gives them; None (nothing
    reported, nothing kept in `files`) when it must read the file instead.

    span: (start, stop) byte positions of a run of whole members (a parallel worker's share:
    start at a key, stop at the next share's key); (0, None) is the whole file."""
    if _decoder() is None:
        return None
    scratch = Problems(root, strict=problems.strict, max_errors=problems.max_errors)
    reader = _Reader(root, scratch, files, policy.scanner)
    try:
        _read(path, reader, progress, max(min(policy.chunk, _CHUNK), 1), span)
    except _Stop:
        return None
    problems.absorb(scratch)
    return reader.pieces


def _read(path: Path, reader: _Reader, progress: Progress | None, chunk: int, span: tuple[int, int | None]) -> None:
    """Hands `reader` the file (or its span) as runs of whole videos, each `{...}` in one buffer
    that is reused: read in place after a "{", closed with a "}" over the byte after the run."""
    start, stop = span
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        end = size if stop is None else stop
        pos = start
        if start == 0:
            head = f.read(64)
            first = ws_end(head.decode("latin-1"), 0)
            if head[first : first + 1] != b"{":
                raise _Stop("not an object (or a byte-order mark): the streaming reader says which")
            pos = first + 1
        buf = bytearray(min(chunk, max(end - pos, 0)) + 2)
        while pos < end:
            n = min(len(buf) - 2, end - pos)
            f.seek(pos)
            if f.readinto(memoryview(buf)[1 : 1 + n]) != n:
                raise _Stop("the file changed while it was read")
            if pos + n >= end:
                cut, after = _last_cut(buf, 1 + n, stop is None), end
            else:
                m = _last_boundary(buf, 1, 1 + n)
                if m is None:  # one video longer than the buffer: a bigger one
                    buf = bytearray(2 * len(buf))
                    continue
                cut, after = m.start() + 1, pos + m.start(1) - 1
            buf[0] = ord("{")
            buf[cut] = ord("}")
            with memoryview(buf) as view:
                reader.chunk(view[: cut + 1])
            pos = after
            if progress is not None:
                progress("narration.json", pos - start, size)
    if progress is not None and stop is None:
        progress("narration.json", size, size)


def _last_cut(buf: bytearray, end: int, whole: bool) -> int:
    """Where the closing "}" goes after the last run of a file (its own "}") or of a span
    (over the "," before the next share's key)."""
    i = end - 1
    while i > 0 and buf[i] in b" \t\r\n":
        i -= 1
    if whole:
        if buf[i] != ord("}"):
            raise _Stop("truncated")
        return i
    if buf[i] != ord(","):
        raise _Stop("a span that does not end before a member")
    return i


def _last_boundary(buf, lo: int = 0, hi: int | None = None) -> re.Match | None:
    """The last `}, "<uid>": {` in buf[lo:hi] (json.dump's layout, found with rfind), else the
    last one with any spacing (the pattern, looked for in the tail first)."""
    hi = len(buf) if hi is None else hi
    at = hi
    for _ in range(8):  # each video has one `}, "` inside (before narration_pass_2)
        at = buf.rfind(b'}, "', lo, at)
        if at < 0:
            break
        m = VIDEO_BOUNDARY.match(buf, at, hi)
        if m is not None and m.group(1) not in NOT_VIDEO_KEYS:
            return m
    start = max(lo, hi - _TAIL)
    while True:
        last = None
        for m in VIDEO_BOUNDARY.finditer(buf, start, hi):
            if m.group(1) not in NOT_VIDEO_KEYS:
                last = m
        if last is not None or start == lo:
            return last
        start = max(lo, start - 4 * _TAIL)
