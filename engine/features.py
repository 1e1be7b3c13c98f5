"""Pre-extracted video features: one `<video_uid>.pt` tensor of shape (rows, dim) per video.

Feature files are untrusted input: they are only ever opened with
`torch.load(..., weights_only=True)`, which refuses to build arbitrary Python objects, and the
result must be one 2-D floating-point tensor. torch is imported inside the functions, so that
listing and indexing (which only look at file names) never pay for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.ego4d.layout import KNOWN_DIMS, ROWS_PER_SECOND, feature_root  # noqa: F401  (re-exported)
from engine.errors import DataError


def load_features(path: str | os.PathLike, dim: int | None = None):
    """The (rows, dim) feature tensor of one video, on the CPU, as stored (e.g. float16).

    Raises DataError naming the file when it is missing, empty, not a tensor (a pickle of
    anything else is refused without building it), sparse or without data (a meta tensor),
    not 2-D, not floating point, has no rows, or has a dimension other than `dim`. Training's
    loader and the data check both open feature files through here.
    """
    import torch

    p = Path(path)
    if not p.exists():
        raise DataError(
            f"{p}: feature file not found; extract features for this video or pick another --features folder",
            path=str(p),
        )
    if p.is_dir():
        raise DataError(f"{p}: is a folder, expected a feature tensor file", path=str(p))
    if p.stat().st_size == 0:
        raise DataError(
            f"{p}: feature file is empty (0 bytes); copy the real features here (a --no-features tree only supports indexing)",
            path=str(p),
        )
    try:
        obj = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # garbage input makes the unpickler raise almost anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{p}: not a tensor file torch can load safely ({first[:160]}); re-extract or re-download this feature file",
            path=str(p),
        ) from None
    if not isinstance(obj, torch.Tensor):
        raise DataError(
            f"{p}: holds a {type(obj).__name__}, expected one (rows, dim) tensor; re-extract this feature file",
            path=str(p),
        )
    if obj.layout != torch.strided or obj.is_meta:
        kind = "a meta tensor (shape only, no data)" if obj.is_meta else f"a {obj.layout} (sparse) tensor"
        raise DataError(
            f"{p}: holds {kind}, expected a dense (rows, dim) tensor; re-extract this feature file", path=str(p)
        )
    shape = tuple(obj.shape)
    if obj.dim() != 2:
        raise DataError(
            f"{p}: tensor has shape {shape}, expected 2-D (rows, dim); re-extract this feature file", path=str(p)
        )
    if not obj.is_floating_point():
        raise DataError(f"{p}: tensor has dtype {obj.dtype}, expected floating point features", path=str(p))
    if shape[0] == 0:
        raise DataError(f"{p}: tensor has no rows {shape}; re-extract this feature file", path=str(p))
    if dim is not None and shape[1] != dim:
        raise DataError(
            f"{p}: feature dimension {shape[1]}, but this folder's features are {dim}-d; "
            "the file belongs to another feature set or is damaged",
            path=str(p),
        )
    return obj
