"""Narration passes straight into the index's columns, with no Python string per narration.

msgspec decodes each pass into small typed structs whose text fields stay raw JSON (`"..."`);
without a backslash, a string's UTF-8 is its raw bytes between the quotes, so a text column is
the joined raw values with the quotes cut out. All the passes of a chunk are done together in
numpy (`Batch`), so the cost per pass is a few Python calls. A pass this reader does not finish
itself is declined, and the caller decodes it into dicts for the streaming reader's own code,
which then counts or reports it: escapes, a type other than the schema's, an unsorted pass,
JSON laid out with spaces before its colons.

Unknown narration fields are looked for by counting keys in the raw text (`":`) against the
keys the structs saw; a pass with more is decoded again to name them (more may also be a key
twice in one narration, or a text that starts with a colon). This is the slower way, for the
chunks the columnar reader (engine.ego4d.columns) declines. Warnings are
counted pass by pass in file order, as the streaming reader counts them (docs/ARCHITECTURE.md,
"Scale").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from engine.ego4d.problems import Problems, warn_unknown

_FIELDS = ("narration_text", "annotation_uid", "timestamp_frame", "unmapped_timestamp_sec")
_TEXT, _UID, _FRAME, _UNMAPPED = (attrgetter(name) for name in _FIELDS)
_TIME = attrgetter("timestamp_sec")


@functools.cache
def _decoder() -> Any:
    import msgspec

    absent = msgspec.Raw(b"")  # never a decoded value: tells an absent field from `null`
    fields: list[tuple] = [("timestamp_sec", float)] + [(name, msgspec.Raw, absent) for name in _FIELDS]
    narration = msgspec.defstruct(
        "Narration", fields, rename={"unmapped_timestamp_sec": "_unmapped_timestamp_sec"}, gc=False
    )
    block = msgspec.defstruct(
        "Pass",
        [("narrations", list[narration], absent), ("summaries", msgspec.Raw, absent)],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(block), absent, (msgspec.ValidationError, msgspec.DecodeError)


def _keys(text: bytes) -> int:
    """Object keys in a JSON text laid out as `"key":` (an escaped quote in a string is `\\"`)."""
    n = text.count(b'":')
    return n - text.count(b'\\":') if b"\\" in text else n


@dataclass
class _Pass:
    raw: bytes
    where: str
    n: int = 0
    unknown: bool = False
    declined: bool = False


@dataclass
class Batch:
    """The passes of one chunk: `add` each (in file order), then `finish` does them together."""

    passes: list[_Pass] = field(default_factory=list)
    times: list[np.ndarray] = field(default_factory=list)
    texts: list = field(default_factory=list)
    uids: list = field(default_factory=list)

    def add(self, raw: bytes, where: str) -> int:
        """Decode one pass; returns its number in the batch."""
        decoder, absent, refused = _decoder()
        p = _Pass(raw, where)
        self.passes.append(p)
        try:
            block = decoder.decode(raw)
        except refused:
            p.declined = True
            return len(self.passes) - 1
        narrs = [] if block.narrations is absent else block.narrations
        p.n = n = len(narrs)
        texts, uids = list(map(_TEXT, narrs)), list(map(_UID, narrs))
        absent_keys = texts.count(absent) + uids.count(absent)
        absent_keys += list(map(_FRAME, narrs)).count(absent) + list(map(_UNMAPPED, narrs)).count(absent)
        summaries = b"" if block.summaries is absent else bytes(block.summaries)
        expected = (1 + len(_FIELDS)) * n - absent_keys + (block.narrations is not absent) + bool(summaries)
        found = _keys(raw) - _keys(summaries)
        if found < expected:  # spaces before colons: counting does not work here
            p.declined, p.n = True, 0
            return len(self.passes) - 1
        p.unknown = found > expected
        self.times.append(np.fromiter(map(_TIME, narrs), dtype=np.float64, count=n))
        self.texts.append(texts)
        self.uids.append(uids)
        return len(self.passes) - 1

    def finish(self) -> list[tuple | None]:
        """Per pass: (time, text blob, text lengths, uid blob, uid lengths), or None: declined.

        Its quirks are counted by `count(i, ...)`, called in file order with the declined ones'."""
        kept = [p for p in self.passes if not p.declined]
        counts = np.array([p.n for p in kept], dtype=np.int64)
        t = np.concatenate(self.times) if self.times else np.zeros(0)
        text = _Column(list(chain.from_iterable(self.texts)), counts)
        uid = _Column(list(chain.from_iterable(self.uids)), counts)
        first_row = np.concatenate([[0], np.cumsum(counts)])
        d = np.diff(t)
        inside = np.ones(len(d), dtype=bool)
        cuts = first_row[1:-1]
        inside[cuts[(cuts > 0) & (cuts < len(t))] - 1] = False  # no difference across two passes
        within = np.maximum(counts - 1, 0)
        unsorted = _per_pass(d[inside] < 0, within) > 0
        dups = _per_pass(d[inside] == 0, within).astype(np.int64)
        bad = _per_pass(~np.isfinite(t), counts) > 0
        ok = ~(unsorted | bad | text.declined | uid.declined)
        out: list[tuple | None] = []
        self._quirks: dict[int, tuple] = {}
        k = 0
        for i, p in enumerate(self.passes):
            if p.declined:
                out.append(None)
                continue
            a, b = int(first_row[k]), int(first_row[k + 1])
            if ok[k]:  # else the streaming reader's code sorts, names or counts it
                tb, tl = text.rows(a, b)
                ub, ul = uid.rows(a, b)
                out.append((t[a:b], tb, tl, ub, ul))
                self._quirks[i] = (text.missing[a:b], int(dups[k]))
            else:
                out.append(None)
            k += 1
        return out

    def count(self, i: int, problems: Problems, rel: str) -> None:
        """Pass i's quirks, counted in the streaming reader's order (a warning keeps its first place)."""
        p = self.passes[i]
        missing, dups = self._quirks[i]
        gaps = np.flatnonzero(missing)
        if len(gaps):
            what = "narrations without narration_text (kept as empty text)"
            problems.warn("narration_without_text", rel, what, f"{p.where}[{int(gaps[0])}]", len(gaps))
        if p.unknown:
            _warn_unknown(p, problems, rel)
        if dups:
            what = "narrations at the same timestamp as the previous one"
            problems.warn("duplicate_timestamps", rel, what, p.where, dups)


