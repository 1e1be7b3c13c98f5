"""NLQ queries + per-video features -> pre-padded tensors, batched by index gathers.

`load_split(nlq_file, feature_dir, max_pos_len=128)` reads any NLQ-format file (an official
split or an export) and the `<video_uid>.pt` feature files, the way the Ego4D VSLNet reference
prepares them (`utils/prepare_ego4d_dataset.py`, `data_gen.py`, `data_util.py`):

- clip features: `video[int(s * 1.875) : int(e * 1.875) + 1]`, s, e the clip's
  `video_start_sec` / `video_end_sec`, exactly the reference's slice (its `get_nearest_frame`
  truncates with int() before its floor / ceil, so both ends are truncated); longer than
  `max_pos_len` rows is mean-pooled to `max_pos_len` exactly as the reference's
  `visual_feature_sampling`;
- the clip's feature-grid duration `int(clip_seconds * 1.875) / 1.875` and the answer window
  quantised to the grid, `int(t * 1.875) / 1.875`, clamped to [0, duration], as the reference;
- labels: the (start, end) position pair whose span [i/n*d, (j+1)/n*d] has the highest IoU with
  the answer window (the reference's `time_to_index`, ties to the first pair); a window that
  overlaps no position (zero length on the grid, or outside the clip) gets (0, 0), as there;
- highlight labels: [start, end] extended by round(extend * (end - start + 1)) each side.

Queries that cannot be used are skipped and counted in `Split.skipped`, never fatal:
`no_query` (no question text), `no_times` (no clip_start_sec/clip_end_sec; kept with placeholder
labels when `require_times=False`, for the unannotated test split), `no_features` (no feature
file, or the clip lies past the end of its features), `bad_window` (times not numbers, a clip
shorter than one feature row; with `keep_empty=False` also an end before the start or a start
past the clip) and `empty_window` (with `keep_empty=False`: the answer is zero-length on the
feature grid). `keep_empty=True` (the default, the reference's and the official protocol's)
keeps every query with numeric times, labelled (0, 0) when its window overlaps no position, so
a val split predicts and counts every query the official evaluator counts.

A feature file that exists but is not a usable tensor is a `DataError` naming the file.

`Loader(split, text_table, batch_size=32, shuffle=True, seed=..)` yields `Batch`es by gathering
rows of the split's padded video table and the text table (no per-step Python padding).
`Loader.to("cuda")` moves both tables once; batches are then gathered on the GPU. Shuffling is a
function of (seed, epoch), so `loader.batches(epoch, start=k)` resumes an epoch exactly; with
`rank` / `world_size` every rank gets its own share of the same permutation (DDP).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from engine.ego4d import layout
from engine.ego4d.layout import ROWS_PER_SECOND
from engine.ego4d.nlq import NLQClip, iter_nlq

if TYPE_CHECKING:
    import torch

    from engine.training.text import TextTable

FLOAT32_CACHE = 256 * 1024 * 1024  # elements: a CPU loader keeps its clip table in float32 below 1 GiB
SKIP_REASONS = ("no_query", "no_times", "no_features", "bad_window", "empty_window")


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    """The split's NLQ file under the root (`test` -> nlq_test_unannotated.json), see layout."""
    return layout.nlq_file(root, split)


def feature_folder(root: str | os.PathLike, features: str) -> Path:
    return layout.feature_dir(root, features)


def normalise_query(text: str) -> str:
    """The reference's `process_question`: no outer spaces or '?', lower case, one '?' at the end."""
    return (text.replace("\u2019", "'").strip(" ").strip("?").lower() + "?").strip()


