"""The data check: every file of an Ego4D tree validated, all problems collected, features opened.

Unlike `load_index`, which stops at the first error, `check` reports everything (up to a cap
per file) and also opens a sample of the selected folder's feature files with torch, safely
(docs/ARCHITECTURE.md, "The index").
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.ego4d.layout import (
    DEFAULT_FEATURES,
    KNOWN_DIMS,
    NLQ_FILES,
    FeatureFolder,
    feature_rel,
    list_feature_folders,
)
from engine.ego4d.load import apply_features, build_and_cache, cached, check_root, feature_state
from engine.ego4d.nlq import load_nlq
from engine.ego4d.problems import Problems
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy
from engine.errors import DataError
from engine.index import Issue

FEATURE_SAMPLE = 32  # feature files opened by `check` (spread over the folder); all in small trees


@dataclass
class CheckReport:
    root: str
    feature_dir: str
    counts: dict
    issues: list[Issue]
    feature_dirs: list[dict]  # {"name", "dim", "files"}

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {
            "root": self.root,
            "features": self.feature_dir,
            "ok": self.ok,
            "counts": self.counts,
            "feature_dirs": self.feature_dirs,
            "warnings": [asdict(i) for i in self.warnings],
            "errors": [asdict(i) for i in self.errors],
        }


def check(
    root: str | os.PathLike,
    features: str = DEFAULT_FEATURES,
    progress: Progress | None = None,
    use_cache: bool = True,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> CheckReport:
    """Validate every file of an Ego4D tree, collecting all problems instead of stopping."""
    root = Path(root)
    problems = Problems(root, strict=False)
    check_root(root, problems)
    counts: dict = {}
    if problems.errors:
        return CheckReport(str(root), features, counts, problems.issues(), [])
    index = cached(root, problems, progress) if use_cache else None
    cached_issues: list[Issue] = []
    if index is not None:
        cached_issues = list(index.issues)  # warnings of the build that made the cache
    else:
        index = build_and_cache(root, features, problems, progress, use_cache, policy)
    train = load_nlq(root / NLQ_FILES["train"], annotated=True, problems=problems, rel=NLQ_FILES["train"])
    feature_ok = True
    if index is not None:
        feature_ok = apply_features(index, features, problems)
        counts = dict(index.counts)
        counts["queries"] = dict(counts.get("queries", {}))
        if train is not None:
            counts["queries"]["train"] = len(train.queries)
            counts["train_videos"] = len(set(train.video_uids))
        counts["queries"] = {k: counts["queries"][k] for k in ("train", "val", "test") if k in counts["queries"]}
    else:
        feature_state(root, features, problems)
    feature_dirs = _check_feature_dirs(root, features, problems, progress, feature_ok)
    for d in feature_dirs:
        if d["selected"] and counts:
            counts["feature_dim"] = d["dim"]
            counts["empty_feature_files"] = d.get("empty", 0)
    issues = problems.issues() + cached_issues
    issues.sort(key=lambda i: i.level != "error")  # errors first, stable otherwise
    return CheckReport(str(root), features, counts, issues, feature_dirs)


def _check_feature_dirs(
    root: Path, features: str, problems: Problems, progress: Progress | None, feature_ok: bool
) -> list[dict]:
    """Each feature folder as {name, dim, files, selected}; the selected one also has `empty`.

    Of the selected folder, up to FEATURE_SAMPLE non-empty files spread over it are opened
    (safely) and must be 2-D dense tensors of one dimension, the most common among them.
    Other folders: one file is opened to report the dimension.
    """
    from engine.features import load_features

    out: list[dict] = []
    for folder in list_feature_folders(root):
        selected = folder.name == features
        if not folder.files and not selected:
            continue
        entry: dict = {"name": folder.name, "dim": None, "files": len(folder.files), "selected": selected}
        if selected and feature_ok:
            _check_selected(folder, entry, problems, progress)
        elif not selected:
            for f in folder.nonempty()[:1]:
                try:
                    entry["dim"] = int(load_features(f).shape[1])
                except DataError:
                    pass  # only the selected folder is validated
        out.append(entry)
    return out


def _check_selected(folder: FeatureFolder, entry: dict, problems: Problems, progress: Progress | None) -> None:
    from engine.features import load_features

    rel = feature_rel(folder.name)
    nonempty = folder.nonempty()
    entry["empty"] = len(folder.files) - len(nonempty)
    if entry["empty"]:
        kept = set(nonempty)
        first = next(n for n in folder.files if str(folder.path / n) not in kept)
        what = "empty (0-byte) feature files: fine for indexing and the lab, not for training"
        problems.warn("empty_feature_files", rel, what, first, entry["empty"])
    step = max(1, len(nonempty) // FEATURE_SAMPLE)
    sample = nonempty[::step][:FEATURE_SAMPLE]
    shapes: dict[str, int] = {}
    for k, f in enumerate(sample):
        if progress is not None:
            progress("feature files", k, len(sample))
        try:
            shapes[f] = int(load_features(f).shape[1])
        except DataError as exc:
            problems.error("bad_feature_file", rel, str(exc))
    if not shapes:
        return
    dim = Counter(shapes.values()).most_common(1)[0][0]
    entry["dim"] = dim
    for f, d in shapes.items():
        if d != dim:
            problems.error(
                "bad_feature_file",
                rel,
                f"{f}: feature dimension {d}, but this folder's features are {dim}-d; "
                "the file belongs to another feature set or is damaged",
            )
    if folder.name in KNOWN_DIMS and KNOWN_DIMS[folder.name] != dim:
        what = f"features are {dim}-d where this folder name usually means {KNOWN_DIMS[folder.name]}-d"
        problems.warn("unexpected_dim", rel, what, "")
