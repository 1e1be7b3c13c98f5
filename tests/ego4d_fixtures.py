"""Tiny Ego4D trees on disk, in the real layout and field names, for tests.

    from ego4d_fixtures import write_tree, video, edit_json   # tests/ is on sys.path under pytest

    root = write_tree(tmp_path, videos=[
        video("v1", clips=[(0, 60)], pass1=[(1.0, "#C C picks up the knife"), (2.5, "#C C cuts")]),
        video("v2", split="val"),           # listed in nlq_val.json, so excluded from groups
    ])

`write_tree(root, *, videos=3, ...)` writes ROOT/ego4d.json, ROOT/v1/annotations/narration.json,
nlq_train.json, nlq_val.json, nlq_test_unannotated.json and one feature file per video in
ROOT/v1/<feature_dir>/. `videos` is a count (default videos, all train) or a list of `video(...)`
specs. `features="tensor"` (default) writes real (rows, feature_dim) float16 tensors,
`"empty"` 0-byte files like a `--no-features` tree, `None` no folder. Every narration, clip and
query field name is the real one. Returns the root as a Path.

`edit_json(root, rel, fn)` loads a written file, calls `fn(obj)` to edit it in place (its return
value is ignored, so `lambda d: d[...].pop(k)` works), and writes it back: the way to inject one
quirk or one error. `write_json(root, rel, obj)` replaces a file outright. `QUIRKS` lists the
warning codes `quirky_tree` produces.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.index import Index, Issue, NarrationArrays, TextColumn, flags_of

NARRATION = "v1/annotations/narration.json"
EGO4D = "ego4d.json"
NLQ = {
    "train": "v1/annotations/nlq_train.json",
    "val": "v1/annotations/nlq_val.json",
    "test": "v1/annotations/nlq_test_unannotated.json",
}


def _uid(*parts: Any) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


@dataclass
class Video:
    uid: str
    clips: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 60.0)])
    pass1: list[tuple[float, str]] | None = None
    pass2: list[tuple[float, str]] | None = None
    split: str | None = "train"  # "train" / "val" / "test" / None (no NLQ file lists it)
    features: bool = True  # write <uid>.pt
    rows: int = 16  # feature rows when features are real tensors


def default_narrations(n: int = 8, start: float = 1.0, gap: float = 2.0) -> list[tuple[float, str]]:
    verbs = ["picks up the knife", "cuts the onion", "puts the knife down", "opens the tap", "washes the plate"]
    return [(start + i * gap, f"#C C {verbs[i % len(verbs)]}") for i in range(n)]


def video(uid: str, **kw: Any) -> Video:
    """A video spec; pass1 defaults to 8 narrations 2 s apart inside one 60 s clip."""
    v = Video(uid, **kw)
    if v.pass1 is None and "pass1" not in kw:
        v.pass1 = default_narrations()
    return v


def _narr(vu: str, p: int, i: int, t: float, text: str) -> dict:
    return {"timestamp_sec": t, "timestamp_frame": int(round(t * 30)), "_unmapped_timestamp_sec": t,
            "narration_text": text, "annotation_uid": _uid(vu, p, i)}  # fmt: skip


def _nlq_file(vids: list[Video], annotated: bool) -> dict:
    videos = []
    for v in vids:
        clips = []
        for ci, (s, e) in enumerate(v.clips):
            q = {
                "query": "where did I put the knife?",
                "template": "Objects: Where is object X?",
                "slot_x": "knife",
                "verb_x": "put",
            }
            if annotated:
                q.update(clip_start_sec=1.0, clip_end_sec=3.0, video_start_sec=s + 1.0, video_end_sec=s + 3.0,
                         video_start_frame=int((s + 1) * 30), video_end_frame=int((s + 3) * 30))  # fmt: skip
            clips.append({
                "clip_uid": _uid(v.uid, "clip", ci), "video_start_sec": s, "video_end_sec": e,
                "video_start_frame": int(s * 30), "video_end_frame": int(e * 30),
                "clip_start_sec": 0.0, "clip_end_sec": e - s, "clip_start_frame": 0, "clip_end_frame": int((e - s) * 30),
                "source_clip_uid": _uid(v.uid, "src", ci),
                "annotations": [{"language_queries": [q], "annotation_uid": _uid(v.uid, "ann", ci)}],
            })  # fmt: skip
        videos.append({"video_uid": v.uid, "clips": clips, "split": "train" if annotated else "test"})
    return {
        "version": "v1",
        "date": "220101",
        "description": "NLQ annotations (tests)",
        "manifest": "manifest.csv",
        "videos": videos,
    }


def write_json(root: Path, rel: str, obj: Any) -> Path:
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj), "utf-8")
    return p


def write_tree(
    root: str | Path,
    *,
    videos: int | list[Video] = 3,
    features: str | None = "tensor",
    feature_dir: str = "egovlp_fp16",
    feature_dim: int = 256,
) -> Path:
    """Write a small Ego4D tree under `root` (see the module docstring); returns the root."""
    import torch

    root = Path(root)
    vids = [video(f"video-{i}") for i in range(videos)] if isinstance(videos, int) else list(videos)
    clips = []
    for v in vids:
        for ci, (s, e) in enumerate(v.clips):
            clips.append(
                {"clip_uid": _uid(v.uid, "clip", ci), "video_uid": v.uid, "video_start_sec": s, "video_end_sec": e}
            )
    ego = {
        "version": "v1",
        "date": "220101",
        "videos": [{"video_uid": v.uid, "duration_sec": max([e for _, e in v.clips] or [0.0])} for v in vids],
        "clips": clips,
    }
    write_json(root, EGO4D, ego)
    narration = {}
    for v in vids:
        entry: dict = {"status": "complete"}
        for p, narrs in ((1, v.pass1), (2, v.pass2)):
            if narrs is not None:
                entry[f"narration_pass_{p}"] = {
                    "narrations": [_narr(v.uid, p, i, t, text) for i, (t, text) in enumerate(narrs)],
                    "summaries": [{"start_sec": 0.0, "end_sec": 60.0, "summary_text": "#summary C cooks."}],
                }
        if v.pass1 is not None or v.pass2 is not None:
            narration[v.uid] = entry
    write_json(root, NARRATION, narration)
    for split, rel in NLQ.items():
        write_json(root, rel, _nlq_file([v for v in vids if v.split == split], annotated=split != "test"))
    if features is not None:
        fdir = root / "v1" / feature_dir
        fdir.mkdir(parents=True, exist_ok=True)
        gen = torch.Generator().manual_seed(0)
        for v in vids:
            if not v.features:
                continue
            path = fdir / f"{v.uid}.pt"
            if features == "empty":
                path.write_bytes(b"")
            else:
                torch.save(torch.randn(v.rows, feature_dim, generator=gen).half(), path)
    return root


def edit_json(root: str | Path, rel: str, fn: Callable[[Any], Any]) -> Path:
    """Load ROOT/rel, let `fn` edit the object in place, write it back."""
    p = Path(root) / rel
    obj = json.loads(p.read_text("utf-8"))
    fn(obj)
    p.write_text(json.dumps(obj), "utf-8")
    return p


# (warning code, file) pairs that quirky_tree must produce; engine.ego4d counts each.
QUIRKS = [
    ("template_null", NLQ["train"]),
    ("query_missing", NLQ["train"]),
    ("zero_length_answer", NLQ["train"]),
    ("curly_quotes", NLQ["train"]),
    ("unknown_field", NLQ["train"]),
    ("curly_quotes", NARRATION),
    ("unsure_narrations_pass_1", NARRATION),
    ("other_person_narrations_pass_1", NARRATION),
    ("unsorted_timestamps", NARRATION),
    ("duplicate_timestamps", NARRATION),
    ("video_without_clips", NARRATION),
    ("only_pass_2", NARRATION),
    ("unknown_field", NARRATION),
]


def quirky_tree(root: str | Path) -> Path:
    """A tree with every real-data quirk once (or a known number of times), and no error."""
    root = write_tree(
        root,
        videos=[
            video(
                "q-main",
                pass1=[
                    (5.0, "#C C opens the fridge\u2019s door"),
                    (1.0, "#C C picks up a cup #unsure"),
                    (3.0, "#O man X waves"),
                    (3.0, "#C C drinks"),
                    (7.0, "#C C puts the cup down"),
                ],
            ),  # fmt: skip
            video("q-noclip", clips=[], pass1=[(1.0, "#C C walks"), (2.0, "#C C sits")]),
            video("q-pass2", pass1=None, pass2=[(1.0, "#C C reads"), (2.0, "#C C writes")]),
            video("q-val", split="val"),
        ],
    )

    def quirk_train(d: dict) -> None:
        q = d["videos"][0]["clips"][0]["annotations"][0]["language_queries"]
        base = dict(q[0])
        q.append({**base, "template": None})
        q.append({k: v for k, v in base.items() if k != "query"})
        q.append({**base, "clip_end_sec": base["clip_start_sec"]})
        q.append({**base, "query": "where is the cup\u2019s lid?"})
        q.append({**base, "extra_field_from_the_future": 1})

    edit_json(root, NLQ["train"], quirk_train)

    def quirk_narr(d: dict) -> None:
        d["q-main"]["narration_pass_1"]["narrations"][0]["new_field"] = "x"

    edit_json(root, NARRATION, quirk_narr)
    return root


# The plain builder: the streaming reader of engine.ego4d must give the same index as this.
def build_index(
    root: Path,
    feature_dir: str,
    ego4d: dict,
    narration: dict,
    excluded_uids: set[str],
    feature_uids: set[str],
    issues: list[Issue] | None = None,
) -> Index:
    """Build an Index from already-parsed, already-validated JSON objects.

    `ego4d` is ego4d.json (only `clips` is read here), `narration` is narration.json.
    Video numbering: videos of narration.json first (file order), then videos that only
    appear in ego4d.json clips.
    """
    video_uids: list[str] = list(narration.keys())
    seen = set(video_uids)
    clips = ego4d.get("clips") or []
    for c in clips:
        vu = c.get("video_uid")
        if vu is not None and vu not in seen:
            seen.add(vu)
            video_uids.append(vu)
    row = {u: i for i, u in enumerate(video_uids)}
    V = len(video_uids)

    clip_uids = [str(c.get("clip_uid")) for c in clips]
    clip_video = np.array([row[c["video_uid"]] for c in clips], dtype=np.int32)
    clip_start = np.array([float(c["video_start_sec"]) for c in clips], dtype=np.float64)
    clip_end = np.array([float(c["video_end_sec"]) for c in clips], dtype=np.float64)
    clip_order = np.argsort(clip_video, kind="stable").astype(np.int32)
    clip_offsets = np.zeros(V + 1, dtype=np.int64)
    np.cumsum(np.bincount(clip_video, minlength=V), out=clip_offsets[1:])

    passes: dict[int, NarrationArrays] = {}
    for p in (1, 2):
        key = f"narration_pass_{p}"
        times: list[float] = []
        texts: list[str] = []
        uids: list[str] = []
        offsets = np.zeros(V + 1, dtype=np.int64)
        for v, vu in enumerate(video_uids):
            entry = narration.get(vu) or {}
            narrs = ((entry.get(key) or {}).get("narrations")) or []
            order = sorted(range(len(narrs)), key=lambda i: narrs[i]["timestamp_sec"])  # stable
            for i in order:
                n = narrs[i]
                times.append(float(n["timestamp_sec"]))
                texts.append(str(n.get("narration_text") or ""))
                uids.append(str(n.get("annotation_uid") or ""))
            offsets[v + 1] = len(times)
        passes[p] = NarrationArrays(
            video_offsets=offsets,
            time=np.array(times, dtype=np.float64),
            flags=np.array([flags_of(t) for t in texts], dtype=np.uint8),
            text=TextColumn.from_strings(texts),
            uid=TextColumn.from_strings(uids),
        )

    return Index(
        root=Path(root),
        feature_dir=feature_dir,
        video_uids=video_uids,
        clip_uids=clip_uids,
        clip_video=clip_video,
        clip_start=clip_start,
        clip_end=clip_end,
        clip_order=clip_order,
        clip_offsets=clip_offsets,
        passes=passes,
        excluded=np.array([u in excluded_uids for u in video_uids], dtype=bool),
        has_features=np.array([u in feature_uids for u in video_uids], dtype=bool),
        issues=list(issues or []),
    )


@pytest.fixture
def parallel(monkeypatch):
    """What each parallel read gave (None: it fell back to the serial reader)."""
    from engine.ego4d import parallel as par

    outcomes: list = []
    real = par.read_parallel

    def spy(*a, **kw):
        outcomes.append(real(*a, **kw))
        return outcomes[-1]

    monkeypatch.setattr(par, "read_parallel", spy)
    return outcomes
