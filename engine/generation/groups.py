"""Which groups a generation job works on, and what a backend reads of each (docs/ARCHITECTURE.md, "Generation").

Groups come from the window computation (engine.windows, every narration a start); a job tiles
them with stride k by default, samples with a seed, never takes a val/test video, and reads
each group's texts, windows and stable key in vectorised batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError
from engine.index import Index
from engine.windows import REASONS, WINDOW_REASONS, WindowResult

# ---------------------------------------------------------------------------------------------
# choosing groups


def tile_groups(result: WindowResult, stride: int | None = None) -> np.ndarray:
    """Group indices with first rows at least `stride` apart within a video (default k: no overlap).

    The lab's groups start at every narration (stride 1); greedy tiling keeps a group when it
    starts `stride` rows after the last kept one, so each narration gets one question and a
    clip boundary does not shift the rest of the video out of step.
    """
    stride = result.k if stride is None else int(stride)
    if stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {stride}")
    rows, vids = result.group_row, result.group_video
    n = len(rows)
    if stride == 1 or n == 0:
        return np.arange(n, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    last_row, last_vid = -(1 << 62), -1
    for i, (r, v) in enumerate(zip(rows.tolist(), vids.tolist())):
        if v != last_vid or r >= last_row + stride:
            keep[i] = True
            last_row, last_vid = r, v
    return np.flatnonzero(keep)


def select_groups(
    result: WindowResult,
    *,
    stride: int | None = None,
    n: int | None = None,
    seed: int = 0,
    per_video: int | None = None,
) -> np.ndarray:
    """The groups a job works on, in generation order (ascending group index).

    All tiled groups, or `n` of them sampled with `seed`, at most `per_video` from one video.
    Never a group of an excluded (val/test) video. The same arguments give the same groups.
    """
    if n is not None and n < 1:
        raise ConfigError(f"--groups must be >= 1, got {n}")
    if per_video is not None and per_video < 1:
        raise ConfigError(f"--per-video must be >= 1, got {per_video}")
    tiled = tile_groups(result, stride)
    excluded = np.asarray(result.index.excluded, dtype=bool)
    if len(tiled):
        tiled = tiled[~excluded[result.group_video[tiled]]]
    if n is None and per_video is None:
        return tiled
    rng = np.random.default_rng(seed)
    order = tiled[rng.permutation(len(tiled))] if n is not None else tiled
    if per_video is not None:
        vids = result.group_video[order]
        # rank of each group within its video in `order`
        sort = np.argsort(vids, kind="stable")
        sv = vids[sort]
        starts = np.r_[0, np.flatnonzero(np.diff(sv)) + 1]
        rank = np.empty(len(order), dtype=np.int64)
        rank[sort] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        order = order[rank < per_video]
    if n is not None:
        order = order[:n]
    return np.sort(order)


# ---------------------------------------------------------------------------------------------
# one group's data


@dataclass
class GroupData:
    g: int
    key: str
    video: int
    clip: int
    video_uid: str
    clip_uid: str
    clip_start: float
    clip_end: float
    passes: list[int]  # narration pass of each narration
    pass_rows: list[int]  # row in index.passes[p] of each narration
    texts: list[str]
    uids: list[str]
    times: list[float]
    flags: list[int]
    starts: list[float | None]
    ends: list[float | None]
    problems: list[list[str]]


def _pass_offsets(index: Index, narration_pass) -> np.ndarray:
    if narration_pass == "both":
        return index.passes[1].video_offsets + index.passes[2].video_offsets
    return index.passes[int(narration_pass)].video_offsets


def _texts(col, rows: np.ndarray) -> list[str]:
    """Decode many strings of a TextColumn at once (its offsets may be a memmap: one gather)."""
    rows = np.asarray(rows, dtype=np.int64)
    a = np.asarray(col.offsets[rows]).tolist()
    b = np.asarray(col.offsets[rows + 1]).tolist()
    blob = col.blob
    return [bytes(blob[x:y]).decode("utf-8") for x, y in zip(a, b)]


class GroupReader:
    """Turns group indices of a WindowResult into GroupData (texts, windows, keys), in batches.

    `prefetch(groups)` computes the windows of a whole selection in one vectorised call, so a
    job asking for one group at a time (the openai backend) costs no per-request array work.
    """

    def __init__(self, result: WindowResult) -> None:
        self.result = result
        self.index = result.index
        self.k = result.k
        p = result.params.narration_pass
        self.narration_pass = p
        self.offsets = _pass_offsets(self.index, p)
        self.ptag = "pb" if p == "both" else f"p{int(p)}"
        self._bit_names = [(1 << (c - 1), REASONS[c][0]) for c in WINDOW_REASONS]
        self._pre: dict[int, int] = {}
        self._clip_cache: dict[str, tuple[int, list[str]]] = {}
        self._pre_t = self._pre_s = self._pre_e = self._pre_b = None

    def key(self, g: int) -> str:
        r = self.result
        v = int(r.group_video[g])
        rel = int(r.group_row[g]) - int(self.offsets[v])
        return f"{self.index.video_uids[v]}/{self.index.clip_uids[int(r.group_clip[g])]}/{self.ptag}/k{self.k}/{rel}"

    def keys(self, groups: np.ndarray) -> list[str]:
        r, idx = self.result, self.index
        groups = np.asarray(groups, dtype=np.int64)
        vids = r.group_video[groups]
        rel = (r.group_row[groups] - self.offsets[vids]).tolist()
        clips = r.group_clip[groups].tolist()
        vu, cu, tail = idx.video_uids, idx.clip_uids, f"{self.ptag}/k{self.k}"
        return [f"{vu[v]}/{cu[c]}/{tail}/{x}" for v, c, x in zip(vids.tolist(), clips, rel)]

    def texts(self, groups: np.ndarray) -> tuple[list[list[str]], list[list[int]]]:
        """(texts, flags) of each group's narrations: what a backend reads, nothing more.

        Each narration row is decoded once even where groups overlap (stride 1).
        """
        if self.narration_pass == "both":
            gds = self.read(groups)
            return [g.texts for g in gds], [g.flags for g in gds]
        k = self.k
        arr = self.index.passes[int(self.narration_pass)]
        rows = self.result.group_row[np.asarray(groups, dtype=np.int64)][:, None] + np.arange(k)
        uniq, inv = np.unique(rows, return_inverse=True)
        decoded = _texts(arr.text, uniq)
        flags = np.asarray(arr.flags[uniq])[inv].reshape(-1, k).tolist()
        flat = [decoded[i] for i in inv.reshape(-1).tolist()]
        return [flat[j : j + k] for j in range(0, len(flat), k)], flags

    def _windows(self, groups: np.ndarray):
        k = self.k
        w = (groups[:, None] * k + np.arange(k)).reshape(-1)
        t, start, end = self.result.window_fields(w)
        return (t.reshape(-1, k), start.reshape(-1, k), end.reshape(-1, k),
                np.asarray(self.result.reason_bits[w]).reshape(-1, k))  # fmt: skip

    def prefetch(self, groups: np.ndarray) -> None:
        groups = np.asarray(groups, dtype=np.int64)
        if not len(groups):
            return
        self._pre_t, self._pre_s, self._pre_e, self._pre_b = self._windows(groups)
        self._pre = {g: i for i, g in enumerate(groups.tolist())}

    def read(self, groups: np.ndarray) -> list[GroupData]:
        r, idx, k = self.result, self.index, self.k
        groups = np.asarray(groups, dtype=np.int64)
        if not len(groups):
            return []
        pos = [self._pre.get(g, -1) for g in groups.tolist()]
        pre = (self._pre_t, self._pre_s, self._pre_e, self._pre_b)
        if all(i >= 0 for i in pos) and all(a is not None for a in pre):
            t, start, end, bits = (a[pos] for a in pre)  # type: ignore[index]  # all set by prefetch
        else:
            t, start, end, bits = self._windows(groups)
        rows = (r.group_row[groups][:, None] + np.arange(k)).reshape(-1)
        if self.narration_pass == "both":
            src = [r.narration(int(x)) for x in rows]
            passes = [int(d["pass"]) for d in src]
            prows = [int(d["pass_row"]) for d in src]
            texts = [d["text"] for d in src]
            uids = [d["annotation_uid"] for d in src]
            flags = [int(idx.passes[p].flags[pr]) for p, pr in zip(passes, prows)]
        else:
            p = int(self.narration_pass)
            arr = idx.passes[p]
            passes = [p] * len(rows)
            prows = rows.tolist()
            texts = _texts(arr.text, rows)
            uids = _texts(arr.uid, rows)
            flags = np.asarray(arr.flags[rows]).tolist()
        vids = r.group_video[groups].tolist()
        clips = r.group_clip[groups].tolist()
        keys = self.keys(groups)
        t_l = np.round(t, 4).tolist()
        s_l = np.where(np.isfinite(start), np.round(start, 4), np.nan).tolist()
        e_l = np.where(np.isfinite(end), np.round(end, 4), np.nan).tolist()
        bits_l = bits.tolist()
        names = self._bit_names
        out = []
        for j, g in enumerate(groups.tolist()):
            v, c = vids[j], clips[j]
            sl = slice(j * k, (j + 1) * k)
            out.append(
                GroupData(
                    g=g,
                    key=keys[j],
                    video=v,
                    clip=c,
                    video_uid=idx.video_uids[v],
                    clip_uid=idx.clip_uids[c],
                    clip_start=float(idx.clip_start[c]),
                    clip_end=float(idx.clip_end[c]),
                    passes=passes[sl],
                    pass_rows=prows[sl],
                    texts=texts[sl],
                    uids=uids[sl],
                    times=t_l[j],
                    flags=flags[sl],
                    starts=[None if x != x else x for x in s_l[j]],
                    ends=[None if x != x else x for x in e_l[j]],
                    problems=[[n for bit, n in names if b & bit] if b else [] for b in bits_l[j]],
                )
            )
        return out

    def clip_narrations(self, gd: GroupData, pos: int) -> tuple[str, list[str], int]:
        """(cache key, texts of the clip's narrations in the target's pass, target position).

        The texts of the last clips asked for are kept: a group's questions share its clip.
        """
        p, pr = gd.passes[pos], gd.pass_rows[pos]
        key = f"{gd.clip_uid}/p{p}"
        hit = self._clip_cache.get(key)
        if hit is None:
            arr = self.index.passes[p]
            lo, hi = int(arr.video_offsets[gd.video]), int(arr.video_offsets[gd.video + 1])
            times = arr.time[lo:hi]
            a = lo + int(np.searchsorted(times, gd.clip_start, "left"))
            b = lo + int(np.searchsorted(times, gd.clip_end, "right"))
            hit = self._clip_cache[key] = (a, _texts(arr.text, np.arange(a, b)))
            if len(self._clip_cache) > 64:
                self._clip_cache.pop(next(iter(self._clip_cache)))
        a, texts = hit
        return key, texts, pr - a
