"""The window engine's parameter-independent preparation, once per (index, narration pass).

Split out of engine/windows.py, whose module docstring states the rules; this module only
finds, for one pass selection, which clip holds which narration row, beta per video and the
reasons that depend on the narration alone (docs/ARCHITECTURE.md, "Scale").

The work is done per *segment* rather than per row wherever it can be: the row ranges
`[a, b)` of the clips cut the rows into at most `2 * clips + 1` stretches in which the set of
clips holding a row does not change, so how many clips hold a row, which one (when one does)
and how far that clip reaches are computed once per segment and painted onto the rows with
`np.repeat`. Only rows held by several (overlapping) clips need per-row work (`_staircase`).
Per-row columns that the figures do not need (`rowvid`, `row_used`, `firstclip`, ...) are
built on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

from engine.index import FLAG_UNSURE, Index

# The reason bits this module sets (engine.windows REASONS: bit code - 1).
B_UNSURE = np.uint8(1 << 3)
B_DUP = np.uint8(1 << 4)


class Cancelled(Exception):
    """`compute` stopped because its `cancel` callable returned True."""


def check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


class Table:
    """The narrations of one pass selection: CSR by video, sorted by time within each video."""

    def __init__(self, index: Index, narration_pass: int | str):
        if narration_pass == "both":
            p1, p2 = index.passes[1], index.passes[2]
            n1, n2 = len(p1), len(p2)
            t1, t2 = np.asarray(p1.time), np.asarray(p2.time)
            off1, off2 = np.asarray(p1.video_offsets), np.asarray(p2.video_offsets)
            v1, v2 = row_video(off1), row_video(off2)
            # A stable merge of each video's two sorted lists, pass 1 first on ties: a row's
            # place is its own rank plus how many rows of the other pass come before it.
            pos1 = np.arange(n1, dtype=np.int64) + off2[v1]
            pos2 = np.arange(n2, dtype=np.int64) + off1[v2]
            for v in np.flatnonzero((np.diff(off1) > 0) & (np.diff(off2) > 0)):
                a0, a1, b0, b1 = off1[v], off1[v + 1], off2[v], off2[v + 1]
                a, b = t1[a0:a1], t2[b0:b1]
                pos1[a0:a1] += np.searchsorted(b, a, "left")
                pos2[b0:b1] += np.searchsorted(a, b, "right")
            order = np.empty(n1 + n2, dtype=np.int64)
            order[pos1] = np.arange(n1)
            order[pos2] = np.arange(n1, n1 + n2)
            self.time = np.concatenate([t1, t2])[order]
            self.flags = np.concatenate([p1.flags, p2.flags])[order]
            self.video_offsets = off1 + off2
            self.src_pass: np.ndarray | None = np.where(order < n1, 1, 2).astype(np.uint8)
            self.src_row: np.ndarray | None = np.where(order < n1, order, order - n1)
        else:
            p = index.passes[int(narration_pass)]
            self.time = np.asarray(p.time)
            self.flags = np.asarray(p.flags)
            self.video_offsets = np.asarray(p.video_offsets)
            self.src_pass = None
            self.src_row = None
        self.pass_const = None if narration_pass == "both" else int(narration_pass)

    def source(self, row: int) -> tuple[int, int]:
        if self.src_pass is None or self.src_row is None:
            return int(self.pass_const or 0), row  # one pass: its number, the same row
        return int(self.src_pass[row]), int(self.src_row[row])


def row_video(video_offsets: np.ndarray) -> np.ndarray:
    V = len(video_offsets) - 1
    return np.repeat(np.arange(V, dtype=np.int32), np.diff(video_offsets))


def bisect(T: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`np.searchsorted(T[lo_i:hi_i], x_i, "right" if right_i else "left") + lo_i` for every i
    at once (each slice sorted): one binary search over all keys together, as many steps as
    halving the longest slice takes."""
    lo, hi = lo.astype(np.int64, copy=True), hi.astype(np.int64, copy=True)
    if not len(lo):
        return lo
    last = max(len(T) - 1, 0)
    for _ in range(int(np.max(hi - lo, initial=0)).bit_length()):
        mid = (lo + hi) >> 1
        tm = T[np.minimum(mid, last)] if len(T) else np.zeros(len(mid))
        active = lo < hi  # a finished search stays where it is
        go = ((tm < x) | (right & (tm == x))) & active
        # arithmetic rather than np.where: the masks are random, and this runs branch-free
        lo += go * (mid + 1 - lo)
        hi -= (active & ~go) * (hi - mid)
    return lo