def _per_pass(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of `values` over each run of `counts` rows (one run per pass)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    return np.bincount(owner, weights=values.astype(np.float64), minlength=len(counts))


class _Column:
    """Raw JSON string values (or null, or absent) of many passes as one UTF-8 blob."""

    def __init__(self, raws: list, counts: np.ndarray) -> None:
        n = len(raws)
        lens = np.fromiter(map(len, raws), dtype=np.int64, count=n)
        joined = b"".join(raws)
        buf = np.frombuffer(joined, dtype=np.uint8)
        ends = np.cumsum(lens)
        starts = ends - lens
        first = buf[np.minimum(starts, len(buf) - 1)] if len(buf) else np.zeros(n, dtype=np.uint8)
        is_str = (lens >= 2) & (first == ord('"'))
        is_null = (lens == 4) & (first == ord("n"))
        odd = ~(is_str | is_null | (lens == 0))  # a number, a list...: the streaming reader names it
        if b"\\" in joined:  # rows with an escape: the streaming reader decodes them
            at = np.flatnonzero(buf == ord("\\"))
            odd[np.searchsorted(ends, at, side="right")] = True
        self.lens = np.where(is_str, lens - 2, 0).astype(np.int32)
        blob = None
        if is_str.all() and not odd.any():
            # Every value is "..." with no quote or backslash inside: between the outer quotes,
            # each `""` is where one value ends and the next begins.
            blob = joined[1:-1].replace(b'""', b"")
        if blob is not None and len(blob) == int(self.lens.sum()):
            self.blob = blob
        else:
            keep = np.repeat(is_str, lens)
            keep[starts[is_str]] = False
            keep[ends[is_str] - 1] = False
            self.blob = buf[keep].tobytes()
        self.offsets = np.concatenate([[0], np.cumsum(self.lens, dtype=np.int64)])
        self.missing = ~is_str
        self.declined = _per_pass(odd, counts) > 0
        if not self.blob.isascii():  # text that is not UTF-8: the streaming reader names it
            try:
                self.blob.decode("utf-8")
            except UnicodeDecodeError:
                self.declined[:] = True

    def rows(self, a: int, b: int) -> tuple[bytes, np.ndarray]:
        return self.blob[self.offsets[a] : self.offsets[b]], self.lens[a:b]


def _warn_unknown(p: _Pass, problems: Problems, rel: str) -> None:
    import msgspec

    from engine.ego4d.narration import NARRATION_KEYS

    # Decoded again each time: more keys than known ones may also be a key twice in one
    # narration, or a text that starts with a colon; neither is an unknown field.
    narrs = msgspec.json.decode(p.raw).get("narrations") or []
    extra = set(chain.from_iterable(narrs)).difference(NARRATION_KEYS)
    if extra:
        warn_unknown(problems, rel, extra, f"{p.where}[]")
