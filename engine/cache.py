"""The on-disk cache of an Ego4D tree's Index, so that only the first open reads narration.json.

Where: `<root>/.nlq-cache/` when the data root is writable, else
`~/.cache/nlq-tui/<hash of the root's absolute path>/` (`$NLQ_TUI_CACHE` replaces the base
folder for both). What: `index.json` (the key, uids, counts, issues, array names) and one
`.npy` per array / `.bin` per text blob in a `data-<token>/` folder that `index.json` names.

The key is the size and mtime of each source JSON file; a change rebuilds the index. The
feature folder is not part of the cached data: which videos have a `.pt` is rescanned on every
open (a directory listing), so adding features never leaves a stale index.

Writers never touch files a reader may hold: a new `data-<token>/` is written in full, then
`index.json` is replaced atomically, then older data folders are removed. Arrays are
read in full (~70 MB at Ego4D scale); text offsets are memory-mapped read-only and text blobs
are `mmap`s (slicing gives bytes), so a warm open does not read the ~400 MB of text.

Beside the index's own columns, each pass keeps what the window engine derives from the index
alone (engine/windows_prep.py `pass_geometry`: beta per video, each clip's row range), so a
warm open reads it instead of computing it (docs/ARCHITECTURE.md, "Scale"). A cache without
them (an older one) is still good: they are computed on first use.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from engine.ego4d.layout import INDEX_SOURCES
from engine.index import Index, Issue, NarrationArrays, TextColumn

CACHE_VERSION = 3  # bump when the reader changes what an index or its warnings hold, or
# engine/windows_prep.py changes what pass_geometry derives
_SOURCES = INDEX_SOURCES
_META = "index.json"
# Warnings about one open, not about the source files: never kept in the cache.
_PER_OPEN = frozenset({"cache_rebuilt", "broken_feature_files"})


def cache_dir(root: str | os.PathLike) -> Path:
    """The cache folder for a data root (created on save, not here)."""
    root = Path(root).resolve()
    base = os.environ.get("NLQ_TUI_CACHE")
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    if base:
        return Path(base) / digest
    local = root / ".nlq-cache"
    if (local.is_dir() and os.access(local, os.W_OK)) or (not local.exists() and os.access(root, os.W_OK)):
        return local
    return Path.home() / ".cache" / "nlq-tui" / digest


def source_key(root: str | os.PathLike) -> dict:
    """What the cached index was built from: each source file's size and mtime."""
    root = Path(root)
    files: dict[str, list[int] | None] = {}
    for rel in _SOURCES:
        try:
            st = (root / rel).stat()
            files[rel] = [st.st_size, st.st_mtime_ns]
        except OSError:
            files[rel] = None
    return {"version": CACHE_VERSION, "root": str(root.resolve()), "files": files}


def map_bytes(path: Path):
    """The file's bytes as a read-only mmap (b"" for an empty file, which mmap refuses)."""
    if path.stat().st_size == 0:
        return b""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


class CacheDamaged(Exception):
    """A cache that its key matches but whose content is not what the build wrote."""


def load(root: str | os.PathLike, progress: Callable[[str, int, int], None] | None = None) -> Index | None:
    """The cached Index of `root` when it matches the source files now, else None.

    A cache that is missing, stale, from another version or damaged is a miss, never an error
    (`load_checked` also says why a damaged one was not used). `feature_dir` and `has_features`
    are left for the caller to fill in.
    """
    return load_checked(root, progress)[0]


def load_checked(
    root: str | os.PathLike, progress: Callable[[str, int, int], None] | None = None
) -> tuple[Index | None, str | None]:
    """(the cached Index or None, why a cache that should have been usable was not).

    The reason is None for a plain miss (no cache, stale, another version); it names the
    damage when `index.json` was edited by hand (its checksum no longer matches), a data file
    changed size, or the arrays do not fit together.
    """
    d = cache_dir(root)
    try:
        text = (d / _META).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None, None
    try:
        meta = json.loads(text)
        if not isinstance(meta, dict) or meta.get("key") != source_key(root):
            return None, None
        if progress is not None:
            progress("reading cache", 0, 1)
        index = _read(root, d, meta, raw=text)
    except CacheDamaged as exc:
        return None, f"{d / _META}: {exc}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        return None, f"{d / _META}: unreadable ({type(exc).__name__})"
    if progress is not None:
        progress("reading cache", 1, 1)
    return index, None