@dataclass
class Split:
    """The usable queries of one NLQ file, with their clips' features in one padded table.

    Per-query arrays (numpy, length `len(split)`): `clip_row` (row of `video`), `query_row`
    (row of `queries`, the distinct query texts), `start`, `end` (position labels), `num_positions`
    (the clip's positions after pooling), `duration` (feature-grid seconds), `gt_start`, `gt_end`
    (the file's clip_start_sec / clip_end_sec, NaN when absent), `query_idx`. Per-query lists:
    `clip_uid`, `annotation_uid`.
    """

    path: str
    max_pos_len: int
    video: torch.Tensor  # (n_clips, L, video_dim) float16, zero padded, L <= max_pos_len
    video_len: torch.Tensor  # (n_clips,) long
    clip_uids: list[str]
    queries: list[str]
    clip_row: np.ndarray
    query_row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    num_positions: np.ndarray
    duration: np.ndarray
    gt_start: np.ndarray
    gt_end: np.ndarray
    query_idx: np.ndarray
    clip_uid: list[str]
    annotation_uid: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    keep_empty: bool = True
    naq_jitter: bool = False

    def __len__(self) -> int:
        return len(self.clip_row)

    @property
    def video_dim(self) -> int:
        return int(self.video.shape[2])

    @property
    def query_text(self) -> list[str]:
        return [self.queries[i] for i in self.query_row]

    def record(self, i: int) -> dict:
        """Query `i` as a plain dict (ids, text, ground truth and labels), for display and logs."""
        return {
            "clip_uid": self.clip_uid[i],
            "annotation_uid": self.annotation_uid[i],
            "query_idx": int(self.query_idx[i]),
            "query": self.queries[self.query_row[i]],
            "clip_start_sec": float(self.gt_start[i]),
            "clip_end_sec": float(self.gt_end[i]),
            "start": int(self.start[i]),
            "end": int(self.end[i]),
            "num_positions": int(self.num_positions[i]),
            "duration": float(self.duration[i]),
        }

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.items() if v) or "none"
        return f"{self.path}: {len(self)} queries in {len(self.clip_uids)} clips; skipped: {skipped}"


def load_split(
    nlq_file: str | os.PathLike,
    feature_dir: str | os.PathLike,
    *,
    max_pos_len: int = 128,
    keep_empty: bool = True,
    naq_jitter: bool = False,
    require_times: bool = True,
) -> Split:
    """Read an NLQ-format file and its videos' features; see the module docstring."""
    nlq_file, feature_dir = Path(nlq_file), Path(feature_dir)
    skipped = {k: 0 for k in SKIP_REASONS}
    clips, order = _read_queries(nlq_file, skipped)
    table = _Table()
    for video_uid, uids in order.items():  # each feature file is read once
        pending = [u for u in uids if clips[u]["queries"]]
        if not pending:
            continue
        path = layout.feature_file(feature_dir, video_uid)
        if not video_uid or not path.is_file():
            for u in pending:
                _skip_queries(clips[u]["queries"], "no_features", skipped, require_times)
            continue
        feats = _load(path, table.video_dim)
        table.video_dim = int(feats.shape[1])
        for clip_uid in pending:
            table.add_clip(clip_uid, clips[clip_uid], feats, max_pos_len, keep_empty, require_times, skipped)
    return table.split(nlq_file, max_pos_len, skipped, keep_empty=keep_empty, naq_jitter=naq_jitter)


