"""The columnar narration reader: one typed msgspec decode per chunk, columns built per chunk.

(`scan_pieces` first hands the chunk to the C scanner, engine/ego4d/_scan.c, where it was
built: the same columns with no Python object per narration; what it declines comes here.)

A chunk of narration.json (a run of whole videos) is decoded at once into small typed structs
(video, pass, narration) whose text fields are `str`; the columns of each pass (times, text,
uids, FLAG_* bits) are then built for all the chunk's passes together, in a few C-level calls
per chunk rather than per pass. The structs forbid unknown fields, so msgspec itself finds
them: an unknown narration field is added to the narration struct (as an ignored extra field)
and the chunk decoded again, and a pass has unknown fields exactly when one of those extra
fields is set in it. Warnings are counted pass by pass in file order, as the streaming reader
counts them.

Whatever this reader cannot do exactly (an unknown video or pass field, a type other than the
schema's, NaN, lone surrogates, escapes that msgspec and Python might read differently, a
video uid twice in a chunk) makes `decode` return None: the caller reads that chunk the slower
way (engine.ego4d.fast), which hands what it cannot read to the streaming reader
(docs/ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

import functools
import re
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from engine.ego4d.narration import curly_at, text_flags
from engine.ego4d.problems import Problems, warn_unknown
from engine.index import flags_of

_MAX_EXTRA = 16  # distinct unknown narration fields learnt before a chunk goes the slower way
_TIME = attrgetter("timestamp_sec")
_TEXT = attrgetter("narration_text")
_UID = attrgetter("annotation_uid")
_UNKNOWN = re.compile(
    r"Object contains unknown field `(.*)` - at `\$\[\.\.\.\]\.narration_pass_[12]\.narrations\[\d+\]`"
)
_COUNT = [0]
# The C scanner's INFO_* bits per row (engine/ego4d/_scan.c).
_INFO_NO_TEXT, _INFO_CURLY, _INFO_SLOW_FLAGS = 1, 4, 8
STOP = object()  # what `decode` gives for a chunk only the streaming reader reads exactly


def _count(self) -> None:
    _COUNT[0] += 1  # videos decoded, duplicates included (a dict keeps only the last)


@functools.cache
def _decoder(extra: tuple[str, ...]) -> Any:
    """The decoder of a chunk `{uid: video}` whose narrations may carry the unknown fields `extra`."""
    import msgspec
    from msgspec import UNSET, UnsetType

    text = str | None | UnsetType
    # In the order of Ego4D's files (msgspec looks for the next field first). The ignored
    # ones are typed Any, not skipped: a number that Python cannot read is refused here too.
    fields: list[tuple] = [
        ("timestamp_sec", float),
        ("timestamp_frame", Any, UNSET),
        ("narration_text", text, UNSET),
        ("annotation_uid", text, UNSET),
        ("unmapped", Any, UNSET),
    ]
    fields += [(f"x{i}", Any, UNSET) for i in range(len(extra))]
    rename = {"unmapped": "_unmapped_timestamp_sec", **{f"x{i}": name for i, name in enumerate(extra)}}
    narration = msgspec.defstruct("Narration", fields, rename=rename, forbid_unknown_fields=True, gc=False)
    block = msgspec.defstruct(
        "Pass",
        [("narrations", list[narration] | None, None), ("summaries", Any, None)],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
        gc=False,
    )
    passes: list[tuple] = [(f"narration_pass_{pn}", block | None, None) for pn in (1, 2)]
    video = msgspec.defstruct(
        "Video",
        passes + [("status", Any, None)],
        namespace={"__post_init__": _count},
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(dict[str, video])  # type: ignore[valid-type]


@functools.cache
def _refused() -> tuple:
    import msgspec

    return msgspec.ValidationError, msgspec.DecodeError


class Columns:
    """Decodes chunks; learns the unknown narration fields as it goes (`extra`)."""

    def __init__(self) -> None:
        self.extra: tuple[str, ...] = ()

    def decode(self, data) -> Any:
        """`{uid: video struct}` of one chunk (`{...}` as bytes or a buffer); None: read it the
        slower way; STOP: an integer longer than Python reads (which the slower way, skipping
        the values it ignores, would not see)."""
        while True:
            _COUNT[0] = 0
            try:
                videos = _decoder(self.extra).decode(data)
            except _refused() as exc:
                if str(exc).startswith("Integer value out of range"):
                    return STOP
                m = _UNKNOWN.fullmatch(str(exc))
                if m is None or len(self.extra) >= _MAX_EXTRA or m.group(1) in self.extra:
                    return None
                self.extra += (m.group(1),)
                continue
            if len(videos) != _COUNT[0]:
                return None  # a uid twice: the slower reader gives both to the streaming code
            return videos


def _utf8(strings: list[str]) -> tuple[bytes, np.ndarray]:
    """Strings as one UTF-8 blob and the byte length of each (lone surrogates raise
    UnicodeEncodeError, a string that is not one TypeError). A string's bytes are its
    characters plus, per character of 2-4 bytes, the bytes after the first: counted from the
    blob's lead bytes (>= 0xC0)."""
    joined = "".join(strings)
    blob = joined.encode("utf-8")
    lens = np.fromiter(map(len, strings), dtype=np.int32, count=len(strings))
    if len(blob) != len(joined):
        buf = np.frombuffer(blob, dtype=np.uint8)
        lead = np.flatnonzero(buf >= 0xC0)
        more = 1 + (buf[lead] >= 0xE0).astype(np.int64) + (buf[lead] >= 0xF0)  # bytes after the first
        before = np.cumsum(more) - more  # extra bytes before each lead byte
        char_ends = np.cumsum(lens, dtype=np.int64)
        rows = np.searchsorted(char_ends, lead - before, side="right")
        lens += np.bincount(rows, weights=more, minlength=len(strings)).astype(np.int32)[: len(strings)]
    return blob, lens


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Where each of a run of lengths starts, and the end (int64, one more than the lengths)."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _per_pass(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of `values` over each run of `counts` rows (one run per pass)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return np.bincount(owner, weights=values, minlength=len(counts))