def _read(root: str | os.PathLike, d: Path, meta: dict, raw: str = "") -> Index:
    if not _checksum_matches_text(meta, raw) and meta.get("checksum") != _checksum(meta):
        raise CacheDamaged("changed since it was written (checksum mismatch)")
    data = d / meta["data"]
    for name, size in meta["sizes"].items():
        if (data / name).stat().st_size != size:
            raise CacheDamaged(f"{meta['data']}/{name} changed size")

    def arr(name: str, mmap: bool = False) -> np.ndarray:
        # Numeric columns are read in full (writable, like a fresh build's); only the
        # text columns' offsets and blobs, which are big and read sparsely, stay mapped.
        return np.load(data / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)

    def text(name: str) -> TextColumn:
        return TextColumn(map_bytes(data / f"{name}.bin"), arr(f"{name}.offsets", mmap=True))

    def derived(name: str) -> np.ndarray | None:
        # caches written before these were kept lack them: computed on first use instead
        return arr(name) if f"{name}.npy" in meta["sizes"] else None

    passes = {}
    for p in (1, 2):
        passes[p] = NarrationArrays(
            video_offsets=arr(f"p{p}.video_offsets"),
            time=arr(f"p{p}.time"),
            flags=arr(f"p{p}.flags"),
            text=text(f"p{p}.text"),
            uid=text(f"p{p}.uid"),
            video_beta=derived(f"p{p}.video_beta"),
            clip_rows=derived(f"p{p}.clip_rows"),
        )
    index = Index(
        root=Path(root),
        feature_dir="",
        video_uids=meta["video_uids"],
        clip_uids=meta["clip_uids"],
        clip_video=arr("clip_video"),
        clip_start=arr("clip_start"),
        clip_end=arr("clip_end"),
        clip_order=arr("clip_order"),
        clip_offsets=arr("clip_offsets"),
        passes=passes,
        excluded=arr("excluded"),
        has_features=np.zeros(len(meta["video_uids"]), dtype=bool),
        issues=[Issue(**i) for i in meta["issues"]],
        counts=meta["counts"],
    )
    _check_shapes(index)
    return index


def _check_shapes(index: Index) -> None:
    """The arrays fit together (cheap: lengths and ends, no pass over the data)."""
    V, C = index.n_videos, len(index.clip_uids)
    if not set(map(type, index.video_uids)) <= {str} or not set(map(type, index.clip_uids)) <= {str}:
        raise CacheDamaged("uids that are not strings")
    for name in ("clip_video", "clip_start", "clip_end", "clip_order"):
        if len(getattr(index, name)) != C:
            raise CacheDamaged(f"{name} does not have one entry per clip")
    if len(index.clip_offsets) != V + 1 or len(index.excluded) != V or int(index.clip_offsets[-1]) != C:
        raise CacheDamaged("the video arrays do not match the video list")
    if C and (int(index.clip_video.min()) < 0 or int(index.clip_video.max()) >= V):
        raise CacheDamaged("clips that name no video")
    for p, a in index.passes.items():
        n = len(a.time)
        if len(a.video_offsets) != V + 1 or int(a.video_offsets[-1]) != n or len(a.flags) != n:
            raise CacheDamaged(f"pass {p} arrays do not match the video list")
        for col in (a.text, a.uid):
            if len(col.offsets) != n + 1 or int(col.offsets[-1]) != len(col.blob) or int(col.offsets[0]) != 0:
                raise CacheDamaged(f"pass {p} text offsets do not match the text")
        beta_ok = a.video_beta is None or (a.video_beta.shape == (V,) and a.video_beta.dtype == np.float64)
        rows_ok = a.clip_rows is None or (a.clip_rows.shape == (2, C) and a.clip_rows.dtype == np.int64)
        if not (beta_ok and rows_ok) or (a.clip_rows is not None and C and not _rows_fit(a.clip_rows, n)):
            raise CacheDamaged(f"pass {p} derived arrays do not match the index")


def _rows_fit(rows: np.ndarray, n: int) -> bool:
    return int(rows.min()) >= 0 and int(rows.max()) <= n and bool((rows[0] <= rows[1]).all())