def _read_queries(nlq_file: Path, skipped: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """The file's queries by clip ({clip_uid: {video_uid, start, end, queries}}) and clips by video."""
    clips: dict[str, dict] = {}
    order: dict[str, list[str]] = {}
    entry: dict = {}
    for item in iter_nlq(nlq_file, missing="check --data / --train-file"):  # the one NLQ walker
        if isinstance(item, NLQClip):
            clip_uid = item.clip_uid or f"{item.video_uid}#{item.index}"
            if clip_uid not in clips:
                start, end = item.video_start_sec, item.video_end_sec
                clips[clip_uid] = {"video_uid": item.video_uid, "start": start, "end": end, "queries": []}
                order.setdefault(item.video_uid, []).append(clip_uid)
            entry = clips[clip_uid]
        elif item.query is None or not item.query.strip(" ?"):
            skipped["no_query"] += 1
        else:  # times present but not numbers are a bad window (has_times), not missing times
            q = _Query(
                item.annotation_uid,
                item.query_index,
                normalise_query(item.query),
                item.clip_start_sec,
                item.clip_end_sec,
                item.has_times,
            )
            entry["queries"].append(q)
    return clips, order


_RECORD_KEYS = (
    "clip_row",
    "query",
    "start",
    "end",
    "num_positions",
    "duration",
    "gt_start",
    "gt_end",
    "query_idx",
    "clip_uid",
    "annotation_uid",
)


class _Table:
    """The usable clips' pooled rows and one record per usable query, as `load_split` collects them."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.clip_uids: list[str] = []
        self.recs: dict[str, list] = {k: [] for k in _RECORD_KEYS}
        self.video_dim: int | None = None

    def add_clip(self, clip_uid, clip, feats, max_pos_len, keep_empty, require_times, skipped) -> None:
        s, e = clip["start"], clip["end"]
        if s is None or e is None or not e > s or s < 0:
            _skip_queries(clip["queries"], "bad_window", skipped, require_times)
            return
        rows_clip = feats[clip_rows(s, e)]
        if rows_clip.shape[0] == 0:
            _skip_queries(clip["queries"], "no_features", skipped, require_times)
            return
        num_frames = int((e - s) * ROWS_PER_SECOND)
        duration = num_frames / ROWS_PER_SECOND
        if num_frames <= 0:
            _skip_queries(clip["queries"], "bad_window", skipped, require_times)
            return
        pooled = pool_features(rows_clip.float().numpy(), max_pos_len)
        n = pooled.shape[0]
        row = None
        for ann_uid, qi, text, cs, ce, has_times in clip["queries"]:
            if not has_times:
                if require_times:
                    skipped["no_times"] += 1
                    continue
                start = end = 0  # the reference's placeholder for the unannotated test split
                cs = ce = float("nan")
            else:
                label = window_labels(cs, ce, duration, n, keep_empty=keep_empty, clip_seconds=e - s)
                if isinstance(label, str):
                    skipped[label] += 1
                    continue
                start, end = label
            if row is None:
                row = len(self.rows)
                self.rows.append(pooled)
                self.clip_uids.append(clip_uid)
            values = (row, text, start, end, n, duration, cs, ce, qi, clip_uid, ann_uid)
            for key, value in zip(_RECORD_KEYS, values):
                self.recs[key].append(value)

    def split(self, nlq_file: Path, max_pos_len: int, skipped: dict, *, keep_empty: bool, naq_jitter: bool) -> Split:
        import torch

        rows, recs = self.rows, self.recs
        longest = max((r.shape[0] for r in rows), default=1)
        video = torch.zeros(len(rows), longest, self.video_dim or 1, dtype=torch.float16)
        video_len = torch.zeros(len(rows), dtype=torch.long)
        for i, r in enumerate(rows):
            video[i, : r.shape[0]] = torch.from_numpy(r)
            video_len[i] = r.shape[0]
        query_ids: dict[str, int] = {}
        query_row = np.array([query_ids.setdefault(t, len(query_ids)) for t in recs["query"]], dtype=np.int64)

        def ints(key: str) -> np.ndarray:
            return np.array(recs[key], dtype=np.int64)

        def floats(key: str) -> np.ndarray:
            return np.array(recs[key], dtype=np.float64)

        return Split(
            path=str(nlq_file),
            max_pos_len=max_pos_len,
            video=video,
            video_len=video_len,
            clip_uids=self.clip_uids,
            queries=list(query_ids),
            clip_row=ints("clip_row"),
            query_row=query_row,
            start=ints("start"),
            end=ints("end"),
            num_positions=ints("num_positions"),
            duration=floats("duration"),
            gt_start=floats("gt_start"),
            gt_end=floats("gt_end"),
            query_idx=ints("query_idx"),
            clip_uid=recs["clip_uid"],
            annotation_uid=recs["annotation_uid"],
            skipped=skipped,
            keep_empty=keep_empty,
            naq_jitter=naq_jitter,
        )


class _Query(NamedTuple):
    annotation_uid: str
    query_idx: int
    text: str
    clip_start: float | None
    clip_end: float | None
    has_times: bool


def _skip_queries(queries: list[_Query], reason: str, skipped: dict, require_times: bool) -> None:
    # a query without times is unusable whatever else is wrong with it: count it as that
    for q in queries:
        skipped["no_times" if require_times and not q.has_times else reason] += 1


def _load(path: Path, dim: int | None):
    from engine.features import load_features  # the one safe reader of feature files

    return load_features(path, dim)


def pool_features(features: np.ndarray, max_len: int) -> np.ndarray:
    """The reference's `visual_feature_sampling`: mean-pool rows into max_len bins (float16 out)."""
    n = features.shape[0]
    if n <= max_len:
        return features.astype(np.float16)
    idx = np.round(np.arange(0, max_len + 1, 1.0) / max_len * n).astype(np.int64)
    idx[idx > n - 1] = n - 1
    lo, hi = idx[:-1], idx[1:]
    csum = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0, dtype=np.float64)])
    count = np.maximum(hi - lo, 1)[:, None]
    means = (csum[hi] - csum[lo]) / count
    # a bin of width 0 (lo == hi) takes row lo, as the reference
    out = np.where((hi > lo)[:, None], means, features[lo])
    return out.astype(np.float16)


