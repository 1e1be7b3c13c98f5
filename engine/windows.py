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
narration pass does the parameter-independent work (engine/windows_prep.py: which clips hold
which narration, beta per video, `#unsure` and duplicate flags); the first call per `k` finds
the groups; a change of alpha or min_window redoes only the window arithmetic, per narration
row rather than per window (a row held by one clip has the same window in each of its groups;
see `_Groups`). Results are immutable snapshots; a newer compute never changes an older
result. `compute` may be called from a worker thread (one compute runs at a time per index).
How this scales to the whole of Ego4D: docs/ARCHITECTURE.md, "Scale"; bench/bench_windows.py
measures it.
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
from engine.index import Index
from engine.windows_prep import Cancelled, Prepared, check_cancel  # noqa: F401 (Cancelled: part of this API)

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
# Groups for one k


class _Groups:
    """The groups for one k (parent clips found), and how many windows each row appears in.

    The per-parameter step works per narration row, not per window: a row held by a single clip
    has the same window in every group it is in (that clip is every such group's parent), so
    its figures are computed once and weighted by how many groups hold it as first, middle or
    last narration (only the overlap reason depends on that position). `wkey_at(rows)` packs
    those three counts per row (bit 7: first, bit 8: last, bits 9+: middle) above the 7 bits of
    the row's reasons, so that one bincount gives every window figure; it is asked only for the
    rows that have a reason, as the others' windows are all usable (`wkey` holds it for every
    row, for a pass selection where most rows have one). Windows whose group's parent is not
    their row's first clip (overlapping clips) are the `fix` groups, computed explicitly.
    """

    def __init__(self, prep: Prepared, index: Index, k: int):
        N = prep.N
        self.k = k
        self._prep = prep
        before = self._starts_before = np.zeros(N + 1, dtype=np.int32)  # groups starting before row i
        np.cumsum(prep.room >= k, dtype=np.int32, out=before[1:])
        self.n = int(before[-1])  # groups
        voff = prep.table.video_offsets
        self.per_video = (before[voff[1:]] - before[voff[:-1]]).astype(np.int64)

        # Groups with a window whose row's first clip is not the group's parent: only where
        # clips overlap (a row held by two clips).
        cand = np.zeros(0, dtype=np.int64)
        if self.n and prep.has_multi:
            mp = prep.multi_pos
            assert mp is not None
            cand = np.flatnonzero(mp[self.row + k] - mp[self.row] > 0)
            rows = self.row[cand][:, None] + np.arange(k)
            cand = cand[(prep.firstclip[rows] != self.clip[cand][:, None]).any(axis=1)]
        self.fix = cand
        self.fix_rows = self.row[cand][:, None] + np.arange(k) if len(cand) else np.zeros((0, k), dtype=np.int64)

        # Runs that are not groups: with a narration in no clip, or else straddling clips.
        self.runs = int(np.maximum(prep.used_rows_per_video - k + 1, 0).sum())
        inside = int(np.maximum(prep.stretch_len - k + 1, 0).sum())
        self.n_no_clip = self.runs - inside
        self.n_straddle = inside - self.n

    @cached_property
    def row(self) -> np.ndarray:
        """First row of each group (int64, ascending): the rows with room for k."""
        return np.flatnonzero(self._prep.room >= self.k)

    def wkey_at(self, rows: np.ndarray) -> np.ndarray:
        """The packed window counts (see the class docstring) of the given rows (ascending)."""
        k, before = self.k, self._starts_before
        b1, b0 = before[rows + 1], before[rows]
        first = b1 - b0
        if k == 1:
            return first << 7
        lo = np.maximum(rows - (k - 1), 0)
        l0 = before[lo]
        last = before[lo + 1] - l0  # groups whose last row is this one: those starting at lo ...
        last[: np.searchsorted(rows, k - 1)] = 0  # ... which rows before k - 1 have none of
        mid = b1 - l0 - first - last
        return (first << 7) | (last << 8) | (mid << 9)

    @cached_property
    def wkey(self) -> np.ndarray:
        """`wkey_at` of every row (int32), for when most rows are asked for."""
        N, k, before = self._prep.N, self.k, self._starts_before
        first = before[1:] - before[:-1]
        if k == 1:
            return first << 7
        if N < k:
            return np.zeros(N, dtype=np.int32)
        last = np.zeros(N, dtype=np.int32)
        last[k - 1 :] = first[: N - k + 1]
        mid = before[1:].copy()
        mid[k - 1 :] -= before[: N - k + 1]
        mid -= first
        mid -= last
        return (first << 7) | (last << 8) | (mid << 9)

    @cached_property
    def clip(self) -> np.ndarray:
        """Parent clip of each group: its first row's first clip, unless that one ends before
        the group's last row (overlapping clips): then the first that reaches it."""
        prep, k, N = self._prep, self.k, self._prep.N
        clip = prep.firstclip[self.row]
        if prep.has_multi:
            assert prep.multi_pos is not None
            last = self.row + (k - 1)
            other = np.flatnonzero(prep.b_first[self.row] <= last)
            if len(other):
                key = prep.multi_pos[self.row[other]].astype(np.int64) * (N + 1) + last[other]
                clip[other] = prep.st_clip[np.searchsorted(prep.st_key, key, "right")]
        return clip

    @cached_property
    def video(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.per_video), dtype=np.int32), self.per_video)


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

    def prepared(self, narration_pass, cancel=None) -> Prepared:
        prep = self._prepared.get(narration_pass)
        if prep is None:
            prep = self._prepared[narration_pass] = Prepared(self.index, narration_pass, cancel)
        return prep

    def groups(self, narration_pass, k: int, cancel=None) -> _Groups:
        key = (narration_pass, k)
        grp = self._groups.get(key)
        if grp is None:
            prep = self.prepared(narration_pass, cancel)
            check_cancel(cancel)
            grp = _Groups(prep, self.index, k)
            while len(self._groups) >= 2:  # each holds (groups, k) arrays: keep memory bounded
                self._groups.pop(next(iter(self._groups)))
            self._groups[key] = grp
        return grp

    def compute(self, params: WindowParams, cancel: Callable[[], bool] | None = None) -> WindowResult:
        params = params.validated()
        with self._lock:
            t0 = _time.perf_counter()
            check_cancel(cancel)
            self._check_inputs()
            prep = self.prepared(params.narration_pass, cancel)
            grp = self.groups(params.narration_pass, params.k, cancel)
            check_cancel(cancel)
            res = _windows(self.index, prep, grp, params, cancel)
            res.compute_seconds = _time.perf_counter() - t0
            return res


