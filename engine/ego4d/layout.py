"""Where things lie in an Ego4D tree: the one place that spells a path of the layout.

    ROOT/ego4d.json                                 videos[], clips[] with video_start_sec / video_end_sec
    ROOT/v1/annotations/narration.json              {video_uid: {narration_pass_1: {narrations: [...]}, ...}}
    ROOT/v1/annotations/nlq_train.json, nlq_val.json, nlq_test_unannotated.json
    ROOT/v1/<feature_dir>/<video_uid>.pt            one (rows, dim) tensor per video, 1.875 rows per second

(docs/ARCHITECTURE.md, "The Ego4D layout"). Also here: the one listing of the feature folders, with
a shape peek that reads a `.pt` file's pickle opcodes without torch and without unpickling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

EGO4D_JSON = "ego4d.json"
FEATURES_SUBDIR = "v1"  # feature folders live in ROOT/v1/<name>/, next to annotations/
ANNOTATIONS = f"{FEATURES_SUBDIR}/annotations"
NARRATION_JSON = f"{ANNOTATIONS}/narration.json"
NLQ_FILES = {
    "train": f"{ANNOTATIONS}/nlq_train.json",
    "val": f"{ANNOTATIONS}/nlq_val.json",
    "test": f"{ANNOTATIONS}/nlq_test_unannotated.json",
}
DEFAULT_FEATURES = "egovlp_fp16"
KNOWN_DIMS = {DEFAULT_FEATURES: 256, "omnivore_video_swinl_fp16": 1536, "slowfast8x8_r101_k400": 2304}
ROWS_PER_SECOND = 30.0 / 16.0  # 16-frame feature windows of 30 fps video
FEATURE_SUFFIX = ".pt"
# The files an index is built from (a change to any of them rebuilds the cached index).
INDEX_SOURCES = (EGO4D_JSON, NARRATION_JSON, NLQ_FILES["val"], NLQ_FILES["test"])


def annotations_dir(root: str | os.PathLike) -> Path:
    return Path(root) / ANNOTATIONS


def nlq_file(root: str | os.PathLike, split: str) -> Path:
    """ROOT/v1/annotations/nlq_<split>.json (`test` -> nlq_test_unannotated.json)."""
    return Path(root) / NLQ_FILES[split]


def feature_root(root: str | os.PathLike) -> Path:
    return Path(root) / FEATURES_SUBDIR


def feature_rel(name: str) -> str:
    """A feature folder's path relative to the root, as issues name it."""
    return f"{FEATURES_SUBDIR}/{name}"


def feature_dir(root: str | os.PathLike, name: str) -> Path:
    return feature_root(root) / name


def feature_file(folder: str | os.PathLike, video_uid: str) -> Path:
    return Path(folder) / f"{video_uid}{FEATURE_SUFFIX}"


def video_uid_of(file_name: str) -> str:
    """The uid a feature file is for: its name up to the first dot, as the notebook took it."""
    return file_name.split(".")[0]


def is_root(path: str | os.PathLike) -> bool:
    return (Path(path) / EGO4D_JSON).is_file()


@dataclass
class FeatureFolder:
    """One folder under ROOT/v1 (not annotations/): its `.pt` files by name, sorted.

    `broken`: `.pt` entries that are not regular files one can open (a dangling or looping
    symlink, a folder named like a file); they count as no features for their video.
    """

    name: str
    path: Path
    files: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    def uids(self) -> set[str]:
        return {video_uid_of(n) for n in self.files}

    def nonempty(self) -> list[str]:
        """Paths of the files with any bytes (a `--no-features` tree has only empty ones)."""
        out = []
        for n in self.files:
            try:
                if os.stat(self.path / n).st_size > 0:
                    out.append(str(self.path / n))
            except OSError:
                continue
        return out

    def peek_dim(self) -> int | None:
        """The dimension of the first non-empty file, without torch (None if none says)."""
        for n in self.files:
            p = self.path / n
            try:
                if os.stat(p).st_size == 0:
                    continue
            except OSError:
                continue
            return peek_feature_dim(p)
        return None


def scan_feature_folder(path: str | os.PathLike, name: str | None = None) -> FeatureFolder:
    """The `.pt` files of one folder, from its directory listing (no open; a stat only for links).

    Raises OSError when the folder cannot be listed.
    """
    path = Path(path)
    files: list[str] = []
    broken: list[str] = []
    with os.scandir(path) as it:
        for e in it:
            if not e.name.endswith(FEATURE_SUFFIX):
                continue
            try:
                ok = e.is_file()  # follows a symlink: a dangling or looping one is not a file
            except OSError:
                ok = False
            (files if ok else broken).append(e.name)
    files.sort()
    broken.sort()
    return FeatureFolder(name or path.name, path, files, broken)


def list_feature_folders(root: str | os.PathLike) -> list[FeatureFolder]:
    """Every folder under ROOT/v1 but annotations/, sorted by name (empty ones included).

    A folder that cannot be listed is left out; `[]` when ROOT/v1 is not a folder.
    """
    base = feature_root(root)
    try:
        subs = sorted(
            e.name for e in os.scandir(base) if e.name != "annotations" and _is_dir(e) and not e.name.startswith(".")
        )
    except OSError:
        return []
    out = []
    for name in subs:
        try:
            out.append(scan_feature_folder(base / name, name))
        except OSError:
            continue
    return out


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def peek_feature_dim(path: str | os.PathLike) -> int | None:
    """The last dimension of the 2-D tensor in a torch `.pt` file, read without torch.

    The file is a zip with a pickle that calls `_rebuild_tensor_v2(storage, offset, shape,
    ...)`; walking its opcodes (nothing is unpickled, so it is safe on untrusted files) finds
    the shape. None when the file is not laid out that way (a sparse or meta tensor, not a
    tensor, damaged): then only a full check, which opens files with torch, knows.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if name is None or z.getinfo(name).file_size > 1 << 20:
                return None
            data = z.read(name)
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return None
    try:
        shape = _rebuild_shape(data)
    except Exception:  # a damaged pickle: the full check will name the file
        return None
    return int(shape[-1]) if shape is not None and len(shape) == 2 else None


def _rebuild_shape(data: bytes) -> list[int] | None:
    import pickletools

    strings: list[str] = []
    seen_rebuild = False
    after_persid = False
    ints: list[int] = []
    for op, arg, _pos in pickletools.genops(data):
        if op.name == "GLOBAL" and isinstance(arg, str) and "_rebuild_tensor" in arg:
            seen_rebuild = True
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(arg))
        elif op.name == "STACK_GLOBAL" and strings and "_rebuild_tensor" in strings[-1]:
            seen_rebuild = True
        elif seen_rebuild and op.name == "BINPERSID":
            after_persid = True
            ints = []
        elif after_persid and op.name in ("BININT", "BININT1", "BININT2", "LONG1", "INT"):
            ints.append(int(arg))  # type: ignore[arg-type]  # these opcodes carry an int
        elif after_persid and op.name in ("TUPLE1", "TUPLE2", "TUPLE3", "TUPLE"):
            return ints[1:]  # the first int is the storage offset
        elif after_persid and op.name not in ("BINPUT", "LONG_BINPUT", "MEMOIZE", "MARK"):
            return None
    return None
