"""The narration reader: narration.json, video by video, into the index's compact arrays.

Each video is turned into arrays at once while its objects are still in the CPU cache, and
its text goes straight into files (the cache's, when there is one) that the index
memory-maps. A big file is decoded by worker processes when cores are free (engine.ego4d.
parallel); what comes out is the same either way (docs/ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

import array
import gc
import operator
import re
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.problems import (
    Problems,
    as_seconds,
    check_file,
    clean_text,
    describe_bad_number,
    disp,
    json_type,
    warn_surrogates,
    warn_unknown,
)
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy, Stream, iter_top_members
from engine.errors import DataError
from engine.index import FLAG_CAMERA_WEARER, FLAG_OTHER, FLAG_UNSURE, NarrationArrays, TextColumn, flags_of

# The official schema's fields (docs: "Narrations - narrations.json"); real files carry all five.
NARRATION_KEYS = {"timestamp_sec", "timestamp_frame", "_unmapped_timestamp_sec", "narration_text", "annotation_uid"}
_PASS_KEYS = {"narrations", "summaries"}
_VIDEO_KEYS = {"status", "narration_pass_1", "narration_pass_2"}
CURLY = ("\u2018", "\u2019", "\u201c", "\u201d")
CURLY_BYTES = re.compile("|".join(CURLY).encode("utf-8"))

_get_time = operator.itemgetter("timestamp_sec")
_get_text = operator.itemgetter("narration_text")
_get_uid = operator.itemgetter("annotation_uid")


def encode(strings: list[str], joined: str | None = None, latin: bool = False) -> tuple[bytes, np.ndarray]:
    """Strings as one UTF-8 blob and the byte length of each (`joined`: "".join(strings)).

    latin: the strings are UTF-8 bytes spelled in Latin-1 (see Stream), so the blob is their
    Latin-1 encoding, checked to be valid UTF-8 (UnicodeDecodeError otherwise). Lone
    surrogates raise UnicodeEncodeError.
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


class BlobFile:
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

    def reset(self) -> None:
        self.f.seek(0)
        self.f.truncate()
        self.size = 0

    def finish(self):
        from engine.cache import map_bytes

        self.f.close()
        return map_bytes(self.path)


def blob_files(workdir: Path, suffix: str = "") -> dict[tuple[int, str], BlobFile]:
    return {(pn, col): BlobFile(workdir / f"p{pn}.{col}{suffix}.bin") for pn in (1, 2) for col in ("text", "uid")}


class _Pass:
    """One pass of one video being validated; `fail` reports at narrations[i]."""

    def __init__(self, uid: str, pn: int, narrs: list, problems: Problems, rel: str, shown: str) -> None:
        self.where = f"video {uid!r} narration_pass_{pn}.narrations"
        self.narrs = narrs
        self.problems = problems
        self.rel = rel
        self.shown = shown

    def fail(self, code: str, i: int, what: str) -> None:
        self.problems.error(code, self.rel, f"{self.shown}: {self.where}[{i}]{what}; fix or re-download the file")

    def times(self, literal: bool) -> np.ndarray | None:
        narrs = self.narrs
        try:
            ts = list(map(_get_time, narrs))
        except (KeyError, TypeError):
            for i, x in enumerate(narrs):
                if type(x) is not dict:
                    self.fail("bad_narration", i, f" is {json_type(x)}, expected an object")
                    return None
                if "timestamp_sec" not in x:
                    self.fail("missing_timestamp", i, " has no timestamp_sec; every narration needs one")
                    return None
            raise
        bad = None
        if literal:  # array("d") takes True as 1.0: look for booleans only when the text has any
            bad = next((i for i, v in enumerate(ts) if type(v) is bool), None)
        try:
            t = np.frombuffer(array.array("d", ts), dtype=np.float64) if ts else np.zeros(0)
            if bad is None and not np.isfinite(t).all():
                bad = int(np.flatnonzero(~np.isfinite(t))[0])
        except (TypeError, OverflowError):  # a string or null, or an integer past float's range
            bad = next(i for i, v in enumerate(ts) if type(v) is bool or as_seconds(v) is None)
        if bad is not None:
            what = describe_bad_number(ts[bad])
            self.fail("bad_timestamp", bad, f".timestamp_sec is {what}, expected a number of seconds")
            return None
        return t

    def texts(self) -> tuple[list[str], str] | None:
        narrs = self.narrs
        try:
            texts = list(map(_get_text, narrs))
        except KeyError:
            texts = [x.get("narration_text") for x in narrs]
        try:
            return texts, "".join(texts)
        except TypeError:
            pass
        for i, v in enumerate(texts):
            if v is not None and type(v) is not str:
                self.fail("bad_text", i, f".narration_text is {json_type(v)}, expected a string")
                return None
        missing = [i for i, v in enumerate(texts) if v is None]
        self.problems.warn(
            "narration_without_text",
            self.rel,
            "narrations without narration_text (kept as empty text)",
            f"{self.where}[{missing[0]}]",
            len(missing),
        )
        texts = ["" if v is None else v for v in texts]
        return texts, "".join(texts)

    def uids(self) -> tuple[list[str], str]:
        try:
            uids = list(map(_get_uid, self.narrs))
            return uids, "".join(uids)
        except (KeyError, TypeError):
            uids = ["" if v is None else str(v) for v in (x.get("annotation_uid") for x in self.narrs)]
            return uids, "".join(uids)

    def unknown_fields(self, latin: bool) -> None:
        # Every narration's keys: a pass with any unknown field is counted once (the msgspec
        # reader counts the same by comparing key counts).
        extra = set(chain.from_iterable(self.narrs)).difference(NARRATION_KEYS)
        if extra:
            warn_unknown(self.problems, self.rel, spelled(extra, latin), f"{self.where}[]")


