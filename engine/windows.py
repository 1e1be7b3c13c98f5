"""Groups of k consecutive narrations and their answer windows, over all videos at once.

The rules are the original notebook's, exactly (issue 2, "Groups and windows"):

1. Skip a video that is excluded (in nlq_val.json / nlq_test_unannotated.json), that has no
   `<video_uid>.pt` feature file, or that has no clip in ego4d.json.
2. Take its narrations of the chosen pass, stably sorted by timestamp.
3. Every run of `k` consecutive narrations (stride 1) whose first and last timestamps lie in one
   clip (`clip_start <= t_first and t_last <= clip_end`) is a *group*; its parent clip is the
   first such clip in ego4d.json order.
4. The window of a narration at `t` in a group: `d = max(min_window, beta / alpha)`, `beta` = mean
   of the positive gaps between the video's sorted timestamps; the window is
   `[max(clip_start, t - d/2), min(clip_end, t + d/2)]` with the group's parent clip.

The parent clip's own bounds cut the windows (the notebook looked the clip up again by
`clip_uid`: the same clip, as Ego4D's clip uids are unique). With `narration_pass="both"` the
two passes of a video are merged (stably sorted by time, pass 1 first on ties) and beta is
taken over the merged timestamps. Narration rows (`group_row`, `window_row`, `narration(row)`)
number the narrations of the pass selection: for pass 1 or 2 they are that pass's rows in the
Index; for "both", rows of the merged list (`narration(row)` gives the pass and its own row).

Vocabulary (what the figures count):

- a *run* is any k consecutive narrations of a used video; a *group* is a run that fits one clip.
- a *window* is one (group, narration) pair, so `windows == groups * k`; window `w` belongs to
  group `w // k` and is its narration number `w % k`. A narration appears in up to k windows.
- a window is *usable* when no reason applies to it. Every reason is counted wherever it applies
  (a window can have several; `summary()["reasons"]`); the *primary* reason of a window is the
  first one that applies in `REASONS` order (`summary()["primary_reasons"]`, `window_reason`).
- runs that are not groups are counted under the run reasons (`no_clip`, `straddle`); they have
  no windows. `narrations_no_clip` counts narrations of used videos that lie in no clip.

Reasons (`REASONS`, code -> (key, label)); window reasons, in priority order:

1 no_beta      the video has no positive gap between timestamps: no beta, no window (the notebook
               skipped these groups; they still count as groups, as in the notebook)
2 collapsed    start >= end
3 clip_edge    the clip bound cut the window: `clip_start > t - d/2` or `clip_end < t + d/2`
4 unsure       the narration text carries `#unsure`
5 duplicate_time  another narration of the video (same pass selection) has the same timestamp
6 overlap      the window overlaps the window of another narration of the same group
               (`max(starts) < min(ends)`; touching is fine): its answer is not unique
run reasons:
7 no_clip      a narration of the run lies in no clip of the video
8 straddle     every narration lies in some clip, but no single clip holds the whole run

API (for the lab screen, the CLI and the bench):

    from engine.windows import WindowParams, compute, REASONS
    res = compute(index, WindowParams(k=5, alpha=4.9, min_window=1.0, narration_pass=1),
                  cancel=lambda: worker.is_cancelled)        # raises Cancelled when it says so
    res.summary()                      # JSON-ready dict: groups, windows, usable, reasons, ...
    idx = res.rows(reason="overlap")   # window indices (int64), also video=, usable=
    res.describe_window(int(idx[0]))   # dict: video/clip uid, t, start, end, text, reason, ...
    res.group_windows(g)               # the k window indices of group g
    res.window_start[idx]              # columns over windows, computed on first use
    res.rejected_runs("straddle", video=None)  # first narration rows of runs that are not groups
    res.narration(row)                 # dict: video uid, pass, t, text of one narration row
    res.row_video[rows]                # video number of narration rows

`summary()` keys: `params`; `videos` {total, used, excluded, no_features, no_clips,
used_no_beta} (a skipped video counts under every rule that skips it); `narrations` (rows of used
videos), `narrations_no_clip`; `runs`, `groups`, `windows`, `usable`, `notebook_valid` (windows
the notebook printed VALID: a beta and start < end); `reasons` {key: count where
it applies}; `primary_reasons` {window key: count as first reason}; `seconds` and
`usable_seconds` {p5, p25, p50, p75, p95, mean, min, max} of `end - start` over windows with a
beta / usable windows (an uncut window counts as exactly d); `histogram` {edges, counts} of the
former; `compute_seconds`.

`compute` keeps a `WindowEngine` on the index (attribute `_window_engine`): the first call per
narration pass does the parameter-independent work (which clips hold which narration, beta per
video, `#unsure` and duplicate flags); the first call per `k` finds the groups; a change of
alpha or min_window redoes only the window arithmetic, per narration row rather than per window
(a row held by one clip has the same window in each of its groups; see `_Groups`). Results
are immutable snapshots; a newer compute never changes an older result. `compute` may be
called from a worker thread (one compute runs at a time per index).

Ego4D scale (9.6K videos, 2.1M pass-1 narrations, 1.5M groups, 7.4M windows): about 0.05 s of
CPU per recompute after a change of alpha, min_window or k; see bench/bench_windows.py.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.errors import ConfigError
from engine.index import FLAG_UNSURE, Index

USABLE = 0
REASONS: dict[int, tuple[str, str]] = {
    1: ("no_beta", "video has no positive gap between narrations (no beta)"),
    2: ("collapsed", "window collapsed (start >= end)"),
    3: ("clip_edge", "window cut by the clip edge (shorter than d)"),
    4: ("unsure", "narration tagged #unsure"),
    5: ("duplicate_time", "another narration has the same timestamp"),
    6: ("overlap", "overlaps another narration's window in the group (answer not unique)"),
    7: ("no_clip", "run has a narration that lies in no clip"),
    8: ("straddle", "run straddles two clips (no clip holds all of it)"),
}
WINDOW_REASONS = (1, 2, 3, 4, 5, 6)
RUN_REASONS = (7, 8)
REASON_CODE = {key: code for code, (key, _label) in REASONS.items()}

# Window reasons are kept as a bitmask per window: bit (code - 1).
_BIT = {code: np.uint8(1 << (code - 1)) for code in WINDOW_REASONS}
_B_NOBETA, _B_COLLAPSED, _B_EDGE, _B_UNSURE, _B_DUP, _B_OVERLAP = (_BIT[c] for c in WINDOW_REASONS)
# primary reason code of each bitmask value: its lowest set bit
_PRIMARY = np.zeros(256, dtype=np.uint8)
for _m in range(1, 256):
    _PRIMARY[_m] = (_m & -_m).bit_length()
_HAS_BIT = {code: (np.arange(256) & int(_BIT[code])) != 0 for code in WINDOW_REASONS}

PERCENTILES = (5, 25, 50, 75, 95)
HIST_BINS = 24


class Cancelled(Exception):
    """`compute` stopped because its `cancel` callable returned True."""


@dataclass(frozen=True)
class WindowParams:
    k: int = 5
    alpha: float = 4.9
    min_window: float = 1.0
    narration_pass: int | str = 1  # 1, 2 or "both"

    def validated(self) -> WindowParams:
        """The same parameters in canonical form, or ConfigError naming the bad one."""
        try:
            k = int(self.k)
        except (TypeError, ValueError):
            raise ConfigError(f"k must be a whole number >= 1, got {self.k!r}") from None
        if k != self.k or k < 1:
            raise ConfigError(f"k must be a whole number >= 1, got {self.k!r}")
        try:
            alpha = float(self.alpha)
            min_window = float(self.min_window)
        except (TypeError, ValueError):
            raise ConfigError(
                f"alpha and min_window must be numbers, got {self.alpha!r}, {self.min_window!r}"
            ) from None
        if not np.isfinite(alpha) or alpha <= 0:
            raise ConfigError(f"alpha must be a number > 0, got {self.alpha!r}")
        if not np.isfinite(min_window) or min_window < 0:
            raise ConfigError(f"min_window must be a number of seconds >= 0, got {self.min_window!r}")
        p = str(self.narration_pass).strip().lower()
        if p not in ("1", "2", "both"):
            raise ConfigError(f"narration pass must be 1, 2 or both, got {self.narration_pass!r}")
        return WindowParams(k, alpha, min_window, p if p == "both" else int(p))


# ----------------------------------------------------------------------------------------------
# Parameter-independent preparation, once per (index, narration pass)


class _Table:
    """The narrations of one pass selection: CSR by video, sorted by time within each video."""

    def __init__(self, index: Index, narration_pass: int | str):
        if narration_pass == "both":
            p1, p2 = index.passes[1], index.passes[2]
            n1, n2 = len(p1), len(p2)
            t1, t2 = np.asarray(p1.time), np.asarray(p2.time)
            off1, off2 = np.asarray(p1.video_offsets), np.asarray(p2.video_offsets)
            v1, v2 = _row_video(off1), _row_video(off2)
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


def _row_video(video_offsets: np.ndarray) -> np.ndarray:
    V = len(video_offsets) - 1
    return np.repeat(np.arange(V, dtype=np.int32), np.diff(video_offsets))


class _Prepared:
    """Everything about one pass selection that no parameter changes."""

    def __init__(self, index: Index, narration_pass: int | str, cancel: Callable[[], bool] | None):
        tab = self.table = _Table(index, narration_pass)
        voff = tab.video_offsets
        self.N = len(tab.time)
        rowvid = self.rowvid = _row_video(voff)
        n_clips = np.diff(index.clip_offsets)
        self.n_rows = np.diff(voff)
        self.video_excluded = np.asarray(index.excluded, dtype=bool)
        self.video_no_features = ~np.asarray(index.has_features, dtype=bool)
        self.video_no_clips = n_clips == 0
        used = self.video_used = ~self.video_excluded & ~self.video_no_features & ~self.video_no_clips
        self.row_used = used[rowvid]
        _check(cancel)
        a, b, live = self._clip_rows(index)
        _check(cancel)
        cnt, firstclip = self._cover(a, b, live)
        _check(cancel)
        self._staircase(index, a, b, live, cnt, firstclip)
        _check(cancel)
        self._runs(cnt)
        self._row_bits()
        self._beta(index)

    def _clip_rows(self, index: Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row range [a, b) of each clip: the rows of its video with clip_start <= t <= clip_end.

        Working in row space makes "first and last narration in the clip" an integer test.
        """
        T, voff = self.table.time, self.table.video_offsets
        C = len(index.clip_uids)
        a = np.zeros(C, dtype=np.int64)
        b = np.zeros(C, dtype=np.int64)
        cs_all, ce_all = index.clip_start, index.clip_end
        for v in np.flatnonzero(self.video_used & (self.n_rows > 0)):
            cl = index.clips_of(int(v))
            lo, hi = int(voff[v]), int(voff[v + 1])
            seg = T[lo:hi]
            a[cl] = np.searchsorted(seg, cs_all[cl], "left") + lo
            b[cl] = np.searchsorted(seg, ce_all[cl], "right") + lo
        finite = np.isfinite(cs_all) & np.isfinite(ce_all)
        b = np.where(finite & (b > a), b, a)
        self.clip_a, self.clip_b = a, b
        return a, b, np.flatnonzero(b > a)

    def _cover(self, a: np.ndarray, b: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How many clips hold each row, and (for rows held by one clip) which; and `room`."""
        N = self.N
        cover = np.bincount(a[live], minlength=N + 1) - np.bincount(b[live], minlength=N + 1)
        cnt = np.cumsum(cover[:N]).astype(np.int32)
        idsum = np.cumsum(
            (np.bincount(a[live], weights=live, minlength=N + 1) - np.bincount(b[live], weights=live, minlength=N + 1))[
                :N
            ]
        )
        firstclip = np.where(cnt == 1, np.rint(idsum), -1).astype(np.int32)
        self.cover = cnt
        # room[i]: how many rows from i on still lie in one clip that also holds row i. Clips of
        # earlier videos end at or before row i, so a global running max needs no per-video reset.
        maxb = np.zeros(N, dtype=np.int64)
        np.maximum.at(maxb, a[live], b[live])
        np.maximum.accumulate(maxb, out=maxb)
        self.room = (maxb - np.arange(N, dtype=np.int64)).astype(np.int32)
        return cnt, firstclip

    def _staircase(
        self, index: Index, a: np.ndarray, b: np.ndarray, live: np.ndarray, cnt: np.ndarray, firstclip: np.ndarray
    ) -> None:
        """Rows held by several (overlapping) clips: per row, the clips that hold it in ego4d.json
        order, keeping only those that reach further than all earlier ones (a staircase). The
        parent of a group starting there is the first step that reaches its last row."""
        N, C = self.N, len(index.clip_uids)
        multi = cnt >= 2
        self.multi_pos = np.concatenate([[0], np.cumsum(multi)]).astype(np.int32)
        self.st_key = np.zeros(0, dtype=np.int64)
        self.st_clip = np.zeros(0, dtype=np.int32)
        if multi.any():
            mp = self.multi_pos
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
            mrows = np.flatnonzero(multi)
            firstclip[mrows] = self.st_clip[np.searchsorted(self.st_key, mp[mrows].astype(np.int64) * (N + 1), "left")]
        self.firstclip = firstclip
        has = firstclip >= 0
        fc = np.maximum(firstclip, 0)
        self.home_start = np.where(has, index.clip_start[fc], np.nan) if C else np.full(N, np.nan)
        self.home_end = np.where(has, index.clip_end[fc], np.nan) if C else np.full(N, np.nan)
        self.b_first = (np.where(has, b[fc], 0) if C else np.zeros(N)).astype(np.int32)

    def _runs(self, cnt: np.ndarray) -> None:
        """Runs: rows left in the video from i on, and how many rows in no clip come before i."""
        N, rowvid, row_used = self.N, self.rowvid, self.row_used
        voff = self.table.video_offsets
        self.video_room = ((voff[1:][rowvid] if N else np.zeros(0, np.int64)) - np.arange(N, dtype=np.int64)).astype(
            np.int32
        )
        noclip = row_used & (cnt == 0)
        self.noclip_prefix = np.concatenate([[0], np.cumsum(noclip)]).astype(np.int32)
        self.narrations_no_clip = int(noclip.sum())
        self.narrations_used = int(row_used.sum())
        # Lengths of the stretches of consecutive rows (one used video) that all lie in a clip:
        # a run without a no-clip narration lies inside one of them.
        inside = np.flatnonzero(row_used & (cnt > 0))
        if len(inside):
            brk = np.flatnonzero((np.diff(inside) != 1) | (rowvid[inside[1:]] != rowvid[inside[:-1]])) + 1
            edges = np.concatenate([[0], brk, [len(inside)]])
            self.stretch_len = np.diff(edges)
        else:
            self.stretch_len = np.zeros(0, dtype=np.int64)
        self.used_rows_per_video = np.where(self.video_used, self.n_rows, 0)

    def _row_bits(self) -> None:
        """Reasons that depend only on the narration."""
        N, T, rowvid = self.N, self.table.time, self.rowvid
        bits = np.zeros(N, dtype=np.uint8)
        np.bitwise_or(bits, _B_UNSURE, out=bits, where=(self.table.flags & FLAG_UNSURE) != 0)
        if N > 1:
            same = (rowvid[1:] == rowvid[:-1]) & (T[1:] == T[:-1])
            dup = np.zeros(N, dtype=bool)
            dup[1:] |= same
            dup[:-1] |= same
            np.bitwise_or(bits, _B_DUP, out=bits, where=dup)
        self.row_bits = bits

    def _beta(self, index: Index) -> None:
        """beta per video. np.add.reduce per video, not reduceat: the notebook's np.mean sums
        pairwise, and windows must match it to the last bit."""
        N, T, rowvid, V = self.N, self.table.time, self.rowvid, index.n_videos
        beta = np.full(V, np.nan)
        if N > 1:
            gap = T[1:] - T[:-1]
            pos = (gap > 0) & (rowvid[1:] == rowvid[:-1]) & self.row_used[1:]
            g = gap[pos]
            gv = rowvid[1:][pos]
            goff = np.searchsorted(gv, np.arange(V + 1))
            add = np.add.reduce
            for v in np.flatnonzero(goff[1:] > goff[:-1]):
                s, e = goff[v], goff[v + 1]
                beta[v] = add(g[s:e]) / (e - s)
        self.beta = beta


class _Groups:
    """The groups for one k (parent clips found), and how many windows each row appears in.

    The per-parameter step works per narration row, not per window: a row held by a single clip
    has the same window in every group it is in (that clip is every such group's parent), so
    its figures are computed once and weighted by how many groups hold it as first, middle or
    last narration (only the overlap reason depends on that position). `wkey` packs those
    three counts per row (bit 7: first, bit 8: last, bits 9+: middle) above the 7 bits of the
    row's reasons, so that one bincount gives every window figure. Windows whose group's parent
    is not their row's first clip (overlapping clips) are the `fix` groups, computed explicitly.
    """

    def __init__(self, prep: _Prepared, index: Index, k: int):
        N = prep.N
        self.k = k
        starts = prep.room >= k
        self.row = np.flatnonzero(starts)
        self._prep = prep
        multi = prep.multi_pos[-1] > 0 if N else False

        first = starts.view(np.uint8).astype(np.int32)
        if k == 1:
            self.wkey = first << 7
        elif N < k:
            self.wkey = np.zeros(N, dtype=np.int32)
        else:
            s = np.zeros(N + 1, dtype=np.int32)
            np.cumsum(first, out=s[1:])
            lastw = np.zeros(N, dtype=np.int32)
            lastw[k - 1 :] = first[: N - k + 1]
            mid = s[1:].copy()
            mid[k:] -= s[1 : N - k + 1]  # mid = groups holding r = s[r+1] - s[r-k+1] ...
            mid -= first  # ... minus those where r is first or last
            mid -= lastw
            self.wkey = (first << 7) | (lastw << 8) | (mid << 9)

        # Groups with a window whose row's first clip is not the group's parent: only where
        # clips overlap (a row held by two clips).
        cand = np.zeros(0, dtype=np.int64)
        if len(self.row) and multi:
            mp = prep.multi_pos
            cand = np.flatnonzero(mp[self.row + k] - mp[self.row] > 0)
            rows = self.row[cand][:, None] + np.arange(k)
            cand = cand[(prep.firstclip[rows] != self.clip[cand][:, None]).any(axis=1)]
        self.fix = cand
        self.fix_rows = self.row[cand][:, None] + np.arange(k)

        # Runs that are not groups: with a narration in no clip, or else straddling clips.
        self.runs = int(np.maximum(prep.used_rows_per_video - k + 1, 0).sum())
        inside = int(np.maximum(prep.stretch_len - k + 1, 0).sum())
        self.n_no_clip = self.runs - inside
        self.n_straddle = inside - len(self.row)

    @cached_property
    def clip(self) -> np.ndarray:
        """Parent clip of each group: its first row's first clip, unless that one ends before
        the group's last row (overlapping clips): then the first that reaches it."""
        prep, k, N = self._prep, self.k, self._prep.N
        clip = prep.firstclip[self.row]
        if N and prep.multi_pos[-1] > 0:
            last = self.row + (k - 1)
            other = np.flatnonzero(prep.b_first[self.row] <= last)
            if len(other):
                key = prep.multi_pos[self.row[other]].astype(np.int64) * (N + 1) + last[other]
                clip[other] = prep.st_clip[np.searchsorted(prep.st_key, key, "right")]
        return clip

    @cached_property
    def video(self) -> np.ndarray:
        return self._prep.rowvid[self.row]


class WindowEngine:
    """Caches the parameter-independent work for one Index; see the module docstring."""

    def __init__(self, index: Index):
        self.index = index
        self._prepared: dict = {}
        self._groups: dict = {}  # (pass, k) -> _Groups; only the latest few k are kept
        self._lock = threading.Lock()

    @classmethod
    def of(cls, index: Index) -> WindowEngine:
        eng = index.__dict__.get("_window_engine")
        if eng is None:
            eng = index.__dict__["_window_engine"] = cls(index)
        return eng

    def _check_inputs(self) -> None:
        # which videos are used can change on the same Index (e.g. a feature folder rescanned):
        # then nothing cached is valid any more
        idx = self.index
        sig = (
            np.asarray(idx.excluded).tobytes(),
            np.asarray(idx.has_features).tobytes(),
            len(idx.clip_uids),
            tuple(len(a) for a in idx.passes.values()),
        )
        if sig != getattr(self, "_sig", None):
            self._prepared.clear()
            self._groups.clear()
            self._sig = sig

    def prepared(self, narration_pass, cancel=None) -> _Prepared:
        prep = self._prepared.get(narration_pass)
        if prep is None:
            prep = self._prepared[narration_pass] = _Prepared(self.index, narration_pass, cancel)
        return prep

    def groups(self, narration_pass, k: int, cancel=None) -> _Groups:
        key = (narration_pass, k)
        grp = self._groups.get(key)
        if grp is None:
            prep = self.prepared(narration_pass, cancel)
            _check(cancel)
            grp = _Groups(prep, self.index, k)
            while len(self._groups) >= 2:  # each holds (groups, k) arrays: keep memory bounded
                self._groups.pop(next(iter(self._groups)))
            self._groups[key] = grp
        return grp

    def compute(self, params: WindowParams, cancel: Callable[[], bool] | None = None) -> WindowResult:
        params = params.validated()
        with self._lock:
            t0 = _time.perf_counter()
            _check(cancel)
            self._check_inputs()
            prep = self.prepared(params.narration_pass, cancel)
            grp = self.groups(params.narration_pass, params.k, cancel)
            _check(cancel)
            res = _windows(self.index, prep, grp, params, cancel)
            res.compute_seconds = _time.perf_counter() - t0
            return res


def compute(index: Index, params: WindowParams | None = None, cancel: Callable[[], bool] | None = None) -> WindowResult:
    """Groups, windows and reasons for `params` (defaults: the notebook's) over the whole index."""
    return WindowEngine.of(index).compute(params or WindowParams(), cancel)


def _check(cancel) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


# ----------------------------------------------------------------------------------------------
# The per-parameter step


def _explicit(table_time, row_bits, rows, half, cs, ce):
    """Bits, start, end and cut of windows given as a (groups, k) matrix of rows, with each
    group's half-window and parent clip bounds: the plain per-window computation."""
    t = table_time[rows]
    h, cs, ce = half[:, None], cs[:, None], ce[:, None]
    lo, hi = t - h, t + h
    start, end = np.maximum(lo, cs), np.minimum(hi, ce)
    cut = (cs > lo) | (ce < hi)
    bits = row_bits[rows].copy()
    np.bitwise_or(bits, _B_EDGE, out=bits, where=cut)
    np.bitwise_or(bits, _B_COLLAPSED, out=bits, where=start >= end)
    if rows.shape[1] > 1:
        # Windows grow with t inside one clip, so only neighbours can be the first to overlap.
        ov = start[:, 1:] < end[:, :-1]
        np.bitwise_or(bits[:, :-1], _B_OVERLAP, out=bits[:, :-1], where=ov)
        np.bitwise_or(bits[:, 1:], _B_OVERLAP, out=bits[:, 1:], where=ov)
    nb = np.isnan(h[:, 0])
    bits[nb] |= _B_NOBETA
    return bits, start, end, cut


def _row_windows(prep: _Prepared, k: int, half_video: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every row's window in its first clip (NaN bounds where it has none: all tests false):
    (reason bits, start, end, cut at the clip's edge)."""
    T, N = prep.table.time, prep.N
    h = half_video[prep.rowvid]
    lo = T - h
    start = np.maximum(lo, prep.home_start)
    cut = prep.home_start > lo
    del lo
    hi = T + h
    end = np.minimum(hi, prep.home_end)
    cut |= prep.home_end < hi
    del hi
    rbx = prep.row_bits.copy()
    np.bitwise_or(rbx, _B_EDGE, out=rbx, where=cut)
    np.bitwise_or(rbx, _B_COLLAPSED, out=rbx, where=start >= end)
    np.bitwise_or(rbx, _B_NOBETA, out=rbx, where=np.isnan(h))
    del h
    if k > 1 and N > 1:
        # bit 5: overlaps the next row's window; bit 6: the previous row's (used only where
        # both rows are in one group, which then has their common clip as parent)
        ov = start[1:] < end[:-1]
        np.bitwise_or(rbx[:-1], _B_OVERLAP, out=rbx[:-1], where=ov)
        np.bitwise_or(rbx[1:], _OV_BEFORE, out=rbx[1:], where=ov)
    return rbx, start, end, cut


def _windows(index: Index, prep: _Prepared, grp: _Groups, params: WindowParams, cancel) -> WindowResult:
    k, N, V = grp.k, prep.N, index.n_videos
    T = prep.table.time
    d_video = np.maximum(params.min_window, prep.beta / params.alpha)  # NaN where no beta
    half_video = d_video / 2
    rbx, start, end, cut = _row_windows(prep, k, half_video)
    _check(cancel)

    key = grp.wkey + rbx
    counts = np.bincount(key)
    lut = _KeyTable(len(counts))
    hist = lut.window_hist(counts)
    # per row: usable windows (high 32 bits) and uncut windows with a beta (low 32 bits)
    per_row = lut.packed[key]
    del key
    csum = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(per_row, out=csum[1:])
    voff = prep.table.video_offsets
    per_video = csum[voff[1:]] - csum[voff[:-1]]
    usable_per_video = (per_video >> 32).astype(np.float64)
    uncut_per_video = (per_video & 0xFFFFFFFF).astype(np.float64)
    cut_rows = np.flatnonzero(cut)
    cut_w = lut.every[grp.wkey[cut_rows] >> 7].astype(np.float64)
    nb = (rbx[cut_rows] & _B_NOBETA) != 0
    cut_w[nb] = 0
    cut_vals = end[cut_rows] - start[cut_rows]
    _check(cancel)

    fix_bits = None
    if len(grp.fix):
        # Overlapping clips: swap the row-based figures of these groups for the real ones.
        g, rows = grp.fix, grp.fix_rows
        fv = grp.video[g]
        approx = _variant_bits(rbx, grp.row[g], k)
        fix_bits, fs, fe, fcut = _explicit(
            T, prep.row_bits, rows, half_video[fv], index.clip_start[grp.clip[g]], index.clip_end[grp.clip[g]]
        )
        hist += np.bincount(fix_bits.ravel(), minlength=256) - np.bincount(approx.ravel(), minlength=256)
        fnb = np.isnan(half_video[fv])[:, None]
        vids = np.broadcast_to(fv[:, None], rows.shape)
        old_cut, old_dur = cut[rows], (end - start)[rows]
        uncut_per_video += np.bincount(vids[~fcut & ~fnb], minlength=V) - np.bincount(
            vids[~old_cut & ~fnb], minlength=V
        )
        usable_per_video += np.bincount(vids[fix_bits == 0], minlength=V) - np.bincount(vids[approx == 0], minlength=V)
        new_cut = fcut & ~fnb
        old_cut = old_cut & ~fnb
        cut_vals = np.concatenate([cut_vals, (fe - fs)[new_cut], old_dur[old_cut]])
        cut_w = np.concatenate([cut_w, np.ones(int(new_cut.sum())), -np.ones(int(old_cut.sum()))])
    _check(cancel)
    dv = np.nan_to_num(d_video)
    return WindowResult(
        index=index,
        params=params,
        prep=prep,
        groups=grp,
        rbx=rbx,
        fix_bits=fix_bits,
        d_video=d_video,
        hist=hist,
        durations=_merge_weights(np.concatenate([dv, cut_vals]), np.concatenate([uncut_per_video, cut_w])),
        usable_durations=_merge_weights(dv, usable_per_video),
    )


_OV_BEFORE = np.uint8(64)  # rbx only: overlaps the previous row's window


def _first_bits(x):
    return x & 63


def _last_bits(x):
    return (x & 31) | ((x & 64) >> 1)


def _mid_bits(x):
    return (x & 31) | (((x >> 1) | x) & 32)


class _KeyTable:
    """Decodes `wkey + rbx` keys (see _Groups): window reason bits and counts per key."""

    def __init__(self, n: int):
        key = np.arange(n, dtype=np.int64)
        x = key & 127
        self.first = (key >> 7) & 1
        self.last = (key >> 8) & 1
        self.mid = key >> 9
        self.bf, self.bm, self.bl = _first_bits(x), _mid_bits(x), _last_bits(x)
        usable = self.first * (self.bf == 0) + self.mid * (self.bm == 0) + self.last * (self.bl == 0)
        every = self.first + self.mid + self.last
        uncut = np.where((x & int(_B_EDGE | _B_NOBETA)) == 0, every, 0)
        self.packed = (usable << 32) | uncut
        # windows per row, indexed by wkey >> 7
        w = np.arange(max(n >> 7, 1) + 1, dtype=np.int64)
        self.every = (w & 1) + ((w >> 1) & 1) + (w >> 2)

    def window_hist(self, counts: np.ndarray) -> np.ndarray:
        hist = np.zeros(256, dtype=np.int64)
        nz = np.flatnonzero(counts)
        c = counts[nz]
        for bits, mult in ((self.bf, self.first), (self.bm, self.mid), (self.bl, self.last)):
            np.add.at(hist, bits[nz], c * mult[nz])
        return hist


def _variant_bits(rbx, first_rows: np.ndarray, k: int) -> np.ndarray:
    """(groups, k) reason bits of the groups starting at `first_rows`, from the per-row bits
    (`rbx`): a row's bits differ only by whether it is first, middle or last in its group."""
    if not len(first_rows):
        return np.zeros((0, k), dtype=np.uint8)
    x = sliding_window_view(rbx, k)[first_rows]
    if k == 1:
        return x & 31
    bits = _mid_bits(x)
    bits[:, 0] = _first_bits(x[:, 0])
    bits[:, -1] = _last_bits(x[:, -1])
    return bits


def _merge_weights(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal values summed into one (values sorted); the removals of fix-ups cancel out here."""
    keep = weights != 0
    u, inv = np.unique(values[keep], return_inverse=True)
    w = np.rint(np.bincount(inv.ravel(), weights=weights[keep], minlength=len(u)))
    return u, w


# WindowResult reads the tables above; it lives in its own module (imported last: no cycle).
from engine.window_result import WindowResult, weighted_percentiles  # noqa: E402, F401
