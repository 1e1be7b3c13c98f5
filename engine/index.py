"""The compact, columnar index of an Ego4D tree: what every later stage reads.

Everything is numpy arrays over all videos (CSR layout), so that the whole of Ego4D v1
(~9.6K videos, ~4M narrations) fits in a few hundred MB and the window engine can work
with vectorised operations. Strings live in `TextColumn`s (one UTF-8 blob plus offsets), not
in millions of Python objects.

Contract (other modules rely on it):

- Videos are numbered 0..V-1 in `Index.video_uids` order.
- Clips are numbered 0..C-1 in `ego4d.json` order. `clip_order[clip_offsets[v]:clip_offsets[v+1]]`
  are the clip numbers of video v, in `ego4d.json` order (so "the first clip that contains
  the group" is the first of them that does).
- Narrations of one pass (1 or 2) are in a `NarrationArrays`; the rows of video v are
  `[video_offsets[v], video_offsets[v+1])`, stably sorted by `time` (the file order breaks ties).
- `excluded[v]` is True for a video in nlq_val.json or nlq_test_unannotated.json;
  `has_features[v]` is True when `<feature_dir>/<video_uid>.pt` exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Bits of NarrationArrays.flags
FLAG_UNSURE = 1  # the narration text carries `#unsure`
FLAG_OTHER = 2  # a `#O` narration: about another person, not the camera wearer
FLAG_CAMERA_WEARER = 4  # a `#C` narration


@dataclass
class TextColumn:
    """Many strings as one UTF-8 blob plus int64 offsets; `col[i]` decodes string i."""

    blob: bytes
    offsets: np.ndarray  # int64[n + 1]

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> TextColumn:
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        if encoded:
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
        return cls(b"".join(encoded), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i] : self.offsets[i + 1]].decode("utf-8")

    def take(self, rows: np.ndarray) -> TextColumn:
        return TextColumn.from_strings(self[int(i)] for i in rows)


@dataclass
class NarrationArrays:
    """One narration pass, all videos, CSR by video, each video's rows sorted by time."""

    video_offsets: np.ndarray  # int64[V + 1]
    time: np.ndarray  # float64[N], timestamp_sec
    flags: np.ndarray  # uint8[N], FLAG_* bits
    text: TextColumn  # narration_text
    uid: TextColumn  # annotation_uid of the narration ("" when absent)
    # Derived from the arrays above and the index's clips, once per index and kept in its cache
    # (engine/windows_prep.py `pass_geometry`; None until then):
    video_beta: np.ndarray | None = None  # float64[V]: mean positive gap per video (NaN: none)
    clip_rows: np.ndarray | None = None  # int64[2, C]: each clip's row range [a, b) in this pass

    def __len__(self) -> int:
        return len(self.time)

    def rows(self, v: int) -> slice:
        return slice(int(self.video_offsets[v]), int(self.video_offsets[v + 1]))


@dataclass
class Issue:
    """A warning (real-data quirk, counted) or an error (unusable input) about one file."""

    level: str  # "warning" | "error"
    code: str  # short stable key, e.g. "template_null", "unsorted_timestamps"
    file: str  # path relative to the root where possible
    message: str  # one line: what, where (JSON path / video), what to do
    count: int = 1


@dataclass
class Index:
    root: Path
    feature_dir: str  # the feature folder name this index was built for (layout.DEFAULT_FEATURES by default)
    video_uids: list[str]
    clip_uids: list[str]
    clip_video: np.ndarray  # int32[C], video number of each clip
    clip_start: np.ndarray  # float64[C], video_start_sec
    clip_end: np.ndarray  # float64[C], video_end_sec
    clip_order: np.ndarray  # int32[C], clip numbers grouped by video, ego4d.json order within
    clip_offsets: np.ndarray  # int64[V + 1], CSR into clip_order
    passes: dict[int, NarrationArrays]  # 1 and 2 (a pass absent everywhere is empty)
    excluded: np.ndarray  # bool[V], video in val or test
    has_features: np.ndarray  # bool[V]
    issues: list[Issue] = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # figures for `data check`

    @property
    def n_videos(self) -> int:
        return len(self.video_uids)

    def video_number(self, video_uid: str) -> int:
        """KeyError when no video has this uid."""
        return self._video_rows()[video_uid]

    def has_video(self, video_uid: str) -> bool:
        return video_uid in self._video_rows()

    def _video_rows(self) -> dict[str, int]:
        # built on first use: a warm open that never looks a uid up does not pay for it
        rows = self.__dict__.get("_video_row")
        if rows is None:
            rows = self.__dict__["_video_row"] = {uid: i for i, uid in enumerate(self.video_uids)}
        return rows

    def clips_of(self, v: int) -> np.ndarray:
        return self.clip_order[self.clip_offsets[v] : self.clip_offsets[v + 1]]


def flags_of(text: str) -> int:
    """FLAG_* bits of one narration text."""
    f = 0
    low = text.lower()
    if "#unsure" in low:
        f |= FLAG_UNSURE
    stripped = text.lstrip()
    if stripped.startswith("#O") or stripped.startswith("#o "):
        f |= FLAG_OTHER
    if stripped.startswith("#C") or stripped.startswith("#c "):
        f |= FLAG_CAMERA_WEARER
    return f