def video_pass(
    uid: str, p: int, narrs: list, problems: Problems, rel: str, shown: str, latin: bool = False, literal: bool = True
) -> tuple[np.ndarray, bytes, np.ndarray, bytes, np.ndarray] | None:
    """One pass of one video, validated and stably sorted by time: (time, text blob, text
    byte lengths, uid blob, uid byte lengths); None after an error.

    The common case is a handful of C-level passes over the list; type problems surface as
    exceptions and only then is the list walked in Python to say where.
    """
    vp = _Pass(uid, p, narrs, problems, rel, shown)
    t = vp.times(literal)
    if t is None:
        return None
    got = vp.texts()
    if got is None:
        return None
    texts, texts_joined = got
    uids, uids_joined = vp.uids()
    vp.unknown_fields(latin)
    return finish_pass(t, texts, texts_joined, uids, uids_joined, problems, rel, shown, vp.where, latin)


def finish_pass(
    t: np.ndarray,
    texts: list[str],
    texts_joined: str,
    uids: list[str],
    uids_joined: str,
    problems: Problems,
    rel: str,
    shown: str,
    where: str,
    latin: bool = False,
) -> tuple[np.ndarray, bytes, np.ndarray, bytes, np.ndarray] | None:
    """A pass's validated columns stably sorted by time, its quirks counted, its text encoded."""
    if len(t) > 1:
        d = t[1:] - t[:-1]
        if (d < 0).any():
            what = "videos whose narrations are not in time order (sorted, stable)"
            problems.warn("unsorted_timestamps", rel, what, where)
            order = np.argsort(t, kind="stable")
            t = t[order]
            ol = order.tolist()
            texts = [texts[i] for i in ol]
            uids = [uids[i] for i in ol]
            texts_joined, uids_joined = "".join(texts), "".join(uids)
            d = t[1:] - t[:-1]
        dups = int(np.count_nonzero(d == 0))
        if dups:
            what = "narrations at the same timestamp as the previous one"
            problems.warn("duplicate_timestamps", rel, what, where, dups)
    try:
        return (t, *_encode_clean(texts, texts_joined, uids, uids_joined, latin, problems, rel, where))
    except UnicodeDecodeError:
        problems.error(
            "not_utf8", rel, f"{shown}: {where} hold text that is not UTF-8; the file is damaged, download it again"
        )
        return None


def _encode_clean(texts, texts_joined, uids, uids_joined, latin: bool, problems: Problems, rel: str, where: str):
    try:
        tb, tl = encode(texts, texts_joined, latin)
        ub, ul = encode(uids, uids_joined, latin)
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes (never in latin mode)
        fixed = [clean_text(s) for s in chain(texts, uids)]
        warn_surrogates(problems, rel, where, sum(1 for _, bad in fixed if bad))
        texts = [s for s, _ in fixed[: len(texts)]]
        uids = [s for s, _ in fixed[len(texts) :]]
        tb, tl = encode(texts)
        ub, ul = encode(uids)
    return tb, tl, ub, ul


