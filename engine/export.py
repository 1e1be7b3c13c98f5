"""Export reviewed candidates as an NLQ file the official Ego4D tools read unchanged (docs/ARCHITECTURE.md, "Export").

The file has the nesting and field names of `nlq_train.json`: videos -> clips -> annotations
-> language_queries. `clip_start_sec`/`clip_end_sec` of a query are relative to its clip,
`video_start_sec`/`video_end_sec` absolute; a clip carries its own span in the video; a query's
`template` is the official NLQ template its wording matches (null when none does). Each exported
candidate is one annotation whose `annotation_uid` is derived from the candidate id, so
(annotation_uid, query index 0) names the same question in every export.

`--format jsonl|parquet` writes the same selection flat instead, one row per candidate
(engine/export_formats.py). Beside every export: `<file>.manifest.json` (where every query came
from: candidate id, narration, reviewer, variant, backend, model, prompt version; counts by
status and reason; the data root; the file's sha256) and a data card `<file>.README.md`.

The manifest is renamed into place before the file, so a file a reader sees always has its
manifest; a kill between the two leaves only a manifest without its file, which the next
export into that folder removes (as it removes a killed writer's temp files).

Val and test videos never go into a training file: an export that would include one is
refused, naming the candidates, before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.candidate import Candidate
from engine.ego4d import layout
from engine.ego4d.nlq import nlq_video_uids
from engine.errors import ConfigError, DataError, WorkspaceError
from engine.store import STATUSES, CandidateStore, Filter, Row
from engine.workspace import Workspace, atomic_write_bytes

DEFAULT_STATUSES = frozenset({"accepted", "edited"})
# "all": every valid candidate the reviewer has not thrown out.
ALL_STATUSES = frozenset(STATUSES) - {"rejected"}
CANONICAL_FPS = 30.0  # Ego4D frame numbers are at 30 fps
ANNOTATION_NAMESPACE = uuid.UUID("4f1c2b9e-7d35-5a0e-9a51-6e2b8f0c4d17")
FORMATS = ("nlq", "jsonl", "parquet")


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
    ann = layout.annotations_dir(data_root)
    files = {split: layout.nlq_file(data_root, split) for split in ("val", "test")}
    if not files["val"].is_file() and not files["test"].is_file():
        raise DataError(
            f"{ann}: neither {files['val'].name} nor {files['test'].name} is there, so the export "
            "cannot make sure no val/test video leaks into it; pass --data with the Ego4D root"
        )
    out: dict[str, str] = {}
    for split, path in files.items():
        if not path.is_file():
            continue
        for uid in nlq_video_uids(path):  # the one NLQ walker
            out.setdefault(uid, split)
    return out


def official_template(text: str) -> str | None:
    """The official NLQ template the question's wording matches, None when none does."""
    from engine.generation.quality import OTHER_TEMPLATE, closest_template

    name = closest_template(text)
    return None if name == OTHER_TEMPLATE else name


@dataclass
class Picked:
    """One exported candidate: its row, the candidate, the decision taken and the final text."""

    row: Row
    c: Candidate
    state: dict | None
    status: str
    text: str
    auid: str = ""
    template: str | None = None


@dataclass
class ExportResult:
    file: Path
    manifest: Path
    exported: int
    sha256: str
    statuses: list[str]
    counts: dict[str, int]
    card: Path | None = None
    format: str = "nlq"
    variants: dict[str, int] = field(default_factory=dict)

    def how_many(self) -> str:
        """'1 query', '1,234 queries': the count the CLI and the app say."""
        return f"{self.exported:,} {'query' if self.exported == 1 else 'queries'}"

    def as_dict(self) -> dict:
        return {
            "exported": self.exported,
            "file": str(self.file),
            "manifest": str(self.manifest),
            "card": None if self.card is None else str(self.card),
            "format": self.format,
            "sha256": self.sha256,
            "statuses": self.statuses,
            "variants": self.variants,
            "counts": self.counts,
        }


def _frame(sec: float) -> int:
    return int(round(sec * CANONICAL_FPS))


def select(
    store: CandidateStore, statuses: frozenset[str], variants: frozenset[str] = frozenset(), reviewer: str | None = None
) -> list[Picked]:
    """The valid candidates whose decision (the first reviewer's, or `reviewer`'s) is in `statuses`."""
    unknown = sorted(set(variants) - {v.name for v in store.variants()})
    if unknown:
        raise ConfigError(f"--variant {', '.join(unknown)}: no such variant; `nlq-tui variants` lists them")
    out = []
    for r in Filter(status="all", variants=frozenset(variants)).select(store.rows, store.states):
        if not r.valid:
            continue
        st = store.decision_of(r.id, reviewer)
        status = st["status"] if st else "pending"
        if status not in statuses:
            continue
        c = store.get(r.id)
        if not c.valid():  # its line was damaged after the index row was written
            continue
        text = c.text(st)
        out.append(Picked(r, c, st, status, text, annotation_uid(r.id), official_template(text)))
    return out