def clip_rows(video_start: float, video_end: float) -> slice:
    """The feature rows of a clip, as the reference: `[int(s * 1.875) : int(e * 1.875) + 1]`."""
    return slice(int(video_start * ROWS_PER_SECOND), int(video_end * ROWS_PER_SECOND) + 1)


def grid_window(clip_start: float, clip_end: float, duration: float) -> tuple[float, float]:
    """The answer window on the feature grid, as the reference: int(t * 1.875) / 1.875, clamped."""
    s = max(0.0, int(clip_start * ROWS_PER_SECOND) / ROWS_PER_SECOND)
    e = min(int(clip_end * ROWS_PER_SECOND) / ROWS_PER_SECOND, duration)
    return s, e


def time_to_index(s_time: float, e_time: float, n: int, duration: float) -> tuple[int, int]:
    """The (start, end) pair with the highest IoU with [s_time, e_time], as the reference."""
    # float32 grid, then float64 IoU, ties to the first pair in row-major order: exactly the reference
    starts = (np.arange(n, dtype=np.float32) / np.float32(n) * np.float32(duration)).astype(np.float64)
    ends = (np.arange(1, n + 1, dtype=np.float32) / np.float32(n) * np.float32(duration)).astype(np.float64)
    inter = np.maximum(0.0, np.minimum(ends[None, :], e_time) - np.maximum(starts[:, None], s_time))
    union = np.maximum(1e-12, np.maximum(ends[None, :], e_time) - np.minimum(starts[:, None], s_time))
    best = int(np.argmax(inter / union))
    return best // n, best % n


def window_labels(
    clip_start: float | None,
    clip_end: float | None,
    duration: float,
    n: int,
    *,
    keep_empty: bool = False,
    clip_seconds: float | None = None,
) -> tuple[int, int] | str:
    """(start, end) labels of an answer window in clip seconds, or the skip reason.

    `keep_empty` (the reference): every window with numeric times gets labels, (0, 0) when it
    overlaps no position. Otherwise an end before the start, or a start past `clip_seconds` (the
    clip's real length), is a bad window and a zero-length one on the grid an empty window.
    """
    if clip_start is None or clip_end is None:
        return "bad_window"
    if keep_empty:  # the reference: every window, (0, 0) when it overlaps no position
        s, e = grid_window(clip_start, clip_end, duration)
        return time_to_index(s, e, n, duration)
    if clip_end < clip_start or clip_end < 0 or (clip_seconds is not None and clip_start > clip_seconds):
        return "bad_window"
    s, e = grid_window(clip_start, clip_end, duration)
    if e <= s:
        return "empty_window"
    return time_to_index(s, e, n, duration)