def _unsure_at(blob, window: int = 1 << 24) -> np.ndarray:
    """Where `#unsure` starts in blob, case-insensitively (ASCII letters only, as bytes.lower()
    and a bytes regex of [uU][nN]... agree): the "#" bytes, then those followed by u, n, s, u,
    r, e (a letter's bit 0x20 is its case), one window at a time (a memory-mapped blob is never
    copied whole). Nearly every text starts with "#", so the filter after the first letter
    leaves only the real candidates; quicker than lowering a copy and looking for each hit."""
    buf = np.frombuffer(blob, dtype=np.uint8)
    last = len(buf) - len("#unsure")  # the last place a whole match can start
    hits = []
    for a in range(0, last + 1, window):
        at = a + np.flatnonzero(buf[a : min(a + window, last + 1)] == ord("#"))
        for k, letter in enumerate(b"unsure", 1):
            at = at[(buf[at + k] | 0x20) == letter]
        hits.append(at)
    return np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64)


_CURLY_LAST = np.array(sorted(c.encode("utf-8")[2] for c in CURLY), dtype=np.uint8)
assert all(c.encode("utf-8")[:2] == b"\xe2\x80" for c in CURLY)  # what curly_at looks for


def curly_at(blob) -> np.ndarray:
    """Where a curly quote (CURLY) starts in a UTF-8 blob: the places CURLY_BYTES finds, found
    with numpy (each is E2 80 and one of four bytes; in UTF-8, E2 only ever starts a character)."""
    buf = np.frombuffer(blob, dtype=np.uint8)
    at = np.flatnonzero(buf[: max(len(buf) - 2, 0)] == 0xE2)
    at = at[buf[at + 1] == 0x80]
    return at[np.isin(buf[at + 2], _CURLY_LAST)]


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
    hits = _unsure_at(blob)
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


def spelled(names, latin: bool):
    """Field names as they are: where the streaming reader read them in Latin-1 (`latin`: the
    member had non-ASCII text and no \\u escape, see Stream), their UTF-8 bytes decoded (a
    warning named "Ã©x" for "éx" before)."""
    if not latin:
        return names
    return [n.encode("latin-1", "replace").decode("utf-8", "replace") for n in names]


def pass_block(uid: str, pn: int, block, problems: Problems, rel: str, shown: str, latin: bool = False) -> list | None:
    """The narrations list of one pass block, or None (absent, or after an error); latin: its
    strings are UTF-8 bytes spelled in Latin-1 (see Stream)."""
    if block is None:
        return None
    if type(block) is not dict:
        problems.error(
            "bad_pass",
            rel,
            f"{shown}: video {uid!r} narration_pass_{pn} is {json_type(block)}, "
            "expected an object with 'narrations'; fix or re-download the file",
        )
        return None
    extra = block.keys() - _PASS_KEYS
    if extra:
        warn_unknown(problems, rel, spelled(extra, latin), f"video {uid!r} narration_pass_{pn}")
    narrs = block.get("narrations")
    if narrs is None:
        return []
    if type(narrs) is not list:
        problems.error(
            "bad_pass",
            rel,
            f"{shown}: video {uid!r} narration_pass_{pn}.narrations is {json_type(narrs)}, "
            "expected a list; fix or re-download the file",
        )
        return None
    return narrs


def videos(
    stream: Stream, shown: str, rel: str, problems: Problems, files: dict, stop: int | None = None
) -> Iterator[tuple[str, dict]]:
    """(uid, {pass: (time, text start, text lens, uid start, uid lens)}) per video, in file
    order; text goes to `files` (BlobFile per (pass, column)) as it is decoded."""
    for uid, entry, latin, literal in iter_top_members(stream, shown, rel, problems, stop):
        got = video_entry(uid, entry, problems, rel, shown, files, latin, literal)
        del entry
        if got is not None:
            yield got


def video_entry(
    uid: str, entry, problems: Problems, rel: str, shown: str, files: dict, latin: bool = False, literal: bool = True
) -> tuple[str, dict] | None:
    """One decoded member of narration.json as (uid, pieces); None when it is not an object."""
    uid, bad = clean_text(uid)
    if bad:
        warn_surrogates(problems, rel, f"video {uid!r}")
    if type(entry) is not dict:
        problems.error(
            "bad_video",
            rel,
            f"{shown}: video {uid!r} is {json_type(entry)}, expected an object with narration_pass_1/2; "
            "fix or re-download the file",
        )
        return None
    extra = entry.keys() - _VIDEO_KEYS
    if extra:
        warn_unknown(problems, rel, spelled(extra, latin), f"video {uid!r}")
    got: dict[int, tuple] = {}
    for pn in (1, 2):
        narrs = pass_block(uid, pn, entry.get(f"narration_pass_{pn}"), problems, rel, shown, latin)
        if narrs is None:
            continue
        res = video_pass(uid, pn, narrs, problems, rel, shown, latin, literal)
        if res is None or problems.errors_in(rel):
            continue  # after an error only validation goes on (check collects more)
        store_pass(got, pn, res, files)
    return uid, got