def _check_leaks(picked: list[Picked], heldout: dict[str, str]) -> None:
    leaks = [p.row for p in picked if p.row.video_uid in heldout]
    if leaks:
        shown = ", ".join(f"{r.id} ({heldout[r.video_uid]})" for r in leaks[:3])
        raise DataError(
            f"{len(leaks)} selected candidates come from NLQ val/test videos ({shown}"
            f"{', ...' if len(leaks) > 3 else ''}); training on them would leak evaluation data. "
            "Reject them on the Review screen (filter by video) and export again"
        )


def nlq_document(picked: list[Picked], description: str, manifest_name: str) -> dict:
    """The official nesting: videos -> clips -> annotations -> language_queries."""
    videos: dict[str, dict[str, dict]] = {}
    for p in picked:
        w = p.c.window
        clip_start, clip_end = float(w.clip_start), float(w.clip_end)  # type: ignore[arg-type]
        rel_s, rel_e = float(w.clip_rel_start), float(w.clip_rel_end)  # type: ignore[arg-type]
        clips = videos.setdefault(p.c.video_uid, {})
        clip = clips.get(p.c.clip_uid)
        if clip is None:
            clip = clips[p.c.clip_uid] = {
                "clip_uid": p.c.clip_uid,
                "video_start_sec": clip_start,
                "video_end_sec": clip_end,
                "video_start_frame": _frame(clip_start),
                "video_end_frame": _frame(clip_end),
                "clip_start_sec": 0.0,
                "clip_end_sec": clip_end - clip_start,
                "clip_start_frame": 0,
                "clip_end_frame": _frame(clip_end - clip_start),
                "source_clip_uid": p.c.clip_uid,
                "annotations": [],
            }
        vs, ve = clip_start + rel_s, clip_start + rel_e
        query: dict[str, object] = {
            "clip_start_sec": rel_s,
            "clip_end_sec": rel_e,
            "video_start_sec": vs,
            "video_end_sec": ve,
            "video_start_frame": _frame(vs),
            "video_end_frame": _frame(ve),
            "template": p.template,
            "query": p.text,
            "slot_x": None,
            "verb_x": None,
            "slot_y": None,
            "verb_y": None,
            "raw_tags": [],
        }
        clip["annotations"].append({"annotation_uid": p.auid, "language_queries": [query]})
    return {
        "version": "v1",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "description": description,
        "manifest": manifest_name,
        "videos": [
            {"video_uid": vid, "clips": [clips[k] for k in sorted(clips)]} for vid, clips in sorted(videos.items())
        ],
    }


def _provenance(p: Picked) -> dict:
    review = p.state or {}
    narration = p.c.narration
    return {
        "annotation_uid": p.auid,
        "candidate_id": p.row.id,
        "video_uid": p.c.video_uid,
        "clip_uid": p.c.clip_uid,
        "status": p.status,
        "reviewer": review.get("reviewer"),
        "reviewed_at": review.get("t"),
        "narration": {k: narration.get(k) for k in ("uid", "text", "t", "number")},
        "original_query": p.c.query if p.text != p.c.query else None,
        "template": p.template,
        "variant": p.row.variant,
        "backend": p.c.backend,
        "model": p.c.model,
        "prompt_version": p.c.prompt_version,
    }


def build_manifest(
    ws: Workspace, store: CandidateStore, picked: list[Picked], info: dict, heldout: dict[str, str]
) -> dict:
    """Where every query came from, plus the counts a reader needs to judge the file."""
    review_reasons: Counter[str] = Counter()
    for cid, st in store.states.items():
        if st["status"] == "rejected" and cid in store.by_id:
            review_reasons[st.get("reason") or "unspecified"] += 1
    generation_reasons: Counter[str] = Counter(str(r.get("reason") or "unspecified") for r in store.group_rejections())
    prompt_versions = Counter("" if p.c.prompt_version is None else str(p.c.prompt_version) for p in picked)
    used = Counter(p.row.variant for p in picked)
    records = {v.name: v for v in store.variants()}
    single = {"variant": next(iter(used))} if len(used) == 1 else {}
    return {
        **info,
        **single,
        "workspace": str(ws.path),
        "heldout_videos_checked": len(heldout),
        "counts_by_status": store.counts(),
        "invalid_candidates": sum(1 for r in store.rows if not r.valid),
        "rejected_by_reason": dict(sorted(review_reasons.items())),
        "generation_rejected_by_reason": dict(sorted(generation_reasons.items())),
        "prompt_versions": {k: v for k, v in sorted(prompt_versions.items())},
        "prompts": _prompt_records(ws, set(prompt_versions)),
        "variants": [{**records[n].to_json(), "exported": used[n]} for n in records if used[n]],
        "queries": [_provenance(p) for p in picked],
    }