def highlight_bounds(start: np.ndarray, end: np.ndarray, num_positions: np.ndarray, extend: float):
    """First and last highlighted position: [start, end] widened by round(extend * length) each side."""
    ext = np.round(extend * (end - start + 1).astype(np.float64)).astype(np.int64)
    lo = np.maximum(0, start - ext)
    hi = np.minimum(end + ext, num_positions - 1)
    # the reference only clips when it extends; an unextended window stays [start, end]
    return np.where(ext > 0, lo, start), np.where(ext > 0, hi, end)


def naq_jitter_window(
    rng: np.random.Generator,
    clip_start: float,
    clip_end: float,
    duration: float,
    widen: float = 0.5,
    shift: float = 0.25,
) -> tuple[float, float]:
    """NaQ-style temporal jitter: widen the window by U(1, 1+widen), move its centre by U(-shift, shift) x width."""
    width = max(clip_end - clip_start, 0.0) * rng.uniform(1.0, 1.0 + widen)
    centre = (clip_start + clip_end) / 2.0 + rng.uniform(-shift, shift) * width
    s = min(max(0.0, centre - width / 2.0), duration)
    e = min(max(0.0, centre + width / 2.0), duration)
    return s, e


@dataclass
class Batch:
    """One batch, every tensor on the same device. Masks are float32 1 (real) / 0 (padding)."""

    video: torch.Tensor  # (B, Lv, video_dim) float32
    video_mask: torch.Tensor  # (B, Lv)
    query: torch.Tensor | None  # (B, Lq, text_dim) float32; None when the loader has no text table
    query_mask: torch.Tensor | None  # (B, Lq)
    start: torch.Tensor  # (B,) long
    end: torch.Tensor  # (B,) long
    highlight: torch.Tensor  # (B, Lv) float32 0/1
    video_len: torch.Tensor  # (B,) long: positions of each clip, the n of indices_to_seconds
    duration: torch.Tensor  # (B,) float64: feature-grid clip seconds
    index: torch.Tensor  # (B,) long: rows of the split
    query_text: list[str]
    clip_uid: list[str]
    annotation_uid: list[str]
    query_idx: list[int]

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def to(self, device, non_blocking: bool = False) -> Batch:
        import torch

        moved = {
            f.name: (
                getattr(self, f.name).to(device, non_blocking=non_blocking)
                if isinstance(getattr(self, f.name), torch.Tensor)
                else getattr(self, f.name)
            )
            for f in fields(self)
        }
        return replace(self, **moved)