def compute(index: Index, params: WindowParams | None = None, cancel: Callable[[], bool] | None = None) -> WindowResult:
    """Groups, windows and reasons for `params` (defaults: the notebook's) over the whole index."""
    return WindowEngine.of(index).compute(params or WindowParams(), cancel)


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


# Bit positions in the per-row bits (`rbx`): the window reasons' (code - 1), and one more.
_S_COLLAPSED, _S_EDGE, _S_OVERLAP = 1, 2, 5
_OV_BEFORE_SHIFT = 6  # rbx only: overlaps the previous row's window


def _row_windows(prep: Prepared, k: int, half_video: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every row's window in its first clip (NaN bounds where it has none: all tests false):
    (reason bits, start, end, cut at the clip's edge). Rows of videos that are not used get
    no no_beta bit: no group holds them."""
    T, N = prep.table.time, prep.N
    h = np.repeat(half_video, prep.n_rows)
    start = T - h
    cut = prep.home_start > start
    np.maximum(start, prep.home_start, out=start)
    end = np.add(T, h, out=h)
    cut |= prep.home_end < end
    np.minimum(end, prep.home_end, out=end)
    rbx = prep.row_bits | (cut.view(np.uint8) << _S_EDGE)
    rbx |= (start >= end).view(np.uint8) << _S_COLLAPSED
    nobeta = np.isnan(half_video) & prep.video_used
    if nobeta.any():
        rbx |= np.repeat(nobeta.view(np.uint8), prep.n_rows)  # no_beta is bit 0
    if k > 1 and N > 1:
        # bit 5: overlaps the next row's window; bit 6: the previous row's (used only where
        # both rows are in one group, which then has their common clip as parent)
        ov = (start[1:] < end[:-1]).view(np.uint8)
        rbx[:-1] |= ov << _S_OVERLAP
        rbx[1:] |= ov << _OV_BEFORE_SHIFT
    return rbx, start, end, cut


def _windows(index: Index, prep: Prepared, grp: _Groups, params: WindowParams, cancel) -> WindowResult:
    k, V = grp.k, len(prep.n_rows)
    T = prep.table.time
    d_video = np.maximum(params.min_window, prep.beta / params.alpha)  # NaN where no beta
    half_video = d_video / 2
    rbx, start, end, cut = _row_windows(prep, k, half_video)
    check_cancel(cancel)

    windows_per_video = grp.per_video * k
    if np.count_nonzero(rbx) * _DENSE_SHARE > prep.N:
        hist, usable_per_video, lut = _counts_dense(prep, grp, rbx)
    else:
        hist, usable_per_video, lut = _counts_sparse(prep, grp, rbx, windows_per_video)
    cut_rows = np.flatnonzero(cut)
    cut_w = lut.every[grp.wkey_at(cut_rows) >> 7].astype(np.float64)
    cut_per_video = np.bincount(prep.rowvid[cut_rows], weights=cut_w, minlength=V)
    uncut_per_video = np.where(np.isnan(d_video), 0.0, windows_per_video - cut_per_video)
    cut_vals = end[cut_rows] - start[cut_rows]
    check_cancel(cancel)

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
        old_cut, old_dur = cut[rows], end[rows] - start[rows]
        uncut_per_video += np.bincount(vids[~fcut & ~fnb], minlength=V) - np.bincount(
            vids[~old_cut & ~fnb], minlength=V
        )
        usable_per_video += np.bincount(vids[fix_bits == 0], minlength=V) - np.bincount(vids[approx == 0], minlength=V)
        new_cut = fcut & ~fnb
        old_cut = old_cut & ~fnb
        cut_vals = np.concatenate([cut_vals, (fe - fs)[new_cut], old_dur[old_cut]])
        cut_w = np.concatenate([cut_w, np.ones(int(new_cut.sum())), -np.ones(int(old_cut.sum()))])
    check_cancel(cancel)
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


# The per-row figures visit only the rows with a reason when fewer than 1 in _DENSE_SHARE rows
# has one (one pass: most narrations); else every row (the merged passes: about half).
_DENSE_SHARE = 4


def _counts_sparse(prep: Prepared, grp: _Groups, rbx: np.ndarray, windows_per_video: np.ndarray) -> tuple:
    """(window histogram by reason bits, usable windows per video, key table), visiting only
    the rows with a reason: the others' windows are all usable and uncut."""
    nz = np.flatnonzero(rbx)
    wk = grp.wkey_at(nz)
    key = wk + rbx[nz]
    lut = _KeyTable(int(key.max()) + 1 if len(key) else 128)
    hist = lut.window_hist(np.bincount(key, minlength=lut.n))
    every_nz = lut.every[wk >> 7]
    hist[0] += int(windows_per_video.sum()) - int(every_nz.sum())
    lost = np.bincount(prep.rowvid[nz], weights=every_nz - lut.usable[key], minlength=len(windows_per_video))
    return hist, windows_per_video - lost, lut


def _counts_dense(prep: Prepared, grp: _Groups, rbx: np.ndarray) -> tuple:
    """The same as `_counts_sparse`, over every row: one pass each, no lookups by row."""
    key = grp.wkey + rbx
    counts = np.bincount(key, minlength=128)
    lut = _KeyTable(len(counts))
    csum = np.zeros(prep.N + 1, dtype=np.int64)
    np.cumsum(lut.usable[key], out=csum[1:])
    voff = prep.table.video_offsets
    return lut.window_hist(counts), csum[voff[1:]] - csum[voff[:-1]], lut


def _first_bits(x):
    return x & 63


def _last_bits(x):
    return (x & 31) | ((x & 64) >> 1)


def _mid_bits(x):
    return (x & 31) | (((x >> 1) | x) & 32)


class _KeyTable:
    """Decodes `wkey + rbx` keys (see _Groups): window reason bits and counts per key."""

    def __init__(self, n: int):
        self.n = n
        key = np.arange(n, dtype=np.int64)
        x = key & 127
        self.first = (key >> 7) & 1
        self.last = (key >> 8) & 1
        self.mid = key >> 9
        self.bf, self.bm, self.bl = _first_bits(x), _mid_bits(x), _last_bits(x)
        self.usable = self.first * (self.bf == 0) + self.mid * (self.bm == 0) + self.last * (self.bl == 0)
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
    """Equal values summed into one (values sorted); the removals of fix-ups cancel out here.

    np.unique's way (sort, then a new value where it changes) without np.unique, whose first
    call imports numpy.ma; a stable sort keeps each value's weights in their order, so the
    sums are np.unique's and bincount's to the last bit."""
    keep = weights != 0
    v, w = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v = v[order]
    new = np.ones(len(v), dtype=bool)
    np.not_equal(v[1:], v[:-1], out=new[1:])
    group = np.cumsum(new) - 1
    return v[new], np.rint(np.bincount(group, weights=w[order], minlength=int(new.sum())))


# WindowResult reads the tables above; it lives in its own module (imported last: no cycle).
from engine.window_result import WindowResult, weighted_percentiles  # noqa: E402, F401
