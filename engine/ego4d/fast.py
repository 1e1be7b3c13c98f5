"""The fast narration reader: msgspec decodes the JSON, the streaming reader's code does the rest.

narration.json is read in chunks (ReadPolicy.chunk); each chunk is cut after the last video
that ends in it (`}, "<uid>": {`, looked for in the chunk's tail only). msgspec skips over the
chunk's videos in C, keeping each pass as raw JSON, then decodes each pass on its own; every
video then goes through the streaming reader's per-video code (`video_entry`), so the arrays,
warnings and errors are exactly that reader's. Where msgspec refuses a pass that Python's json
reads (NaN, lone surrogates), json decodes it. Anything else (a chunk that is not valid JSON,
a cut that was not between two videos, an unknown field of a video, one uid twice in a chunk)
ends this reader, reporting nothing: the streaming reader then reads the whole file and names
the problem with its line and column.

msgspec is optional (docs/ARCHITECTURE.md, "Scale"): without it `read_fast` returns None and
the streaming reader does all the work.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.narration import pass_block, store_pass, video_pass
from engine.ego4d.problems import Problems, disp
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy, ws_end
from engine.ego4d.typed import Batch

_BOUNDARY = re.compile(rb'\}\s*,\s*("(?:[^"\\]|\\.)*")\s*:\s*\{')
_NOT_VIDEO_KEYS = {b'"narration_pass_1"', b'"narration_pass_2"', b'"status"'}
_TAIL = 1 << 20  # where the cut is looked for: the last MiB of a chunk (a video is ~70 KB)


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

    def __init__(self, root: Path, problems: Problems, files: dict) -> None:
        self.rel = NARRATION_JSON
        self.shown = disp(root, self.rel)
        self.problems = problems
        self.files = files
        self.pieces: list[tuple[str, dict]] = []
        self.videos, self.decode, self.refused = _decoder()

    def chunk(self, span: bytes) -> None:
        """The videos of `span` (members of the top-level object, without the braces)."""
        _COUNT[0] = 0
        try:
            videos = self.videos.decode(b"{" + span + b"}")
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
            return json.loads(text)
        except (ValueError, RecursionError):
            raise _Stop("the streaming reader names it") from None


def read_fast(
    path: Path,
    root: Path,
    problems: Problems,
    progress: Progress | None,
    files: dict,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> list | None:
    """The (uid, pieces) of every video, as the streaming reader gives them; None (nothing
    reported, nothing kept in `files`) when it must read the file instead."""
    if _decoder() is None:
        return None
    scratch = Problems(root, strict=problems.strict, max_errors=problems.max_errors)
    reader = _Reader(root, scratch, files)
    try:
        _read(path, reader, progress, max(policy.chunk, 1))
    except _Stop:
        return None
    problems.absorb(scratch)
    return reader.pieces


def _read(path: Path, reader: _Reader, progress: Progress | None, chunk: int) -> None:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = f.read(chunk)
        done = len(buf)
        start = ws_end(buf[:64].decode("latin-1"), 0)
        if buf[start : start + 1] != b"{":
            raise _Stop("not an object (or a byte-order mark): the streaming reader says which")
        buf = buf[start + 1 :]
        while True:
            more = f.read(chunk)
            done += len(more)
            if more:
                buf += more
                m = _last_boundary(buf)
                if m is None:
                    continue  # one video longer than a chunk: read on
                reader.chunk(buf[: m.start() + 1])
                buf = buf[m.start(1) :]
            else:
                end = buf.rstrip()
                if not end.endswith(b"}"):
                    raise _Stop("truncated")
                reader.chunk(end[:-1])
                break
            if progress is not None:
                progress("narration.json", done, size)
    if progress is not None:
        progress("narration.json", size, size)


def _last_boundary(buf: bytes) -> re.Match | None:
    start = max(0, len(buf) - _TAIL)
    while True:
        last = None
        for m in _BOUNDARY.finditer(buf, start):
            if m.group(1) not in _NOT_VIDEO_KEYS:
                last = m
        if last is not None or start == 0:
            return last
        start = max(0, start - 4 * _TAIL)