def clip_rows(index: Index, T: np.ndarray, voff: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """Row range [a, b) of each clip of the given videos (bool[V]) in a table of rows (times T,
    CSR `voff`): the rows of its video with clip_start <= t <= clip_end; a = b = 0 for the
    other clips. Working in row space makes "first and last narration in the clip" an
    integer test."""
    out = np.zeros((2, len(index.clip_uids)), dtype=np.int64)
    slot_video = row_video(np.asarray(index.clip_offsets))  # video of each place in clip_order
    slots = np.flatnonzero((videos & (np.diff(voff) > 0))[slot_video])
    cl = np.asarray(index.clip_order)[slots]
    v = slot_video[slots]
    lo, hi, m = voff[v], voff[v + 1], len(cl)
    keys = np.concatenate([index.clip_start[cl], index.clip_end[cl]])
    both = bisect(T, keys, np.concatenate([lo, lo]), np.concatenate([hi, hi]), np.arange(2 * m) >= m)
    out[0, cl], out[1, cl] = both[:m], both[m:]
    return out


def video_beta(T: np.ndarray, voff: np.ndarray, videos: np.ndarray | None = None) -> np.ndarray:
    """beta per video: the mean of the positive gaps between its sorted timestamps, NaN when it
    has none or is not among `videos` (bool[V]; default all). np.add.reduce per video, not
    reduceat: the notebook's np.mean sums pairwise, and windows must match it to the last bit."""
    N, V = len(T), len(voff) - 1
    beta = np.full(V, np.nan)
    if N > 1:
        gap = T[1:] - T[:-1]
        last = voff[1:-1] - 1  # the gap from a video's last row to the next video's first
        gap[last[(last >= 0) & (last < N - 1)]] = np.nan
        at = np.flatnonzero(gap > 0)
        g = gap[at]
        goff = np.searchsorted(at, voff)
        has = goff[1:] > goff[:-1]
        if videos is not None:
            has &= videos
        add = np.add.reduce
        bounds = goff.tolist()
        for v in np.flatnonzero(has).tolist():
            s, e = bounds[v], bounds[v + 1]
            beta[v] = add(g[s:e]) / (e - s)
    return beta


def pass_geometry(index: Index, narration_pass: int) -> tuple[np.ndarray, np.ndarray]:
    """(video_beta, clip_rows) of one narration pass over every video: computed once, kept on
    its NarrationArrays, and stored with the index by engine/cache.py, so that a warm open
    reads them. They depend on the index alone (no parameter, not on which videos are used)."""
    arr = index.passes[narration_pass]
    if arr.video_beta is None or arr.clip_rows is None:
        T, voff = np.asarray(arr.time), np.asarray(arr.video_offsets)
        arr.clip_rows = clip_rows(index, T, voff, np.ones(len(voff) - 1, dtype=bool))
        arr.video_beta = video_beta(T, voff)
    return arr.video_beta, arr.clip_rows


class Segments:
    """The rows cut where a live clip's row range starts or ends: per segment its first row,
    length, how many clips hold it, the one that does (-1 unless exactly one) and the furthest
    row end of the clips that start at or before it."""

    def __init__(self, N: int, al: np.ndarray, bl: np.ndarray, ids: np.ndarray):
        pts = np.sort(np.concatenate([np.array([0, N], dtype=np.int64), al, bl]))
        pts = pts[np.concatenate([[True], pts[1:] != pts[:-1]])]  # np.unique's first call imports numpy.ma
        self.start = pts[:-1]
        self.len = np.diff(pts)
        oa = np.argsort(al, kind="stable")
        ob = np.argsort(bl, kind="stable")
        na = np.searchsorted(al[oa], self.start, "right")  # clips with a <= segment start
        nb = np.searchsorted(bl[ob], self.start, "right")  # ... of them ended by then
        self.count = na - nb
        zero = np.zeros(1, dtype=np.int64)
        idsum = np.concatenate([zero, np.cumsum(ids[oa])])[na] - np.concatenate([zero, np.cumsum(ids[ob])])[nb]
        self.clip = np.where(self.count == 1, idsum, -1)
        self.reach = np.concatenate([zero, np.maximum.accumulate(bl[oa])])[na]

    def paint(self, values: np.ndarray) -> np.ndarray:
        """One value per segment, repeated over its rows."""
        return np.repeat(values, self.len)


class Prepared:
    """Everything about one pass selection that no parameter changes."""

    def __init__(self, index: Index, narration_pass: int | str, cancel: Callable[[], bool] | None):
        tab = self.table = Table(index, narration_pass)
        self.N = len(tab.time)
        n_clips = np.diff(index.clip_offsets)
        self.n_rows = np.diff(tab.video_offsets)
        self.video_excluded = np.asarray(index.excluded, dtype=bool)
        self.video_no_features = ~np.asarray(index.has_features, dtype=bool)
        self.video_no_clips = n_clips == 0
        used = self.video_used = ~self.video_excluded & ~self.video_no_features & ~self.video_no_clips
        self.used_rows_per_video = np.where(used, self.n_rows, 0)
        self.narrations_used = int(self.used_rows_per_video.sum())
        check_cancel(cancel)
        a, b, live = self._geometry(index, narration_pass)
        seg = self.seg = Segments(self.N, a[live], b[live], live)
        self.has_multi = bool((seg.count >= 2).any())
        check_cancel(cancel)
        self._paint(index, seg)
        if self.has_multi:
            self._staircase(index, a, b, live)
        check_cancel(cancel)
        self._runs(seg)
        self._row_bits()

    def _geometry(self, index: Index, narration_pass: int | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta per used video, each clip's row range [a, b) (`clip_rows`), and the clips of used
        videos whose range is not empty (`live`)."""
        T, voff, used = self.table.time, self.table.video_offsets, self.video_used
        if narration_pass == "both":
            rows = clip_rows(index, T, voff, used)
            self.beta = video_beta(T, voff, used)
        else:
            beta, rows = pass_geometry(index, int(narration_pass))
            self.beta = np.where(used, beta, np.nan)
        a, b = rows[0], rows[1]
        in_used = np.zeros(len(a), dtype=bool)
        in_used[np.asarray(index.clip_order)[used[row_video(np.asarray(index.clip_offsets))]]] = True
        finite = np.isfinite(index.clip_start) & np.isfinite(index.clip_end)
        return a, b, np.flatnonzero(in_used & finite & (b > a))

    def _paint(self, index: Index, seg: Segments) -> None:
        """room[i]: how many rows from i on still lie in one clip that also holds row i (clips
        of earlier videos end at or before row i, so the reach needs no per-video reset); and
        each row's window bounds in its first clip (NaN when no clip holds it)."""
        N, C = self.N, len(index.clip_uids)
        self.room = seg.paint(seg.reach.astype(np.int32))
        self.room -= np.arange(N, dtype=np.int32)
        has = seg.clip >= 0
        fc = np.maximum(seg.clip, 0)
        nan = np.full(len(seg.clip), np.nan)
        self.home_start = seg.paint(np.where(has, index.clip_start[fc], nan) if C else nan)
        self.home_end = seg.paint(np.where(has, index.clip_end[fc], nan) if C else nan)
        self.multi_pos: np.ndarray | None = None
        self.st_key = np.zeros(0, dtype=np.int64)
        self.st_clip = np.zeros(0, dtype=np.int32)

    @cached_property
    def firstclip(self) -> np.ndarray:
        """Per row, the first clip in ego4d.json order that holds it (-1: none)."""
        fc = self.seg.paint(self.seg.clip.astype(np.int32))
        if self.has_multi:
            fc[self._multi_rows] = self._multi_first
        return fc

    @cached_property
    def cover(self) -> np.ndarray:
        """How many clips hold each row."""
        return self.seg.paint(self.seg.count.astype(np.int32))

    def _staircase(self, index: Index, a: np.ndarray, b: np.ndarray, live: np.ndarray) -> None:
        """Rows held by several (overlapping) clips: per row, the clips that hold it in ego4d.json
        order, keeping only those that reach further than all earlier ones (a staircase). The
        parent of a group starting there is the first step that reaches its last row."""
        N = self.N
        multi = self.cover >= 2
        mp = self.multi_pos = np.concatenate([[0], np.cumsum(multi)]).astype(np.int32)
        cid = live[(mp[b[live]] - mp[a[live]]) > 0]
        lens = b[cid] - a[cid]
        total = int(lens.sum())
        starts = np.repeat(a[cid] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        prow = starts + np.arange(total, dtype=np.int64)
        pclip = np.repeat(cid, lens)
        keep = multi[prow]
        prow, pclip = prow[keep], pclip[keep]
        order = np.lexsort((pclip, prow))
        prow, pclip = prow[order], pclip[order]
        key = mp[prow].astype(np.int64) * (N + 1) + b[pclip]
        before = np.concatenate([[-1], np.maximum.accumulate(key)[:-1]])
        step = key > before
        self.st_key, self.st_clip = key[step], pclip[step].astype(np.int32)
        mrows = self._multi_rows = np.flatnonzero(multi)
        first = self._multi_first = self.st_clip[
            np.searchsorted(self.st_key, mp[mrows].astype(np.int64) * (N + 1), "left")
        ]
        self.home_start[mrows] = index.clip_start[first]
        self.home_end[mrows] = index.clip_end[first]
        fc = self.firstclip
        has = fc >= 0
        self.b_first = np.where(has, b[np.maximum(fc, 0)], 0).astype(np.int32)

    def _runs(self, seg: Segments) -> None:
        """Rows of used videos in no clip, and the lengths of the stretches of consecutive rows
        (one used video) that all lie in a clip: a run without a no-clip narration lies inside
        one of them. Clips only have rows in used videos, so both come from the segments."""
        held = np.flatnonzero(seg.count > 0)
        self.narrations_no_clip = self.narrations_used - int(seg.len[held].sum())
        if len(held):
            video = np.searchsorted(self.table.video_offsets, seg.start[held], "right")
            brk = np.flatnonzero((np.diff(held) != 1) | (video[1:] != video[:-1])) + 1
            self.stretch_len = np.add.reduceat(seg.len[held], np.concatenate([[0], brk]))
        else:
            self.stretch_len = np.zeros(0, dtype=np.int64)

    @cached_property
    def rowvid(self) -> np.ndarray:
        return row_video(self.table.video_offsets)

    @cached_property
    def row_used(self) -> np.ndarray:
        return np.repeat(self.video_used, self.n_rows)

    @cached_property
    def video_room(self) -> np.ndarray:
        """Rows left in the video from each row on."""
        voff = self.table.video_offsets
        ends = voff[1:][self.rowvid] if self.N else np.zeros(0, np.int64)
        return (ends - np.arange(self.N, dtype=np.int64)).astype(np.int32)

    @cached_property
    def noclip_prefix(self) -> np.ndarray:
        """How many rows of used videos in no clip come before each row."""
        noclip = self.row_used & (self.cover == 0)
        return np.concatenate([[0], np.cumsum(noclip)]).astype(np.int32)

    def _row_bits(self) -> None:
        """Reasons that depend only on the narration."""
        N, T, voff = self.N, self.table.time, self.table.video_offsets
        bits = ((self.table.flags & FLAG_UNSURE) != 0).view(np.uint8) << 3  # B_UNSURE
        if N > 1:
            same = np.flatnonzero(T[1:] == T[:-1])
            video_start = np.zeros(N + 1, dtype=bool)
            video_start[voff] = True
            same = same[~video_start[same + 1]]  # the pair is in one video
            bits[same] |= B_DUP
            bits[same + 1] |= B_DUP
        self.row_bits = bits
