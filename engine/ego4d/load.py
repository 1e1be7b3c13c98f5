"""Build the `Index` of an Ego4D tree (engine/index.py) from its files, or take it from the cache.

What real files contain (a null `template`, a query without `query`, zero-length answers,
curly apostrophes, `#unsure` / `#O` narrations, unsorted or duplicate timestamps, videos with
narrations but no clips or with only `narration_pass_2`, unknown extra fields) is accepted and
counted as a warning. Anything else is a `DataError` whose one line names the file, the JSON
path or video, and what to do. Feature files are never opened here: only whether
`<video_uid>.pt` exists counts (docs/ARCHITECTURE.md, "The index").
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.ego4d.layout import (
    ANNOTATIONS,
    DEFAULT_FEATURES,
    EGO4D_JSON,
    NARRATION_JSON,
    NLQ_FILES,
    feature_dir,
    feature_rel,
    feature_root,
    list_feature_folders,
    scan_feature_folder,
)
from engine.ego4d.problems import (
    Problems,
    as_seconds,
    clean_text,
    describe_bad_number,
    disp,
    json_type,
    read_json,
    warn_surrogates,
)
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy
from engine.index import FLAG_OTHER, FLAG_UNSURE, Index

if TYPE_CHECKING:
    from engine.ego4d.nlq import NLQSplit

# engine.ego4d.narration and .nlq are imported where a build needs them: a warm open (the
# cache) never does, and they are the biggest modules on its way (docs/ARCHITECTURE.md, "Scale").


def read_clips(root: Path, problems: Problems) -> tuple[list[dict], int] | None:
    """The validated clips of ego4d.json (clip_uid, video_uid, start, end) and its video count."""
    rel = EGO4D_JSON
    shown = disp(root, rel)
    data = _quick_json(root / rel)
    quick = data is not None
    if not quick:
        data = read_json(root, rel, problems, "ego4d.json")
    if data is None:
        return None
    if type(data) is not dict:
        problems.error(
            "wrong_top_type",
            rel,
            f"{shown}: top level is {json_type(data)}, expected an object with 'videos' and 'clips'; "
            "this is not Ego4D's ego4d.json",
        )
        return None
    clips = data.get("clips")
    if type(clips) is not list:
        what = "missing" if clips is None else json_type(clips)
        problems.error(
            "no_clips",
            rel,
            f"{shown}: 'clips' is {what}, expected a list of clips; use the full ego4d.json metadata file",
        )
        return None
    videos = data.get("videos")
    if type(videos) is not list:
        what = (
            f"'videos' is {'missing' if 'videos' not in data else json_type(videos)}, not a list (counted as 0 videos)"
        )
        problems.warn("videos_not_list", rel, what, "top level")
    if quick:
        out = _plain_clips(clips, shown, rel, problems)
    else:
        out = [c for i, raw in enumerate(clips) if (c := _clip(i, raw, shown, rel, problems)) is not None]
    return out, len(videos) if type(videos) is list else 0


def _quick_json(p: Path) -> Any:
    """A JSON file decoded by msgspec, or None: read it with `read_json`, which reports why
    it cannot be (msgspec refuses all that Python's json reports or reads differently: a
    byte-order mark, NaN, lone surrogates, overlong integers, deep nesting)."""
    try:
        import msgspec
    except ImportError:
        return None
    try:
        if not p.is_file():
            return None
        return msgspec.json.decode(p.read_bytes())
    except (OSError, RecursionError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _plain_clips(clips: list, shown: str, rel: str, problems: Problems) -> list[dict]:
    """`_clip` of every clip, the common ones (decoded by msgspec: no lone surrogates; float
    times in order) taken as they are."""
    out = []
    for i, c in enumerate(clips):
        if type(c) is dict:
            vu, cu, start, end = c.get("video_uid"), c.get("clip_uid"), c.get("video_start_sec"), c.get("video_end_sec")
            if type(vu) is str and vu and type(cu) is str and type(start) is float and type(end) is float:
                if start <= end and math.isfinite(start) and math.isfinite(end):
                    out.append({"clip_uid": cu, "video_uid": vu, "start": start, "end": end})
                    continue
        got = _clip(i, c, shown, rel, problems)
        if got is not None:
            out.append(got)
    return out


def _clip(i: int, c, shown: str, rel: str, problems: Problems) -> dict | None:
    where = f"clips[{i}]"
    if type(c) is not dict:
        what = f"is {json_type(c)}, expected an object"
        problems.error("bad_clip", rel, f"{shown}: {where} {what}; fix or re-download the file")
        return None
    vu, cu = c.get("video_uid"), c.get("clip_uid")
    if type(vu) is not str or not vu:
        what = f"is {'missing' if vu is None else json_type(vu)}, expected a video uid string"
        problems.error("bad_clip", rel, f"{shown}: {where}.video_uid {what}; fix or re-download the file")
        return None
    vu, bad1 = clean_text(vu)
    cu, bad2 = clean_text(cu) if type(cu) is str else ("" if cu is None else str(cu), False)
    if bad1 or bad2:
        warn_surrogates(problems, rel, where)
    times = []
    for k in ("video_start_sec", "video_end_sec"):
        t = as_seconds(c.get(k))
        if t is None:
            what = "missing" if k not in c else describe_bad_number(c[k])
            problems.error(
                "bad_timestamp",
                rel,
                f"{shown}: {where}.{k} is {what} (clip of video {vu!r}), expected a number of seconds; "
                "fix or re-download the file",
            )
        times.append(t)
    start, end = times
    if start is None or end is None:
        return None
    if end < start:
        problems.error(
            "bad_clip",
            rel,
            f"{shown}: {where} ends before it starts ({start} > {end}, video {vu!r}); fix or re-download the file",
        )
        return None
    return {"clip_uid": cu, "video_uid": vu, "start": start, "end": end}


def feature_state(root: Path, name: str, problems: Problems) -> set[str]:
    """Video uids with a feature file in ROOT/v1/<name>; broken entries are counted warnings."""
    rel = feature_rel(name)
    p = feature_dir(root, name)
    if not p.is_dir():
        others = [f.name for f in list_feature_folders(root)]
        hint = (
            f"; folders here: {', '.join(others)} (pick one with --features)"
            if others
            else "; copy the features there or pick another folder with --features"
        )
        what = "is a file, expected a folder of <video_uid>.pt files" if p.exists() else "not found"
        problems.error("no_feature_dir", rel, f"{p}: feature folder {what}{hint}")
        return set()
    try:
        folder = scan_feature_folder(p, name)
    except OSError as exc:
        problems.error(
            "unreadable", rel, f"{p}: cannot list the feature folder ({exc.strerror}); check its permissions"
        )
        return set()
    if folder.broken:
        what = "feature files that cannot be opened (dangling or looping symlinks, folders): no features there"
        problems.warn("broken_feature_files", rel, what, folder.broken[0], len(folder.broken))
    return folder.uids()


def _index_arrays(clips: list[dict], video_uids: list[str], passes: dict, excluded_uids: set[str]) -> dict:
    """The Index fields of the clips and videos (video_uids grows by the videos only in clips)."""
    row = {u: i for i, u in enumerate(video_uids)}
    for c in clips:
        if c["video_uid"] not in row:
            row[c["video_uid"]] = len(video_uids)
            video_uids.append(c["video_uid"])
    V = len(video_uids)
    for pn in (1, 2):  # videos only in ego4d.json have no narrations: pad the CSR offsets
        a = passes[pn]
        if len(a.video_offsets) < V + 1:
            pad = np.full(V + 1 - len(a.video_offsets), a.video_offsets[-1], dtype=np.int64)
            a.video_offsets = np.concatenate([a.video_offsets, pad])
    clip_video = np.array([row[c["video_uid"]] for c in clips], dtype=np.int32)
    clip_offsets = np.zeros(V + 1, dtype=np.int64)
    np.cumsum(np.bincount(clip_video, minlength=V), out=clip_offsets[1:])
    return {
        "video_uids": video_uids,
        "clip_uids": [c["clip_uid"] for c in clips],
        "clip_video": clip_video,
        "clip_start": np.array([c["start"] for c in clips], dtype=np.float64),
        "clip_end": np.array([c["end"] for c in clips], dtype=np.float64),
        "clip_order": np.argsort(clip_video, kind="stable").astype(np.int32),
        "clip_offsets": clip_offsets,
        "passes": passes,
        "excluded": np.array([u in excluded_uids for u in video_uids], dtype=bool),
        "has_features": np.zeros(V, dtype=bool),
    }


def build(
    root: Path,
    features: str,
    problems: Problems,
    progress: Progress | None,
    workdir: Path,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> Index | None:
    from engine.ego4d.narration import read_narrations
    from engine.ego4d.nlq import load_nlq

    splits: dict[str, NLQSplit | None] = {}
    clips_got: list = []

    def others() -> None:  # read while worker processes decode narration.json
        clips_got.append(read_clips(root, problems))
        if progress is not None:
            progress("ego4d.json", 1, 1)
        for split in ("val", "test"):
            rel = NLQ_FILES[split]
            splits[split] = load_nlq(root / rel, annotated=split != "test", problems=problems, rel=rel)

    nar = read_narrations(root, problems, progress, workdir, policy, before=others)
    got = clips_got[0] if clips_got else None
    val, test = splits.get("val"), splits.get("test")
    if got is None or nar is None or val is None or test is None:
        return None
    clips, n_ego_videos = got
    video_uids, passes, curly = nar
    n_narrated = len(video_uids)
    val_uids, test_uids = set(val.video_uids), set(test.video_uids)
    index = Index(root=root, feature_dir=features, **_index_arrays(clips, video_uids, passes, val_uids | test_uids))
    V = index.n_videos
    n_clips_per_video = np.diff(index.clip_offsets)
    narrated = (np.diff(passes[1].video_offsets) + np.diff(passes[2].video_offsets)) > 0
    no_clips = np.flatnonzero(narrated & (n_clips_per_video == 0))
    if len(no_clips):
        what = "narrated videos with no clip in ego4d.json (no groups)"
        problems.warn("video_without_clips", NARRATION_JSON, what, f"video {video_uids[no_clips[0]]!r}", len(no_clips))
    index.counts = {
        "videos": V,
        "videos_in_ego4d_json": n_ego_videos,
        "narrated_videos": n_narrated,
        "clips": len(clips),
        "narrations": {f"pass_{pn}": len(passes[pn]) for pn in (1, 2)},
        "unsure_narrations": {f"pass_{pn}": int(np.count_nonzero(passes[pn].flags & FLAG_UNSURE)) for pn in (1, 2)},
        "other_person_narrations": {
            f"pass_{pn}": int(np.count_nonzero(passes[pn].flags & FLAG_OTHER)) for pn in (1, 2)
        },
        "queries": {"val": len(val.queries), "test": len(test.queries)},
        "val_videos": len(val_uids),
        "test_videos": len(test_uids),
        "excluded_videos": int(index.excluded.sum()),
        "videos_without_clips": int(np.count_nonzero(n_clips_per_video == 0)),
    }
    _text_warnings(index, problems, curly)
    index.issues = problems.issues()
    return index


def _curly_rows(index: Index, counted: dict) -> tuple[int, int, int]:
    """(rows with curly quotes, the pass and the video of the first); counted by the reader
    where it could, else found in the text blobs."""
    found = {}
    for pn in (1, 2):
        if counted.get(pn) is not None:
            found[pn] = counted[pn]
            continue
        from engine.ego4d.narration import CURLY_BYTES, rows_matching

        rows = rows_matching(index.passes[pn].text, CURLY_BYTES)
        v = int(np.searchsorted(index.passes[pn].video_offsets, rows[0], side="right")) - 1 if len(rows) else -1
        found[pn] = (len(rows), v)
    pn = 1 if found[1][0] else 2
    return found[1][0] + found[2][0], pn, found[pn][1]


def _text_warnings(index: Index, problems: Problems, counted: dict) -> None:
    counts = index.counts
    n_curly, pn, v = _curly_rows(index, counted)
    if n_curly:
        what = "narrations with curly apostrophes or quotes (kept as they are)"
        where = f"video {index.video_uids[v]!r} narration_pass_{pn}"
        problems.warn("curly_quotes", NARRATION_JSON, what, where, n_curly)
    for pn in (1, 2):
        f = NARRATION_JSON
        what = f"narration_pass_{pn} narrations tagged #unsure"
        problems.warn(f"unsure_narrations_pass_{pn}", f, what, "", counts["unsure_narrations"][f"pass_{pn}"])
        what = f"narration_pass_{pn} #O narrations (about another person)"
        problems.warn(
            f"other_person_narrations_pass_{pn}", f, what, "", counts["other_person_narrations"][f"pass_{pn}"]
        )


def apply_features(index: Index, features: str, problems: Problems) -> bool:
    uids = feature_state(index.root, features, problems)
    index.feature_dir = features
    index.has_features = np.fromiter((u in uids for u in index.video_uids), dtype=bool, count=index.n_videos)
    narrated = (np.diff(index.passes[1].video_offsets) + np.diff(index.passes[2].video_offsets)) > 0
    c = index.counts
    c["feature_dir"] = features
    c["feature_files"] = len(uids)
    c["videos_with_features"] = int(np.count_nonzero(index.has_features))
    c["videos_without_features"] = int(index.n_videos - c["videos_with_features"])
    c["narrated_videos_with_features"] = int(np.count_nonzero(index.has_features & narrated))
    c["feature_coverage"] = round(c["narrated_videos_with_features"] / max(1, int(narrated.sum())), 4)
    return not problems.errors_in(feature_rel(features))


def load_index(
    root: str | os.PathLike,
    features: str = DEFAULT_FEATURES,
    progress: Progress | None = None,
    use_cache: bool = True,
    policy: ReadPolicy = DEFAULT_POLICY,
    secret_names: Iterable[str] | None = None,
) -> Index:
    """The Index of an Ego4D tree, from the cache when its source files are unchanged.

    Raises DataError (one line: file, JSON path or video, what to do) at the first problem.
    `progress(stage, done, total)` is called as loading goes on. Feature files are never
    opened here: only whether `<video_uid>.pt` exists counts.

    secret_names: the variables besides *_API_KEY that may hold an LLM key. A caller that
    names them (even none) lets a process that runs threads build a big tree's index in a
    helper process (engine.ego4d.child_build), whose environment has none of them; without
    it (None), such a process reads the tree itself, serially.
    """

    root = Path(root)
    problems = Problems(root, strict=True)
    check_root(root, problems)
    index = cached(root, problems, progress) if use_cache else None
    if index is None and use_cache and secret_names is not None:
        from engine.ego4d import child_build

        if child_build.worth_it(root, policy) and child_build.build_in_child(
            root, features, progress, policy, secret_names
        ):
            index = cached(root, problems, progress)
    if index is None:
        index = build_and_cache(root, features, problems, progress, use_cache, policy)
        assert index is not None  # strict mode raised otherwise
    apply_features(index, features, problems)
    _add_feature_warnings(index, problems)
    return index


def cached(root: Path, problems: Problems, progress: Progress | None) -> Index | None:
    """The cached index, or None; a damaged cache (edited by hand) is a counted warning."""
    from engine import cache

    index, damage = cache.load_checked(root, progress)
    if damage is not None:
        problems.warn("cache_rebuilt", ".nlq-cache", "index cache damaged or edited by hand (rebuilt)", damage)
    return index


def _add_feature_warnings(index: Index, problems: Problems) -> None:
    # Feature warnings are per open (the folder is rescanned each time), never cached.
    per_open = ("broken_feature_files", "cache_rebuilt")
    extra = [i for i in problems.issues() if i.level == "warning" and i.code in per_open]
    index.issues = [i for i in index.issues if i.code not in per_open] + extra


def build_and_cache(
    root: Path,
    features: str,
    problems: Problems,
    progress: Progress | None,
    use_cache: bool,
    policy: ReadPolicy = DEFAULT_POLICY,
    workdir: Path | None = None,
) -> Index | None:
    """Build the index (text blobs go straight to files), and cache it when it has no error.

    workdir: the cache's new data folder (cache.new_data_dir) when the caller made it (a helper
    process builds into the one its parent made, engine.ego4d.child_build)."""
    import shutil
    import tempfile

    from engine import cache

    if workdir is None:
        workdir = cache.new_data_dir(root) if use_cache else None
    cached = workdir is not None
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="nlq-index-"))
    index = None
    key = cache.source_key(root)  # before reading: a file changed meanwhile makes this cache stale
    try:
        index = build(root, features, problems, progress, workdir, policy)
    finally:
        if index is None or problems.errors or not cached:
            # The blobs are mapped; on POSIX the mapping outlives the files' names.
            shutil.rmtree(workdir, ignore_errors=True)
    if index is not None and cached and not problems.errors:
        if progress is not None:
            progress("writing cache", 0, 1)
        cache.save(index, workdir, key)
    return index


def check_root(root: Path, problems: Problems) -> None:
    if not root.exists():
        problems.error(
            "root_missing",
            ".",
            f"{root}: data root not found; pass the folder that holds {EGO4D_JSON} and {ANNOTATIONS}/",
        )
    elif not root.is_dir():
        problems.error(
            "root_missing",
            ".",
            f"{root}: is a file, expected the Ego4D data root folder ({EGO4D_JSON}, {ANNOTATIONS}/)",
        )


__all__ = ["build", "build_and_cache", "check_root", "feature_root", "load_index", "read_clips"]