def store_pass(got: dict, pn: int, res: tuple, files: dict) -> None:
    t, tb, tl, ub, ul = res
    got[pn] = (t, files[pn, "text"].write(tb), tl, files[pn, "uid"].write(ub), ul)


def read_narrations(
    root: Path,
    problems: Problems,
    progress: Progress | None,
    workdir: Path,
    policy: ReadPolicy = DEFAULT_POLICY,
    before: Callable[[], None] | None = None,
) -> tuple[list[str], dict[int, NarrationArrays], dict] | None:
    """Stream narration.json into per-pass arrays, text blobs in files under `workdir`.

    A big file is decoded in parallel when it can be; what comes out is the same either way.
    `before` (reading the other files) runs while worker processes decode, its problems
    reported before this file's. Returns (video_uids in file order, {1: pass 1, 2: pass 2},
    {pass: (rows with curly quotes, the first one's video) or None: not counted}) or None
    after an error.
    """
    from engine.ego4d import parallel

    rel = NARRATION_JSON
    running = parallel.start(root / rel, root, workdir, policy) if policy.decoder != "msgspec" else None
    try:
        if before is not None:
            before()
        p = check_file(root, rel, problems, "narration.json")
        if p is None:
            return None
        files = blob_files(workdir)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # millions of short-lived objects: the cyclic GC would only burn time here
        try:
            pieces = _read_quick(p, root, problems, progress, files, policy, running)
            if pieces is None:  # not read that way, or a problem that the serial reader will name
                for f in files.values():
                    f.reset()
                pieces = _read_serial(p, root, problems, progress, files, policy)
        finally:
            blobs = {k: f.finish() for k, f in files.items()}
            if gc_was_enabled:
                gc.enable()
    finally:
        if running is not None:
            running.close()
    if pieces is None or problems.errors_in(rel):
        return None
    if isinstance(pieces, parallel.Flat):
        return _from_flat(pieces, problems, blobs, progress)
    return _merge(pieces, problems, blobs, workdir, progress)


def _from_flat(flat, problems: Problems, blobs: dict, progress) -> tuple[list[str], dict, dict]:
    """`_merge` and `assemble` of the workers' whole-file arrays (parallel.Flat: no uid twice)."""
    V = len(flat.uids)
    has = {pn: flat.passes[pn]["has"] for pn in (1, 2)}
    counts = {}
    for pn in (1, 2):
        counts[pn] = np.zeros(V, dtype=np.int64)
        counts[pn][has[pn]] = flat.passes[pn]["n"]
    only2 = np.flatnonzero(has[2] & ~has[1] & (counts[2] > 0))
    if len(only2):
        what = "videos with narration_pass_2 only (no pass 1: no groups)"
        problems.warn("only_pass_2", NARRATION_JSON, what, f"video {flat.uids[only2[0]]!r}", len(only2))
    passes, curly = {}, {}
    for pn in (1, 2):
        if progress is not None:
            progress("narration arrays", pn, 2)
        a = flat.passes[pn]
        offsets = np.zeros(V + 1, dtype=np.int64)
        np.cumsum(counts[pn], out=offsets[1:])
        cols = {}
        for col in ("text", "uid"):
            off = np.zeros(len(a["time"]) + 1, dtype=np.int64)
            np.cumsum(a[f"{col}_len"], dtype=np.int64, out=off[1:])
            cols[col] = TextColumn(blobs[pn, col], off)
        passes[pn] = NarrationArrays(
            video_offsets=offsets, time=a["time"], flags=a["flags"], text=cols["text"], uid=cols["uid"]
        )
        rows = np.flatnonzero(a["curly"])
        curly[pn] = (int(a["curly"].sum()), int(np.flatnonzero(has[pn])[rows[0]]) if len(rows) else -1)
    return list(flat.uids), passes, curly


def _read_quick(p: Path, root: Path, problems: Problems, progress, files: dict, policy: ReadPolicy, running):
    """The pieces from the worker processes `running` (each reading its share with the
    msgspec reader, unless the policy says stdlib), else from the msgspec reader in this
    process; None: read serially."""
    from engine.ego4d import fast, parallel

    try:
        pieces = None
        if running is not None:
            pieces = parallel.read_parallel(running, problems, progress, files)
        if pieces is None and policy.decoder != "stdlib" and fast.available():
            for f in files.values():
                f.reset()
            pieces = fast.read_fast(p, root, problems, progress, files, policy)
        return pieces
    except DataError:  # a problem in the data, named: final
        raise
    except Exception:  # no processes (limits, a sandbox), a read error: the serial reader names it
        return None