def _checksum(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


_CHECKSUM_HEAD = '{"checksum": "'


def _checksum_matches_text(meta: dict, text: str) -> bool:
    """The checksum, from the file's own text when `save` wrote it (keys sorted, "checksum"
    first): then the rest of the text is the very dump the checksum was taken of, and the
    dump need not be redone. Any other text falls back to `_checksum`."""
    want = meta.get("checksum")
    if not isinstance(want, str) or len(want) != 64 or not text.startswith(_CHECKSUM_HEAD + want + '", '):
        return False
    body = "{" + text[len(_CHECKSUM_HEAD) + 64 + 3 :]
    return hashlib.sha256(body.encode("utf-8")).hexdigest() == want


def new_data_dir(root: str | os.PathLike) -> Path | None:
    """A fresh, empty `data-<token>/` in the cache of `root` for a build to write into, or
    None when no cache folder is writable."""
    d = cache_dir(root)
    import secrets  # writers only: a warm open imports neither secrets nor shutil

    data = d / f"data-{secrets.token_hex(6)}"
    try:
        data.mkdir(parents=True, exist_ok=False)
    except OSError:
        return None
    return data


def save(index: Index, data: Path | None = None, key: dict | None = None) -> Path | None:
    """Write the index into `data` (from new_data_dir; text blobs already there are kept) and
    make it the cache of its root. Returns the cache folder, or None when nothing is writable:
    a cache that cannot be written only costs speed next time, so failures are swallowed.

    key: `source_key` of the root taken before the index was built (default: now). A source
    file changed while it was built then leaves a cache that the next open finds stale.
    """
    if data is None:
        data = new_data_dir(index.root)
        if data is None:
            return None
    import shutil

    d = data.parent
    token = data.name.removeprefix("data-")
    try:
        arrays = {
            "clip_video": index.clip_video,
            "clip_start": index.clip_start,
            "clip_end": index.clip_end,
            "clip_order": index.clip_order,
            "clip_offsets": index.clip_offsets,
            "excluded": index.excluded,
        }
        from engine.windows_prep import pass_geometry  # writers only

        for p, a in index.passes.items():
            # what a warm open would otherwise compute first
            arrays[f"p{p}.video_beta"], arrays[f"p{p}.clip_rows"] = pass_geometry(index, p)
            arrays[f"p{p}.video_offsets"] = a.video_offsets
            arrays[f"p{p}.time"] = a.time
            arrays[f"p{p}.flags"] = a.flags
            arrays[f"p{p}.text.offsets"] = a.text.offsets
            arrays[f"p{p}.uid.offsets"] = a.uid.offsets
            for col in ("text", "uid"):
                path = data / f"p{p}.{col}.bin"
                if not path.exists():
                    with open(path, "wb") as f:
                        f.write(getattr(a, col).blob)
        for name, column in arrays.items():
            np.save(data / f"{name}.npy", np.ascontiguousarray(column), allow_pickle=False)
        meta = {
            "key": key if key is not None else source_key(index.root),
            "data": data.name,
            "video_uids": index.video_uids,
            "clip_uids": index.clip_uids,
            "counts": {k: v for k, v in index.counts.items() if not _feature_count(k)},
            "issues": [asdict(i) for i in index.issues if i.level == "warning" and i.code not in _PER_OPEN],
            "sizes": {f.name: f.stat().st_size for f in sorted(data.iterdir())},
        }
        meta["checksum"] = _checksum(meta)
        tmp = d / f"{_META}.{token}.tmp"
        tmp.write_text(json.dumps(meta, sort_keys=True), "utf-8")  # see _checksum_matches_text
        os.replace(tmp, d / _META)
    except OSError:
        shutil.rmtree(data, ignore_errors=True)
        return None
    for old in d.glob("data-*"):
        if old.name != data.name and not _in_use(old):
            shutil.rmtree(old, ignore_errors=True)
    return d


def _in_use(data: Path) -> bool:
    """A data folder another build is still writing (no index.json names it yet, and young)."""
    import time

    try:
        return not (data / "excluded.npy").exists() and time.time() - data.stat().st_mtime < 3600
    except OSError:
        return False


def _feature_count(key: str) -> bool:
    return key.startswith("feature") or "features" in key


def clear(root: str | os.PathLike) -> None:
    """Remove the cache of `root` (the next open rebuilds it)."""
    import shutil

    shutil.rmtree(cache_dir(root), ignore_errors=True)