class Loader:
    """Batches of a `Split` (+ a `TextTable` of its `queries`), gathered from pre-padded tables."""

    def __init__(
        self,
        split: Split,
        text: TextTable | None,
        *,
        batch_size: int = 32,
        extend: float = 0.1,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        naq_jitter: bool | None = None,
    ) -> None:
        import torch

        if text is not None and text.features.shape[0] != len(split.queries):
            raise ValueError("text table rows must match split.queries")
        self.split, self.text = split, text
        self.batch_size, self.extend = batch_size, extend
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.naq_jitter = split.naq_jitter if naq_jitter is None else naq_jitter
        self.device = torch.device("cpu")
        self._video, self._video_len = split.video, split.video_len
        self._clip_row = torch.from_numpy(split.clip_row)
        self._query_row = torch.from_numpy(split.query_row)
        self._start = torch.from_numpy(split.start)
        self._end = torch.from_numpy(split.end)
        self._duration = torch.from_numpy(split.duration)
        hs, he = highlight_bounds(split.start, split.end, split.num_positions, extend)
        self._h_lo, self._h_hi = torch.from_numpy(hs), torch.from_numpy(he)

    def to(self, device) -> Loader:
        """Move the tables to `device` once; later batches are gathered there."""
        import torch

        self.device = torch.device(device)
        if self.device.type == "cpu" and self._video.dtype != torch.float32 and self._video.numel() < FLOAT32_CACHE:
            # float32 once instead of a float16 -> float32 copy of every batch (half the step's data work)
            self._video = self._video.float()
        for name in (
            "_video",
            "_video_len",
            "_clip_row",
            "_query_row",
            "_start",
            "_end",
            "_duration",
            "_h_lo",
            "_h_hi",
        ):
            setattr(self, name, getattr(self, name).to(self.device))
        if self.text is not None:
            self.text = self.text.to(self.device)
        return self

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.split)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
        else:
            order = np.arange(n)
        if self.world_size > 1:
            # every rank the same number of batches (DDP steps in lockstep): wrap around to fill
            per_rank = -(-n // self.world_size)
            order = np.resize(order, per_rank * self.world_size)[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self._order(0)) if self.world_size > 1 else len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        """The epoch's batches from batch number `start` on (the same for the same seed and epoch)."""
        order = self._order(epoch)
        for b in range(start, len(self)):
            yield self.batch(order[b * self.batch_size : (b + 1) * self.batch_size], key=(epoch, b))

    def __iter__(self) -> Iterator[Batch]:
        return self.batches(0)

    def batch(self, rows: np.ndarray, key: tuple[int, int] = (0, 0)) -> Batch:
        """The batch of these split rows."""
        import torch

        idx = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.device)
        clip = self._clip_row[idx]
        lens = self._video_len[clip]
        width = int(lens.max())
        video = self._video[clip, :width].float()
        positions = torch.arange(width, device=self.device)[None, :]
        video_mask = (positions < lens[:, None]).float()
        if self.naq_jitter:
            start, end, h_lo, h_hi = self._jittered_labels(np.asarray(rows, dtype=np.int64), key)
        else:
            start, end, h_lo, h_hi = self._start[idx], self._end[idx], self._h_lo[idx], self._h_hi[idx]
        highlight = ((positions >= h_lo[:, None]) & (positions <= h_hi[:, None])).float()
        query = query_mask = None
        if self.text is not None:
            query, query_mask = self.text.gather(self._query_row[idx])
        s = self.split
        return Batch(
            video=video,
            video_mask=video_mask,
            query=query,
            query_mask=query_mask,
            start=start,
            end=end,
            highlight=highlight,
            video_len=lens,
            duration=self._duration[idx],
            index=idx,
            query_text=[s.queries[s.query_row[i]] for i in rows],
            clip_uid=[s.clip_uid[i] for i in rows],
            annotation_uid=[s.annotation_uid[i] for i in rows],
            query_idx=[int(s.query_idx[i]) for i in rows],
        )

    def _jittered_labels(self, rows: np.ndarray, key: tuple[int, int]):
        import torch

        s = self.split
        rng = np.random.default_rng([self.seed, key[0], key[1], self.rank, 7])
        start = s.start[rows].copy()
        end = s.end[rows].copy()
        for k, i in enumerate(rows):
            if not np.isfinite(s.gt_start[i]):
                continue
            cs, ce = naq_jitter_window(rng, s.gt_start[i], s.gt_end[i], s.duration[i])
            label = window_labels(cs, ce, s.duration[i], int(s.num_positions[i]), keep_empty=True)
            if not isinstance(label, str):
                start[k], end[k] = label
        lo, hi = highlight_bounds(start, end, s.num_positions[rows], self.extend)
        return tuple(torch.from_numpy(a).to(self.device) for a in (start, end, lo, hi))
