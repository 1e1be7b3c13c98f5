"""Pre-extracted video features: one `<video_uid>.pt` tensor of shape (rows, dim) per video.

Feature files are untrusted input: they are only ever opened with
`torch.load(..., weights_only=True)`, which refuses to build arbitrary Python objects, and the
result must be one 2-D floating-point tensor. torch is imported inside the functions, so that
listing and indexing (which only look at file names) never pay for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import DataError

FEATURES_SUBDIR = "v1"  # feature folders live in ROOT/v1/<name>/, next to annotations/
KNOWN_DIMS = {"egovlp_fp16": 256, "omnivore_video_swinl_fp16": 1536, "slowfast8x8_r101_k400": 2304}
ROWS_PER_SECOND = 1.875


def feature_root(root: str | os.PathLike) -> Path:
    return Path(root) / FEATURES_SUBDIR


def scan_feature_dir(path: str | os.PathLike) -> set[str]:
    """Video uids with a `.pt` file in the folder, from file names only (no stat, no open).

    The uid is the name up to the first dot, as the original notebook took it.
    """
    uids: set[str] = set()
    with os.scandir(path) as it:
        for entry in it:
            name = entry.name
            if name.endswith(".pt") and entry.is_file():
                uids.add(name.split(".")[0])
    return uids


def _pt_files(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted((e for e in it if e.name.endswith(".pt") and e.is_file()), key=lambda e: e.name)


def list_feature_dirs(root: str | os.PathLike) -> list[tuple[str, int | None, int]]:
    """Every feature folder under ROOT/v1 as (name, dim, n_files), sorted by name.

    `dim` is read from the first non-empty `.pt` file (None when every file is empty, as in a
    `--no-features` benchmark tree). A folder whose sample file is not a usable tensor raises
    DataError naming that file.
    """
    base = feature_root(root)
    out: list[tuple[str, int | None, int]] = []
    if not base.is_dir():
        return out
    for sub in sorted(p for p in base.iterdir() if p.is_dir() and p.name != "annotations"):
        files = _pt_files(sub)
        if not files:
            continue
        dim = None
        for e in files:
            if e.stat().st_size > 0:
                dim = int(load_features(e.path).shape[1])
                break
        out.append((sub.name, dim, len(files)))
    return out


def load_features(path: str | os.PathLike, dim: int | None = None):
    """The (rows, dim) feature tensor of one video, on the CPU, as stored (e.g. float16).

    Raises DataError naming the file when it is missing, empty, not a tensor (a pickle of
    anything else is refused without building it), not 2-D, not floating point, has no rows,
    or has a dimension other than `dim`.
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