def _read_serial(p: Path, root: Path, problems: Problems, progress, files: dict, policy: ReadPolicy) -> list | None:
    rel = NARRATION_JSON
    shown = disp(root, rel)
    try:
        stream = Stream(p, progress, "narration.json", policy=policy)
    except OSError as exc:
        problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
        return None
    try:
        return list(videos(stream, shown, rel, problems, files))
    except UnicodeDecodeError as exc:
        problems.error(
            "not_utf8",
            rel,
            f"{shown}: not UTF-8 text near byte {stream.read_bytes} ({exc.reason}); "
            "the file is damaged, download it again",
        )
        return None
    finally:
        stream.close()


def _merge(pieces: list, problems: Problems, blobs: dict, workdir: Path, progress) -> tuple[list[str], dict, dict]:
    # Per video and pass: (time, text start, text lens, uid start, uid lens). A uid seen twice
    # keeps its first position and its last value, as json.load would.
    rel = NARRATION_JSON
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
        what = "videos with narration_pass_2 only (no pass 1: no groups)"
        problems.warn("only_pass_2", rel, what, f"video {first_only_pass2!r}", only_pass2)
    if duplicates:
        problems.warn("duplicate_video", rel, "video uids that appear twice (the last one is kept)", "", duplicates)
    video_uids = list(per_video)
    passes, curly = {}, {}
    for pn in (1, 2):
        if progress is not None:
            progress("narration arrays", pn, 2)
        passes[pn], curly[pn] = assemble(pn, video_uids, per_video, blobs, workdir, duplicates > 0)
    return video_uids, passes, curly


def rows_matching(col: TextColumn, pattern: re.Pattern) -> np.ndarray:
    """Sorted distinct row numbers of the strings in `col` that contain a match (bytes regex)."""
    hits = [m.start() for m in pattern.finditer(col.blob)]
    if not hits:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.searchsorted(col.offsets, np.array(hits), side="right") - 1)


def assemble(
    pn: int, video_uids: list[str], per_video: dict, blobs: dict, workdir: Path, reorder: bool
) -> tuple[NarrationArrays, tuple[int, int] | None]:
    """The CSR arrays of one pass from the per-video pieces (which are dropped as used), and
    (rows with curly quotes, the first one's video) when every piece counted them.

    A piece is (time, text start, text lens, uid start, uid lens), or those plus its FLAG_*
    bits and its rows with curly quotes when its reader made them (engine.ego4d.columns).
    """
    V = len(video_uids)
    counts = np.zeros(V, dtype=np.int64)
    got_all = [(v, got) for v, uid in enumerate(video_uids) if (got := per_video[uid].pop(pn, None)) is not None]
    for v, got in got_all:
        counts[v] = len(got[0])
    offsets = np.zeros(V + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    N = int(offsets[-1])
    pieces = [got for _, got in got_all]
    time = np.concatenate([x[0] for x in pieces]) if pieces else np.zeros(0, dtype=np.float64)
    cols = {}
    for col, at in (("text", 1), ("uid", 3)):
        lens = [x[at + 1] for x in pieces]
        off = np.zeros(N + 1, dtype=np.int64)
        if N:
            np.cumsum(np.concatenate(lens), dtype=np.int64, out=off[1:])
        blob = blobs[pn, col]
        if reorder:  # a video uid seen twice: its stale pieces are in the file, gather the kept ones
            path = workdir / f"p{pn}.{col}.bin"
            data = b"".join(blob[x[at] : x[at] + int(x[at + 1].sum())] for x in pieces)
            if hasattr(blob, "close"):
                blob.close()
            path.write_bytes(data)
            from engine.cache import map_bytes

            blob = map_bytes(path)
        cols[col] = TextColumn(blob, off)
    text = cols["text"]
    curly = None
    if all(len(x) > 5 for x in pieces):
        flags = np.concatenate([x[5] for x in pieces]) if pieces else np.zeros(0, dtype=np.uint8)
        with_curly = [(v, x[6]) for v, x in got_all if x[6]]
        curly = (sum(n for _, n in with_curly), with_curly[0][0] if with_curly else -1)
    else:
        flags = text_flags(text.blob, text.offsets)
    del got_all, pieces
    arrays = NarrationArrays(video_offsets=offsets, time=time, flags=flags, text=text, uid=cols["uid"])
    return arrays, curly