def write_together(out: Path, data: bytes, manifest: dict, card: str | None) -> tuple[Path, Path | None]:
    """Manifest (and card) first, then the file: a visible file always has its manifest."""
    manifest_path = out.with_name(out.name + ".manifest.json")
    card_path = out.with_name(out.name + ".README.md") if card is not None else None
    _remove_orphans(out.parent)
    mdata = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8", "backslashreplace")
    atomic_write_bytes(manifest_path, mdata, "the export's manifest")
    if card_path is not None and card is not None:
        atomic_write_bytes(card_path, card.encode("utf-8", "backslashreplace"), "the export's data card")
    try:
        atomic_write_bytes(out, data, "the export")
    except BaseException:
        # Neither, then: a manifest must never describe a file that is not there.
        for p in (manifest_path, card_path):
            if p is not None:
                with contextlib.suppress(OSError):
                    p.unlink()
        raise
    return manifest_path, card_path


def _remove_orphans(folder: Path) -> None:
    # A kill between the manifest's rename and the file's leaves a manifest of nothing.
    for m in folder.glob("*.manifest.json"):
        target = m.with_name(m.name[: -len(".manifest.json")])
        if not target.exists():
            try:
                if json.loads(m.read_bytes()).get("file") == target.name:
                    m.unlink()
                    card = target.with_name(target.name + ".README.md")
                    if card.exists():
                        card.unlink()
            except (OSError, ValueError, RecursionError, AttributeError):
                continue


_SUFFIX = {"nlq": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}


def default_out(workspace: Workspace, fmt: str = "nlq") -> Path:
    """Where an export goes when no file is named: the workspace's exports/, stamped to the
    second (the app's Export dialog offers the same), its folder made."""
    folder = workspace.exports_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"nlq_aug_{time.strftime('%Y%m%d_%H%M%S')}{_SUFFIX.get(fmt, '.json')}"


def _check_out(out: Path) -> Path:
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; give a file name such as {out / 'nlq_aug.json'}")
    if not out.parent.is_dir():
        what = "is not a folder" if out.parent.exists() else "does not exist"
        raise ConfigError(f"--out {out}: folder {out.parent} {what}")
    return out


def export(
    workspace: Workspace | str | Path,
    out: str | Path,
    *,
    statuses: frozenset[str] = DEFAULT_STATUSES,
    data_root: str | Path | None = None,
    store: CandidateStore | None = None,
    variants: frozenset[str] | set[str] = frozenset(),
    reviewer: str | None = None,
    fmt: str = "nlq",
    command: str | None = None,
) -> ExportResult:
    """Write the export, its manifest and its data card; returns what was written."""
    from engine.export_formats import data_card, flat_bytes

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    ws = workspace if isinstance(workspace, Workspace) else Workspace.existing(workspace)
    root = data_root or ws.get("data_root")
    if not root:
        raise ConfigError(
            "no data root to check val/test videos against; pass --data ROOT (or choose it on the Data screen)"
        )
    root = Path(root).expanduser().resolve()
    heldout = heldout_videos(root)
    out = _check_out(Path(out))
    own = store is None
    store = (store or CandidateStore(ws)).load()
    try:
        picked = select(store, statuses, frozenset(variants), reviewer)
        _check_leaks(picked, heldout)
        if fmt == "nlq":
            desc = f"nlq-tui synthetic NLQ ({', '.join(sorted(statuses))}) from {ws.path}"
            doc = nlq_document(picked, desc, out.name + ".manifest.json")
            data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8", "backslashreplace")
        else:
            data = flat_bytes(store, picked, fmt)
        digest = hashlib.sha256(data).hexdigest()
        info = {
            "file": out.name,
            "format": fmt,
            "sha256": digest,
            "exported": len(picked),
            "statuses": sorted(statuses),
            "variant_filter": sorted(variants),
            "reviewer": reviewer,
            "created": time.time(),
            "command": command or _command(ws, out, statuses, variants, reviewer, fmt),
            "data_root": str(root),
        }
        manifest = build_manifest(ws, store, picked, info, heldout)
        card = data_card(store, picked, manifest)
        manifest_path, card_path = write_together(out, data, manifest, card)
        counts = store.counts()
    finally:
        if own:
            store.close()
    used = dict(Counter(p.row.variant for p in picked))
    return ExportResult(out, manifest_path, len(picked), digest, sorted(statuses), counts, card_path, fmt, used)


def _command(ws: Workspace, out: Path, statuses, variants, reviewer, fmt: str) -> str:
    parts = [
        "nlq-tui",
        "export",
        "--workspace",
        str(ws.path),
        "--out",
        str(out),
        "--status",
        ",".join(sorted(statuses)),
    ]
    for v in sorted(variants):
        parts += ["--variant", v]
    if reviewer:
        parts += ["--reviewer", reviewer]
    if fmt != "nlq":
        parts += ["--format", fmt]
    return " ".join(parts)


def _prompt_records(ws: Workspace, versions: set[str]) -> list[dict]:
    """The texts of the prompt versions the exported questions came from (table "prompts")."""
    try:
        rows = ws.table("prompts").all()
    except (WorkspaceError, OSError, ValueError, TypeError):  # the version names are listed anyway
        return []
    out = []
    for row in rows:
        v = row.get("version") if isinstance(row, dict) else None
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) in versions:
            out.append(dict(row))
    return out
