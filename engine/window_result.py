"""The result of one window computation: figures, per-window fields and rows for the lab's
tables, computed on demand from the engine's compact arrays (docs/ARCHITECTURE.md, "The pipeline")."""

from __future__ import annotations

from dataclasses import asdict
from functools import cached_property

import numpy as np

from engine.errors import ConfigError
from engine.windows import (
    _BIT,
    _HAS_BIT,
    _PRIMARY,
    HIST_BINS,
    PERCENTILES,
    REASON_CODE,
    REASONS,
    WINDOW_REASONS,
    _variant_bits,
)


class WindowResult:
    """Groups and windows for one set of parameters. Columns are numpy arrays; see module doc.

    Over groups (length `n_groups`): `group_video`, `group_clip`, `group_row` (first narration
    row of the pass selection). Over windows (length `n_windows = n_groups * k`): `reason_bits`
    (uint8 bitmask, 0 = usable), and on first use `window_group`, `window_video`, `window_clip`,
    `window_row`, `window_t`, `window_start`, `window_end`, `window_duration` (NaN without beta),
    `window_reason` (uint8 primary reason code, 0 = usable).
    """

    compute_seconds: float = 0.0

    def __init__(self, *, index, params, prep, groups, rbx, fix_bits, d_video, hist, durations, usable_durations):
        self.index = index
        self.params = params
        self.k = groups.k
        self._prep = prep
        self._grp = groups
        self._rbx = rbx
        self._fix_bits = fix_bits
        self.d_video = d_video
        self.beta_video = prep.beta
        self._hist = hist
        self._durations = durations
        self._usable_durations = usable_durations
        self._rows_memo: dict = {}

    @property
    def group_row(self) -> np.ndarray:
        return self._grp.row

    @property
    def group_video(self) -> np.ndarray:
        return self._grp.video

    @property
    def group_clip(self) -> np.ndarray:
        return self._grp.clip

    # -- sizes
    @property
    def n_groups(self) -> int:
        return self._grp.n

    @property
    def n_windows(self) -> int:
        return self.n_groups * self.k

    @property
    def n_usable(self) -> int:
        return int(self._hist[0])

    # -- window columns
    @cached_property
    def reason_bits(self) -> np.ndarray:
        """uint8 bitmask of window reasons per window (bit code-1), 0 = usable."""
        bits = _variant_bits(self._rbx, self.group_row, self.k)
        if self._fix_bits is not None:
            bits[self._grp.fix] = self._fix_bits
        return bits.reshape(-1)

    @cached_property
    def window_group(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_groups, dtype=np.int64), self.k)

    @cached_property
    def window_video(self) -> np.ndarray:
        return np.repeat(self.group_video, self.k)

    @cached_property
    def window_clip(self) -> np.ndarray:
        return np.repeat(self.group_clip, self.k)

    @cached_property
    def window_row(self) -> np.ndarray:
        return (self.group_row[:, None] + np.arange(self.k)).reshape(-1)

    @cached_property
    def window_t(self) -> np.ndarray:
        return self._prep.table.time[self.window_row]

    @cached_property
    def _all_fields(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.window_fields(slice(None))

    @property
    def window_start(self) -> np.ndarray:
        return self._all_fields[1]

    @property
    def window_end(self) -> np.ndarray:
        return self._all_fields[2]

    @cached_property
    def window_duration(self) -> np.ndarray:
        return self.window_end - self.window_start

    @cached_property
    def window_reason(self) -> np.ndarray:
        return _PRIMARY[self.reason_bits]

    def window_fields(self, windows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, start, end) of the given windows (indices, mask or slice), computed exactly as the
        full compute does; start and end are NaN for windows of a video without beta."""
        w = _window_ids(windows, self.n_windows)  # no arange over all windows: rows are asked for 64 at a time
        g = w // self.k
        row = self.group_row[g] + w % self.k
        t = self._prep.table.time[row]
        half = (self.d_video / 2)[self.group_video[g]]
        clip = self.group_clip[g]
        start = np.maximum(t - half, self.index.clip_start[clip])
        end = np.minimum(t + half, self.index.clip_end[clip])
        nb = np.isnan(half)
        start[nb] = np.nan
        end[nb] = np.nan
        return t, start, end

    # -- selections for tables
    def rows(
        self, reason: int | str | None = None, video: int | str | None = None, usable: bool | None = None
    ) -> np.ndarray:
        """Window indices (int64, ascending) matching all given filters. Do not modify the array:
        the last few answers are kept, so the lab can ask again for free.

        `reason`: a window reason code or key; windows where it applies (not only as primary).
        A run reason selects nothing (runs have no windows; see `rejected_runs`).
        `video`: a video number or uid. `usable`: True = no reason, False = some reason.
        """
        code = None if reason is None else _reason_code(reason)
        v = None if video is None else (self.index.video_number(video) if isinstance(video, str) else int(video))
        memo_key = (code, v, usable)
        hit = self._rows_memo.get(memo_key)
        if hit is not None:
            return hit
        lo, hi = 0, self.n_windows
        if v is not None:
            lo = int(np.searchsorted(self.group_video, v, "left")) * self.k
            hi = int(np.searchsorted(self.group_video, v, "right")) * self.k
        bits = self.reason_bits[lo:hi]
        mask = None
        if code is not None:
            if code not in WINDOW_REASONS:
                return np.zeros(0, dtype=np.int64)
            mask = (bits & _BIT[code]) != 0
        if usable is not None:
            u = bits == 0 if usable else bits != 0
            mask = u if mask is None else mask & u
        out = np.arange(lo, hi, dtype=np.int64) if mask is None else np.flatnonzero(mask) + lo
        out.flags.writeable = False
        if len(self._rows_memo) >= 8:
            self._rows_memo.pop(next(iter(self._rows_memo)))
        self._rows_memo[memo_key] = out
        return out

    def group_windows(self, g: int) -> np.ndarray:
        return np.arange(g * self.k, (g + 1) * self.k, dtype=np.int64)

    @property
    def row_video(self) -> np.ndarray:
        """Video number of each narration row of the pass selection (int32)."""
        return self._prep.rowvid

    def rejected_runs(self, reason: int | str | None = None, video: int | str | None = None) -> np.ndarray:
        """First narration rows (of the pass selection) of runs that are not groups, optionally
        only those of one video (number or uid); `narration(row)` describes one."""
        prep, k, N = self._prep, self.k, self._prep.N
        not_group = prep.row_used & (prep.video_room >= k) & (prep.room < k)
        if video is not None:
            v = self.index.video_number(video) if isinstance(video, str) else int(video)
            only = np.zeros(N, dtype=bool)
            only[prep.table.video_offsets[v] : prep.table.video_offsets[v + 1]] = True
            not_group &= only
        has_noclip = np.zeros(N, dtype=bool)
        if N >= k:
            has_noclip[: N - k + 1] = (prep.noclip_prefix[k:] - prep.noclip_prefix[: N - k + 1]) > 0
        if reason is None:
            return np.flatnonzero(not_group)
        code = _reason_code(reason)
        if code == REASON_CODE["no_clip"]:
            return np.flatnonzero(not_group & has_noclip)
        if code == REASON_CODE["straddle"]:
            return np.flatnonzero(not_group & ~has_noclip)
        return np.zeros(0, dtype=np.int64)

    def narration(self, row: int) -> dict:
        """One narration of the pass selection: video, pass, time, text, flags."""
        prep, index = self._prep, self.index
        p, src = prep.table.source(int(row))
        arr = index.passes[p]
        v = int(prep.rowvid[row])
        return {
            "row": int(row),
            "video_uid": index.video_uids[v],
            "pass": p,
            "pass_row": src,
            "annotation_uid": arr.uid[src],
            "t": float(prep.table.time[row]),
            "text": arr.text[src],
        }

    def describe_window(self, i: int) -> dict:
        i = int(i)
        if not 0 <= i < self.n_windows:
            raise IndexError(f"window {i} out of range 0..{self.n_windows - 1}")
        g, pos = divmod(i, self.k)
        t, start, end = (float(x[0]) for x in self.window_fields(np.array([i])))
        row = int(self.group_row[g]) + pos
        clip = int(self.group_clip[g])
        v = int(self.group_video[g])
        bits = int(self.reason_bits[i])
        primary = int(_PRIMARY[bits])
        out = self.narration(row)
        out.update(
            window=i,
            group=g,
            position=pos,
            clip_uid=self.index.clip_uids[clip],
            clip_start=float(self.index.clip_start[clip]),
            clip_end=float(self.index.clip_end[clip]),
            beta=_num(self.beta_video[v]),
            d=_num(self.d_video[v]),
            start=_num(start),
            end=_num(end),
            duration=_num(end - start),
            reason=REASONS[primary][0] if primary else None,
            reason_label=REASONS[primary][1] if primary else "usable",
            reasons=[REASONS[c][0] for c in WINDOW_REASONS if bits & int(_BIT[c])],
        )
        return out

    # -- figures
    def reason_counts(self) -> dict[str, int]:
        """Each reason's count where it applies: windows for window reasons, runs for run reasons."""
        out = {REASONS[c][0]: int(self._hist[_HAS_BIT[c]].sum()) for c in WINDOW_REASONS}
        out["no_clip"] = self._grp.n_no_clip
        out["straddle"] = self._grp.n_straddle
        return out

    def primary_counts(self) -> dict[str, int]:
        per = np.bincount(_PRIMARY, weights=self._hist, minlength=len(REASONS) + 1)
        return {REASONS[c][0]: int(per[c]) for c in WINDOW_REASONS}

    def histogram(self, bins: int = HIST_BINS) -> dict:
        """Window durations (windows with a beta), `bins` equal bins from 0 to the longest."""
        vals, w = self._durations
        keep = w > 0
        vals, w = vals[keep], w[keep]
        top = float(vals.max()) if len(vals) else 1.0
        edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
        counts, _ = np.histogram(np.clip(vals, 0.0, None), bins=edges, weights=w)
        return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}

    def summary(self) -> dict:
        prep = self._prep
        vals, w = self._durations
        uvals, uw = self._usable_durations
        reasons = self.reason_counts()
        return {
            "params": asdict(self.params),
            "videos": {
                "total": int(self.index.n_videos),
                "used": int(prep.video_used.sum()),
                "excluded": int(prep.video_excluded.sum()),
                "no_features": int(prep.video_no_features.sum()),
                "no_clips": int(prep.video_no_clips.sum()),
                "used_no_beta": int((prep.video_used & np.isnan(prep.beta)).sum()),
            },
            "narrations": prep.narrations_used,
            "narrations_no_clip": prep.narrations_no_clip,
            "runs": self._grp.runs,
            "groups": self.n_groups,
            "windows": self.n_windows,
            "usable": self.n_usable,
            # the notebook's own test: a window with a beta whose start < end
            "notebook_valid": self.n_windows - reasons["no_beta"] - reasons["collapsed"],
            "reasons": reasons,
            "primary_reasons": self.primary_counts(),
            "seconds": weighted_percentiles(vals, w),
            "usable_seconds": weighted_percentiles(uvals, uw),
            "histogram": self.histogram(),
            "compute_seconds": round(self.compute_seconds, 4),
        }


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs=PERCENTILES) -> dict:
    """np.percentile's linear method over `values` repeated `weights` times (plus mean, min,
    max); all None when the total weight is 0."""
    keep = weights > 0
    v, w = values[keep], weights[keep].astype(np.int64)
    keys = [f"p{q}" for q in qs] + ["mean", "min", "max"]
    if not len(v):
        return {key: None for key in keys}
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cw = np.cumsum(w)
    n = int(cw[-1])
    out = {}
    for q in qs:
        h = (n - 1) * q / 100.0
        lo = int(np.floor(h))
        hi = min(lo + 1, n - 1)
        a = v[np.searchsorted(cw, lo, "right")]
        b = v[np.searchsorted(cw, hi, "right")]
        out[f"p{q}"] = float(a + (b - a) * (h - lo))
    out["mean"] = float((v * w).sum() / n)
    out["min"] = float(v[0])
    out["max"] = float(v[-1])
    return out


def _reason_code(reason: int | str) -> int:
    if isinstance(reason, str):
        try:
            return REASON_CODE[reason]
        except KeyError:
            raise ConfigError(f"unknown reason {reason!r}; one of {', '.join(REASON_CODE)}") from None
    return int(reason)


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _window_ids(windows, n: int) -> np.ndarray:
    """Window indices (int64) selected by an index array, a boolean mask or a slice."""
    if isinstance(windows, slice):
        return np.arange(*windows.indices(n), dtype=np.int64)
    arr = np.asarray(windows)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"mask of {arr.shape} for {n} windows")
        return np.flatnonzero(arr)
    w = arr.astype(np.int64, copy=True)
    if w.size and (w.min() < -n or w.max() >= n):
        raise IndexError(f"window index out of range for {n} windows")
    w[w < 0] += n
    return w
