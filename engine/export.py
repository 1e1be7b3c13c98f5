"""Export reviewed candidates as an NLQ file the official Ego4D tools read unchanged.

The file has the nesting and field names of `nlq_train.json`: videos -> clips -> annotations
-> language_queries. `clip_start_sec`/`clip_end_sec` of a query are relative to its clip,
`video_start_sec`/`video_end_sec` absolute; a clip carries its own span in the video.
Each exported candidate is one annotation whose `annotation_uid` is derived from the
candidate id, so (annotation_uid, query index 0) names the same question in every export,
whatever else was selected (the official prepare script identifies a query by its
annotation_uid and its index in `language_queries`).

Beside the file, `<file>.manifest.json` says where every query came from: candidate id,
source narration, reviewer, model and prompt version, plus counts by status and reason, the
data root and the file's sha256.

Val and test videos never go into a training file: an export that would include one is
refused, naming the candidates, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError, DataError
from engine.store import STATUSES, CandidateStore
from engine.workspace import Workspace, atomic_write_bytes, atomic_write_json

DEFAULT_STATUSES = frozenset({"accepted", "edited"})
# "all": every valid candidate the reviewer has not thrown out.
ALL_STATUSES = frozenset(STATUSES) - {"rejected"}
CANONICAL_FPS = 30.0  # Ego4D frame numbers are at 30 fps
ANNOTATION_NAMESPACE = uuid.UUID("4f1c2b9e-7d35-5a0e-9a51-6e2b8f0c4d17")


def parse_statuses(spec: str | None) -> frozenset[str]:
    """`accepted,edited` (default) | `all` | any comma list of statuses."""
    if not spec:
        return DEFAULT_STATUSES
    if spec.strip() == "all":
        return ALL_STATUSES
    out = frozenset(s.strip() for s in spec.split(",") if s.strip())
    unknown = sorted(out - set(STATUSES))
    if unknown or not out:
        raise ConfigError(
            f"--status {spec!r}: unknown status {', '.join(unknown) or '(none)'}; "
            f"use 'all' or a comma list of {', '.join(STATUSES)}"
        )
    return out


def annotation_uid(candidate_id: str) -> str:
    return str(uuid.uuid5(ANNOTATION_NAMESPACE, candidate_id))


def heldout_videos(data_root: Path) -> dict[str, str]:
    """video_uid -> "val" / "test" for every video of the root's NLQ val and test files."""
    ann = Path(data_root) / "v1" / "annotations"
    files = {"val": ann / "nlq_val.json", "test": ann / "nlq_test_unannotated.json"}
    if not files["val"].is_file() and not files["test"].is_file():
        raise DataError(
            f"{ann}: neither nlq_val.json nor nlq_test_unannotated.json is there, so the export "
            "cannot make sure no val/test video leaks into it; pass --data with the Ego4D root"
        )
    out: dict[str, str] = {}
    for split, path in files.items():
        if not path.is_file():
            continue
        for uid in _video_uids(path):
            out.setdefault(uid, split)
    return out