def _first_per_pass(mask: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows set in `mask` per pass, first such row's place in its pass or -1)."""
    rows = np.flatnonzero(mask)
    owner = np.searchsorted(starts, rows, side="right") - 1
    n = np.bincount(owner, minlength=len(starts) - 1)[: len(starts) - 1]
    first = np.full(len(starts) - 1, -1, dtype=np.int64)
    if len(rows):
        keep = np.concatenate([[True], owner[1:] != owner[:-1]])
        first[owner[keep]] = rows[keep] - starts[owner[keep]]
    return n, first


class PassSet:
    """The columns of one pass number over all the videos of a chunk that have that pass."""

    def __init__(self, blocks: list, extra: int) -> None:
        lists = [[] if b.narrations is None else b.narrations for b in blocks]
        self.counts = counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        self.starts = starts = _offsets(counts)
        rows = list(chain.from_iterable(lists))
        n = len(rows)
        t = np.fromiter(map(_TIME, rows), dtype=np.float64, count=n)
        texts = list(map(_TEXT, rows))
        uids = list(map(_UID, rows))
        self.unknown = np.zeros(len(lists), dtype=bool)
        self.names: dict[int, set[str]] | None = None  # per pass, where the C scanner read it
        self.extra_rows: list[list] = []
        for i in range(extra):
            values = list(map(attrgetter(f"x{i}"), rows))
            self.extra_rows.append(values)
            if values.count(_unset()) < n:  # set in some rows: which passes (a count per
                ends = starts[1:].tolist()  # slice is quicker than a mask when few rows are set)
                for k, a in enumerate(starts[:-1].tolist()):
                    self.unknown[k] |= values[a : ends[k]].count(_unset()) < ends[k] - a
        order = self._order(t)
        self.time = t if order is None else t[order]
        self.dups = self._dups(self.time)
        self.missing = np.zeros(len(lists), dtype=np.int64)
        self.first_missing = np.full(len(lists), -1, dtype=np.int64)
        self.text, self.text_len = self._encode(texts, order, True)
        self.uid, self.uid_len = self._encode(uids, order, False)
        self.text_offsets = _offsets(self.text_len)
        self.uid_offsets = _offsets(self.uid_len)
        self.flags = text_flags(self.text, self.text_offsets)
        self.curly = self._curly(self.text_offsets)

    @classmethod
    def scanned(cls, columns: tuple[bytes, ...], unknown: list[tuple[int, str]]) -> PassSet:
        """The same columns from what the C scanner gives for one pass (engine/ego4d/_scan.c):
        counts per video, then one entry per row in file order; `unknown`: (row, field name)
        of each unknown narration field."""
        counts, times, text, text_len, uid, uid_len, flags, info = columns
        self = cls.__new__(cls)
        self.counts = counts_a = np.frombuffer(counts, dtype=np.int64)
        self.starts = starts = _offsets(counts_a)
        t = np.frombuffer(times, dtype=np.float64)
        bits = np.frombuffer(info, dtype=np.uint8)
        self.names = {}
        owners = np.searchsorted(starts, [row for row, _ in unknown], side="right") - 1
        for k, (_, name) in zip(owners.tolist(), unknown):
            self.names.setdefault(k, set()).add(name)
        self.unknown = np.zeros(len(counts_a), dtype=bool)
        self.unknown[list(self.names)] = True
        self.extra_rows = []
        self.missing, self.first_missing = _first_per_pass((bits & _INFO_NO_TEXT) != 0, starts)
        self.curly = _per_pass((bits & _INFO_CURLY) != 0, counts_a).astype(np.int64)
        text_lens = np.frombuffer(text_len, dtype=np.int32)
        row_flags = np.frombuffer(flags, dtype=np.uint8)
        slow = np.flatnonzero(bits & _INFO_SLOW_FLAGS)
        if len(slow):  # leading whitespace or a non-ASCII first byte: the exact rule
            row_flags = row_flags.copy()
            at = _offsets(text_lens).tolist()
            for i in slow.tolist():
                row_flags[i] = flags_of(text[at[i] : at[i + 1]].decode("utf-8"))
        order = self._order(t)
        self.time = t if order is None else t[order]
        self.dups = self._dups(self.time)
        self.text, self.text_len = self._moved(text, text_lens, order)
        self.uid, self.uid_len = self._moved(uid, np.frombuffer(uid_len, dtype=np.int32), order)
        self.flags = row_flags if order is None else row_flags[order]
        self.text_offsets = _offsets(self.text_len)
        self.uid_offsets = _offsets(self.uid_len)
        return self

    @staticmethod
    def _moved(blob: bytes, lens: np.ndarray, order: np.ndarray | None) -> tuple[bytes, np.ndarray]:
        """A column's blob and lengths with its rows in `order` (the C scanner's `gather`)."""
        if order is None:
            return blob, lens
        from engine.ego4d import _scan

        return _scan.gather(blob, _offsets(lens), order.astype(np.int64, copy=False)), lens[order]

    def _order(self, t: np.ndarray) -> np.ndarray | None:
        """The rows with each pass stably sorted by time (the streaming reader's order), or None
        when every pass is in order; unsorted passes are noted."""
        counts, starts = self.counts, self.starts
        down = np.flatnonzero(t[1:] < t[:-1])
        owner = np.searchsorted(starts, down, side="right") - 1
        owner = owner[down + 1 < starts[owner + 1]]  # a step down inside one pass
        self.unsorted = np.zeros(len(counts), dtype=bool)
        self.unsorted[owner] = True
        if not len(owner):
            return None
        # Every unsorted pass's rows at once: by pass, then time; lexsort is stable, so rows
        # at the same time keep their order, as a stable sort of each pass keeps them.
        row_pass = np.repeat(np.arange(len(counts)), counts)
        rows = np.flatnonzero(self.unsorted[row_pass])
        order = np.arange(len(t))
        order[rows] = rows[np.lexsort((t[rows], row_pass[rows]))]
        return order

    def _dups(self, t: np.ndarray) -> np.ndarray:
        """Narrations at the same time as the previous one of their pass, per pass."""
        same = np.flatnonzero(t[1:] == t[:-1])
        owner = np.searchsorted(self.starts, same, side="right") - 1
        owner = owner[same + 1 < self.starts[owner + 1]]
        return np.bincount(owner, minlength=len(self.counts))[: len(self.counts)].astype(np.int64)

    def _encode(self, strings: list, order: np.ndarray | None, text: bool) -> tuple[bytes, np.ndarray]:
        """The column's UTF-8 blob and byte lengths, in `order`; null or absent is "" (a text
        counted as missing, at its place in the file)."""
        picked = strings
        if order is not None:  # only the unsorted passes move
            picked = list(strings)
            for k in np.flatnonzero(self.unsorted).tolist():
                a, b = int(self.starts[k]), int(self.starts[k + 1])
                picked[a:b] = map(strings.__getitem__, order[a:b].tolist())
        try:
            return _utf8(picked)
        except TypeError:  # a null or absent string: "", counted where it is a text
            if text:
                ids = np.fromiter(map(id, strings), dtype=np.int64, count=len(strings))
                gaps = (ids == id(None)) | (ids == id(_unset()))
                self.missing, self.first_missing = _first_per_pass(gaps, self.starts)
            return _utf8([x if type(x) is str else "" for x in picked])

    def _curly(self, offsets: np.ndarray) -> np.ndarray:
        """Rows with a curly apostrophe or quote, per pass."""
        if self.text.isascii():
            return np.zeros(len(self.counts), dtype=np.int64)
        hits = curly_at(self.text)
        rows = np.unique(np.searchsorted(offsets, hits, side="right") - 1)
        mask = np.zeros(len(offsets) - 1, dtype=bool)
        mask[rows] = True
        return _per_pass(mask, self.counts).astype(np.int64)

    def unknown_names(self, k: int, extra: tuple[str, ...]) -> list[str]:
        """The unknown fields that pass k has."""
        if self.names is not None:  # read by the C scanner
            return sorted(self.names.get(k, ()))
        a, b = int(self.starts[k]), int(self.starts[k + 1])
        return [name for name, rows in zip(extra, self.extra_rows) if rows[a:b].count(_unset()) < b - a]


@functools.cache
def _unset() -> Any:
    from msgspec import UNSET

    return UNSET


def chunk_pieces(videos: dict, extra: tuple[str, ...], problems: Problems, rel: str, files: dict) -> list | None:
    """(uid, {pass: piece}) per video of a decoded chunk, its text appended to `files`, its
    quirks counted in file order; None when a text cannot be encoded as the streaming reader
    would (the caller reads the chunk the slower way, nothing counted or written)."""
    uids = list(videos)
    structs = list(videos.values())
    sets: dict[int, tuple[list[int], PassSet]] = {}
    try:
        for pn in (1, 2):
            blocks = list(map(attrgetter(f"narration_pass_{pn}"), structs))
            having = [v for v, b in enumerate(blocks) if b is not None]
            sets[pn] = (having, PassSet([blocks[v] for v in having], len(extra)))
    except UnicodeEncodeError:
        return None
    _count_quirks(uids, sets, extra, problems, rel)
    return _pieces(uids, sets, files)


def scan_pieces(data, problems: Problems, rel: str, files: dict) -> list | None:
    """What `chunk_pieces` gives for the chunk `data` (`{...}`), read by the C scanner
    (engine/ego4d/_scan.c) with no Python object per narration; None when the scanner is not
    built or declines the chunk (nothing counted or written): the msgspec reader then reads it."""
    scan = _native_scan()
    got = None if scan is None else scan(data)
    if got is None:
        return None
    uids, *raw, unknown = got
    if len(set(uids)) != len(uids):
        return None  # a uid twice: the slower reader gives both to the streaming code
    sets = {}
    for pn in (1, 2):
        having, *columns = raw[pn - 1]
        named = [(row, name) for p, row, name in unknown if p == pn]
        sets[pn] = (np.frombuffer(having, dtype=np.int64).tolist(), PassSet.scanned(tuple(columns), named))
    _count_quirks(uids, sets, (), problems, rel)
    return _pieces(uids, sets, files)


@functools.cache
def _native_scan() -> Any:
    """The C scanner's `scan`, or None where it was not built (no compiler at install time)."""
    try:
        from engine.ego4d import _scan
    except ImportError:
        return None
    return _scan.scan


def _pieces(uids: list[str], sets: dict, files: dict) -> list:
    """(uid, {pass: piece}) per video, each pass's text appended to `files`."""
    pieces: list[tuple[str, dict]] = [(uid, {}) for uid in uids]
    for pn, (having, ps) in sets.items():
        text_base = files[pn, "text"].write(ps.text)
        uid_base = files[pn, "uid"].write(ps.uid)
        starts = ps.starts.tolist()
        text_at = (ps.text_offsets[ps.starts] + text_base).tolist()
        uid_at = (ps.uid_offsets[ps.starts] + uid_base).tolist()
        curly = ps.curly.tolist()
        for k, v in enumerate(having):
            a, b = starts[k], starts[k + 1]
            piece = (ps.time[a:b], text_at[k], ps.text_len[a:b], uid_at[k], ps.uid_len[a:b], ps.flags[a:b], curly[k])
            pieces[v][1][pn] = piece
    return pieces


def _count_quirks(uids: list, sets: dict, extra: tuple[str, ...], problems: Problems, rel: str) -> None:
    """The chunk's warnings pass by pass, in the streaming reader's order."""
    order = sorted((v, pn, k) for pn, (having, _) in sets.items() for k, v in enumerate(having))
    quirky = {}
    for pn, (_, ps) in sets.items():
        quirky[pn] = (ps.missing > 0) | ps.unknown | ps.unsorted | (ps.dups > 0)
    for v, pn, k in order:
        ps = sets[pn][1]
        if not quirky[pn][k]:
            continue
        where = f"video {uids[v]!r} narration_pass_{pn}.narrations"
        if ps.missing[k]:
            what = "narrations without narration_text (kept as empty text)"
            problems.warn(
                "narration_without_text", rel, what, f"{where}[{int(ps.first_missing[k])}]", int(ps.missing[k])
            )
        if ps.unknown[k]:
            names = ps.unknown_names(k, extra) if ("unknown_field", rel) not in problems._warn else []
            warn_unknown(problems, rel, names, f"{where}[]")
        if ps.unsorted[k]:
            what = "videos whose narrations are not in time order (sorted, stable)"
            problems.warn("unsorted_timestamps", rel, what, where)
        if ps.dups[k]:
            what = "narrations at the same timestamp as the previous one"
            problems.warn("duplicate_timestamps", rel, what, where, int(ps.dups[k]))
