"""Flat exports (one row per candidate, JSON lines or Parquet) and the data card beside every export (docs/ARCHITECTURE.md, "Export").

The flat rows load with `datasets.load_dataset("json"|"parquet", data_files=...)` into the
columns of `FLAT_COLUMNS`. Parquet needs pyarrow, imported only when asked for.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import TYPE_CHECKING

from engine.errors import ConfigError
from engine.variants import cohen_kappa

if TYPE_CHECKING:
    from engine.export import Picked
    from engine.store import CandidateStore

FLAT_COLUMNS = (
    "candidate_id",
    "annotation_uid",
    "query",
    "original_query",
    "video_uid",
    "clip_uid",
    "clip_start_sec",
    "clip_end_sec",
    "video_start_sec",
    "video_end_sec",
    "narration",
    "narration_uid",
    "narration_sec",
    "template",
    "variant",
    "backend",
    "model",
    "prompt_version",
    "status",
    "reviewer",
    "reject_reason",
    "flags",
    "ambiguity",
    "duplicate_of",
    "near_duplicate_of",
    "window_problems",
    "validation_flags",
)


def flat_row(p: Picked) -> dict:
    c, w, st = p.c, p.c.window, p.state or {}
    t = c.narration.get("t")
    return {
        "candidate_id": p.row.id,
        "annotation_uid": p.auid,
        "query": p.text,
        "original_query": c.query,
        "video_uid": c.video_uid,
        "clip_uid": c.clip_uid,
        "clip_start_sec": w.clip_rel_start,
        "clip_end_sec": w.clip_rel_end,
        "video_start_sec": w.start,
        "video_end_sec": w.end,
        "narration": str(c.narration.get("text") or ""),
        "narration_uid": c.narration_uid,
        "narration_sec": float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None,
        "template": p.template,
        "variant": p.row.variant,
        "backend": c.backend,
        "model": c.model,
        "prompt_version": None if c.prompt_version is None else str(c.prompt_version),
        "status": p.status,
        "reviewer": st.get("reviewer"),
        "reject_reason": st.get("reason") if p.status == "rejected" else None,
        "flags": c.flag_names(),
        "ambiguity": c.checks.ambiguity,
        "duplicate_of": c.checks.duplicate_of,
        "near_duplicate_of": c.checks.near_duplicate_of,
        "window_problems": list(c.checks.window_problems),
        "validation_flags": list(c.checks.flagged),
    }


def flat_bytes(store: CandidateStore, picked: list[Picked], fmt: str) -> bytes:
    rows = [flat_row(p) for p in picked]
    if fmt == "jsonl":
        return b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace") for r in rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "--format parquet needs pyarrow: pip install 'nlq-tui[parquet]' (or use --format jsonl)"
        ) from None
    rows = [{k: _no_surrogates(v) for k, v in r.items()} for r in rows]  # Arrow strings must be valid UTF-8
    table = pa.Table.from_pylist(rows, schema=_schema(pa)) if rows else _schema(pa).empty_table()
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _no_surrogates(v):
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(v, list):
        return [_no_surrogates(x) for x in v]
    return v


def _schema(pa):
    s, f, i, ls = pa.string(), pa.float64(), pa.int64(), pa.list_(pa.string())
    kinds = {
        "clip_start_sec": f,
        "clip_end_sec": f,
        "video_start_sec": f,
        "video_end_sec": f,
        "narration_sec": f,
        "ambiguity": i,
        "flags": ls,
        "window_problems": ls,
        "validation_flags": ls,
    }
    return pa.schema([(name, kinds.get(name, s)) for name in FLAT_COLUMNS])


# ---------------------------------------------------------------------------------------------
# the data card


def percentiles(values: list[float], qs: tuple[int, ...] = (5, 25, 50, 75, 95)) -> dict[str, float]:
    """Nearest-rank percentiles (no numpy needed for a card)."""
    if not values:
        return {}
    v = sorted(values)
    out = {}
    for q in qs:
        k = max(0, min(len(v) - 1, int(round(q / 100 * (len(v) - 1)))))
        out[f"p{q}"] = round(v[k], 3)
    return out


def card_figures(store: CandidateStore, picked: list[Picked]) -> dict:
    """The figures the card prints, computed from the exported selection and the store."""
    counts = store.counts()
    reviewed = counts["accepted"] + counts["edited"] + counts["rejected"]
    reasons = Counter(
        st.get("reason") or "unspecified"
        for cid, st in store.states.items()
        if st["status"] == "rejected" and cid in store.by_id
    )
    durations = [p.c.window.duration for p in picked if p.c.window.duration is not None]
    reviewers = Counter(p.state.get("reviewer") for p in picked if p.state and p.state.get("reviewer"))
    pairs = []
    for cid, by in store.opinions.items():
        st = store.states.get(cid)
        if not st or st["status"] not in ("accepted", "edited", "rejected"):
            continue
        for who, op in by.items():
            if who != st.get("reviewer") and op["status"] in ("accepted", "edited", "rejected"):
                pairs.append((st["status"] != "rejected", op["status"] != "rejected"))
                break
    agree, kappa = cohen_kappa(pairs)
    return {
        "exported": len(picked),
        "templates": dict(Counter(p.template or "(none)" for p in picked).most_common()),
        "window_seconds": percentiles([float(d) for d in durations]),
        "accept_rate": None if not reviewed else round((counts["accepted"] + counts["edited"]) / reviewed, 4),
        "reviewed": reviewed,
        "rejected_by_reason": dict(reasons.most_common()),
        "reviewers": dict(reviewers.most_common()),
        "agreement": {"doubly_reviewed": len(pairs), "raw": agree, "kappa": kappa},
    }


def data_card(store: CandidateStore, picked: list[Picked], manifest: dict) -> str:
    """`NAME.README.md`: what is in the export, where it came from, and how it was made."""
    fig = card_figures(store, picked)
    manifest["card"] = fig  # the same figures, machine-readable, in the manifest
    lines = [
        f"# {manifest['file']}",
        "",
        f"Synthetic Ego4D NLQ queries exported by nlq-tui ({manifest['format']} format).",
        "",
        "## Counts",
        "",
        f"- exported queries: {fig['exported']}",
        f"- statuses exported: {', '.join(manifest['statuses'])}",
        f"- reviewed in the workspace: {fig['reviewed']}, accept rate: {_fmt(fig['accept_rate'])}",
        "",
        "## Templates",
        "",
        *[f"- {name}: {n}" for name, n in fig["templates"].items()],
        "",
        "## Window duration (seconds)",
        "",
        ", ".join(f"{k} {v}" for k, v in fig["window_seconds"].items()) or "(none)",
        "",
        "## Reject reasons (review)",
        "",
        *([f"- {r}: {n}" for r, n in fig["rejected_by_reason"].items()] or ["- (none)"]),
        "",
        "## Variants",
        "",
        "| variant | backend | model | prompt version | exported |",
        "|---|---|---|---|---|",
        *[
            f"| {v['name']} | {v['backend']} | {v['model']} | {v['prompt_version']} | {v['exported']} |"
            for v in manifest["variants"]
        ],
        "",
        "## Reviewers",
        "",
        *([f"- {who}: {n}" for who, n in fig["reviewers"].items()] or ["- (none)"]),
        f"- doubly reviewed: {fig['agreement']['doubly_reviewed']}, raw agreement {_fmt(fig['agreement']['raw'])}, "
        f"Cohen's kappa {_fmt(fig['agreement']['kappa'])}",
        "",
        "## Provenance",
        "",
        f"- sha256: `{manifest['sha256']}`",
        f"- made by: `{manifest['command']}`",
        f"- manifest: `{manifest['file']}.manifest.json` (every query's candidate, narration, reviewer and variant)",
        "",
    ]
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