def _video_uids(path: Path) -> list[str]:
    try:
        from engine.ego4d import load_nlq
    except ImportError:  # the reader is optional here; a plain read gives the same uids
        load_nlq = None
    if load_nlq is not None:
        split = load_nlq(path)
        return list(split.video_uids) if split is not None else []
    try:
        data = json.loads(path.read_bytes())
        return [v["video_uid"] for v in data["videos"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: cannot read its videos ({exc}); fix or re-download the file") from None


def template_name(c: dict) -> str:
    backend = (c.get("backend") or "").lower()
    if backend == "template":
        return f"template: {(c.get('checks') or {}).get('template') or c.get('model') or 'rule'}"
    return f"LLM: {c.get('model') or backend or 'unknown'}"


@dataclass
class ExportResult:
    file: Path
    manifest: Path
    exported: int
    sha256: str
    statuses: list[str]
    counts: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "exported": self.exported,
            "file": str(self.file),
            "manifest": str(self.manifest),
            "sha256": self.sha256,
            "statuses": self.statuses,
            "counts": self.counts,
        }


def _frame(sec: float) -> int:
    return int(round(sec * CANONICAL_FPS))


def export(
    workspace: Workspace | str | Path,
    out: str | Path,
    *,
    statuses: frozenset[str] = DEFAULT_STATUSES,
    data_root: str | Path | None = None,
    store: CandidateStore | None = None,
) -> ExportResult:
    """Write the NLQ file and its manifest; returns what was written."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace, create=False)
    root = data_root or ws.get("data_root")
    if not root:
        raise ConfigError(
            "no data root to check val/test videos against; pass --data ROOT (or choose it on the Data screen)"
        )
    root = Path(root).expanduser().resolve()
    heldout = heldout_videos(root)
    own = store is None
    store = store or CandidateStore(ws).load()
    store.load()
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give a file name such as {out / 'nlq_aug.json'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")

    picked = [r for r in store.rows if r.valid and store.status(r.id) in statuses]
    leaks = [r for r in picked if r.video_uid in heldout]
    if leaks:
        shown = ", ".join(f"{r.id} ({heldout[r.video_uid]})" for r in leaks[:3])
        raise DataError(
            f"{len(leaks)} selected candidates come from NLQ val/test videos ({shown}"
            f"{', ...' if len(leaks) > 3 else ''}); training on them would leak evaluation data. "
            "Reject them on the Review screen (filter by video) and export again"
        )

    videos: dict[str, dict[str, dict]] = {}
    provenance = []
    prompt_versions: Counter[str] = Counter()
    for r in picked:
        c = store.candidate(r.id)
        w = c["window"]
        clip_start, clip_end = float(w["clip_start"]), float(w["clip_end"])
        rel_s, rel_e = float(w["clip_rel_start"]), float(w["clip_rel_end"])
        clips = videos.setdefault(c["video_uid"], {})
        clip = clips.get(c["clip_uid"])
        if clip is None:
            clip = clips[c["clip_uid"]] = {
                "clip_uid": c["clip_uid"],
                "video_start_sec": clip_start,
                "video_end_sec": clip_end,
                "video_start_frame": _frame(clip_start),
                "video_end_frame": _frame(clip_end),
                "clip_start_sec": 0.0,
                "clip_end_sec": clip_end - clip_start,
                "clip_start_frame": 0,
                "clip_end_frame": _frame(clip_end - clip_start),
                "source_clip_uid": c["clip_uid"],
                "annotations": [],
            }
        review = c.get("review") or {}
        text = review.get("text") if c["status"] == "edited" and review.get("text") else c["query"]
        auid = annotation_uid(r.id)
        vs, ve = clip_start + rel_s, clip_start + rel_e
        clip["annotations"].append(
            {
                "annotation_uid": auid,
                "language_queries": [
                    {
                        "clip_start_sec": rel_s,
                        "clip_end_sec": rel_e,
                        "video_start_sec": vs,
                        "video_end_sec": ve,
                        "video_start_frame": _frame(vs),
                        "video_end_frame": _frame(ve),
                        "template": template_name(c),
                        "query": text,
                        "slot_x": None,
                        "verb_x": None,
                        "slot_y": None,
                        "verb_y": None,
                        "raw_tags": [],
                    }
                ],
            }
        )
        pv = c.get("prompt_version")
        prompt_versions["" if pv is None else str(pv)] += 1
        narration = c.get("narration") or {}
        provenance.append(
            {
                "annotation_uid": auid,
                "candidate_id": r.id,
                "video_uid": c["video_uid"],
                "clip_uid": c["clip_uid"],
                "status": c["status"],
                "reviewer": review.get("reviewer"),
                "reviewed_at": review.get("t"),
                "narration": {k: narration.get(k) for k in ("uid", "text", "t", "number")},
                "original_query": c["query"] if text != c["query"] else None,
                "backend": c.get("backend"),
                "model": c.get("model"),
                "prompt_version": c.get("prompt_version"),
            }
        )

    doc = {
        "version": "v1",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "description": f"nlq-tui synthetic NLQ ({', '.join(sorted(statuses))}) from {ws.path}",
        "manifest": out.name + ".manifest.json",
        "videos": [
            {"video_uid": vid, "clips": [clips[k] for k in sorted(clips)]} for vid, clips in sorted(videos.items())
        ],
    }
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    atomic_write_bytes(out, data)
    digest = hashlib.sha256(data).hexdigest()

    review_reasons: Counter[str] = Counter()
    for cid, st in store.states.items():
        if st["status"] == "rejected" and cid in store.by_id:
            review_reasons[st.get("reason") or "unspecified"] += 1
    generation_reasons: Counter[str] = Counter()
    for rejected in store.group_rejections():
        generation_reasons[rejected.get("reason") or "unspecified"] += 1
    manifest_path = out.with_name(out.name + ".manifest.json")
    manifest = {
        "file": out.name,
        "sha256": digest,
        "exported": len(provenance),
        "statuses": sorted(statuses),
        "created": time.time(),
        "workspace": str(ws.path),
        "data_root": str(root),
        "heldout_videos_checked": len(heldout),
        "counts_by_status": store.counts(),
        "invalid_candidates": sum(1 for r in store.rows if not r.valid),
        "rejected_by_reason": dict(sorted(review_reasons.items())),
        "generation_rejected_by_reason": dict(sorted(generation_reasons.items())),
        "prompt_versions": {k: v for k, v in sorted(prompt_versions.items())},
        "prompts": _prompt_records(ws, set(prompt_versions)),
        "queries": provenance,
    }
    atomic_write_json(manifest_path, manifest)
    if own:
        store.close()
    return ExportResult(out, manifest_path, len(provenance), digest, sorted(statuses), store.counts())


def _prompt_records(ws: Workspace, versions: set[str]) -> list[dict]:
    """The texts of the prompt versions the exported questions came from (table "prompts")."""
    try:
        rows = ws.table("prompts").all()
    except Exception:  # a workspace without prompts is fine; the version names are listed anyway
        return []
    out = []
    for row in rows:
        v = row.get("version")
        if v is not None and str(v) in versions:
            out.append(dict(row))
    return out
