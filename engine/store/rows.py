"""Index rows and group lines of the shard log (docs/ARCHITECTURE.md, "Store").

A group line's head carries one compact index row per candidate; `Row` is what the store keeps
in memory per candidate (enough to filter, count and find it on disk). `encode_group_line` is
the one place a group line is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from engine.candidate import (
    FLAG_AMBIGUOUS,
    FLAG_NEAR_DUPLICATE,
    FLAG_PENDING,
    Candidate,
    Checks,
    as_candidate,
    default_variant_name,
    flag_names,
    truncate_raw,
)


def index_row(c: Candidate) -> list:
    """The compact row the head of a group line carries per candidate."""
    return [
        c.id,
        c.video_uid,
        c.clip_uid,
        c.backend,
        c.model,
        "" if c.prompt_version is None else str(c.prompt_version),
        c.checks.template,
        c.flags(),
        c.checks.ambiguity,
        c.query,
        1 if c.valid() else 0,
        c.created,
    ]


# The types of an index row's 12 columns (`created` may be an int in a hand-made line). One
# tuple lookup per row: at a million candidates a per-column isinstance loop cost seconds.
_ROW_TYPES = frozenset({(str,) * 7 + (int, int, str, int, t) for t in (float, int)})


def row_ok(r: Any) -> bool:
    return type(r) is list and tuple(map(type, r[:12])) in _ROW_TYPES and bool(r[0])


class Row:
    """What the store keeps in memory per candidate: enough to filter, count and find it."""

    __slots__ = (
        "id",
        "group_key",
        "variant",
        "video_uid",
        "clip_uid",
        "backend",
        "model",
        "prompt_version",
        "template",
        "flags",
        "ambiguity",
        "query",
        "valid",
        "created",
        "shard",
        "offset",
        "length",
        "pos",
        "n",
    )

    def __init__(self, r: list, group_key: str, variant: str, shard: int, offset: int, length: int, pos: int, n: int):
        (
            self.id,
            self.video_uid,
            self.clip_uid,
            self.backend,
            self.model,
            self.prompt_version,
            self.template,
            self.flags,
            self.ambiguity,
            self.query,
            valid,
            self.created,
        ) = r[:12]
        self.valid = bool(valid)
        self.group_key = group_key
        self.variant = variant or default_variant_name(self.backend, self.model, self.prompt_version)
        self.shard, self.offset, self.length, self.pos = shard, offset, length, pos
        self.n = n  # position in store order

    def flag_names(self) -> list[str]:
        return flag_names(self.flags)


@dataclass
class GroupResult:
    """One generated group as handed to the store."""

    group_key: str
    candidates: list[Candidate]
    rejected: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    raw: str | None = None


def as_result(item: Any) -> GroupResult:
    if isinstance(item, GroupResult):
        return item
    return GroupResult(*item)


def group_stats(meta: dict) -> dict:
    def num(x: Any) -> float:
        return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 else 0.0

    out = {
        "tokens": int(num(meta.get("prompt_tokens")) + num(meta.get("completion_tokens"))),
        "seconds": round(num(meta.get("seconds")), 3),
    }
    if isinstance(meta.get("cost"), (int, float)):
        out["cost"] = float(meta["cost"])
    return out


def encode_group_line(
    group_key: str, candidates: list, rejected: list[dict], meta: dict, *, variant: str = "", raw: str | None = None
) -> bytes:
    """One shard line. The head (key, variant, stats, index, rejects) comes first so `scan` can stop there."""
    typed = [as_candidate(c, group_key) for c in candidates]
    if raw is None:
        raw = next((c.get("raw") for c in candidates if isinstance(c, dict) and isinstance(c.get("raw"), str)), None)
    for c in typed:
        if variant:
            c.variant = variant
    record = {
        "group_key": group_key,
        "variant": variant or (typed[0].variant_name() if typed else default_variant_name(
            meta.get("backend", ""), meta.get("model", ""), meta.get("prompt_version"))),
        "stats": group_stats(meta),
        "index": [index_row(c) for c in typed],
        "rejected": rejected,
        "candidates": [c.to_json() for c in typed],
        "meta": meta,
        "raw": truncate_raw(raw),
        "stored": time.time(),
    }  # fmt: skip
    # backslashreplace: a lone surrogate (an LLM answer can hold one) becomes its JSON escape
    # `\udXXX` inside the string, so the line stays valid UTF-8 and reads back to the same text.
    return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8", "backslashreplace")


def check_candidates(group_key: str, candidates: list, known: dict) -> None:
    """A bug in the caller, not a user error: every candidate needs its keys, this group and a new id."""
    for c in candidates:
        d = c.to_json() if isinstance(c, Candidate) else c
        for k in ("id", "video_uid", "clip_uid", "window", "query"):
            if k not in d:
                raise ValueError(f"candidate of group {group_key!r} lacks {k!r}")
        if d.get("group_key", group_key) != group_key:
            raise ValueError(f"candidate {d['id']!r} belongs to group {d.get('group_key')!r}, not {group_key!r}")
        if d["id"] in known:
            raise ValueError(
                f"candidate id {d['id']!r} is already stored: build ids with engine.candidate.candidate_id(..., variant)"
            )


def apply_checks(row: Row, found: dict) -> None:
    """A row's flags and ambiguity once its late checks came in."""
    checks = Checks(ambiguity=row.ambiguity)
    checks.update(found)
    keep = row.flags & ~(FLAG_NEAR_DUPLICATE | FLAG_AMBIGUOUS | FLAG_PENDING)
    row.flags = keep | (checks.flags() & (FLAG_NEAR_DUPLICATE | FLAG_AMBIGUOUS))
    row.ambiguity = checks.ambiguity
