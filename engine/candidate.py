"""A generated question and what is known about it: the typed candidate (docs/ARCHITECTURE.md, "Store").

The generation pipeline builds `Candidate` objects; the store writes `Candidate.to_json()` into
its shards and reads them back with `Candidate.from_json`, which also reads every older shard
(no `variant`, a per-candidate `raw`, missing or wrongly typed fields). Flags are decoded from
the checks here and nowhere else.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# Quality flags as bits (store rows keep them as one int).
FLAG_DUPLICATE = 1
FLAG_NEAR_DUPLICATE = 2
FLAG_AMBIGUOUS = 4
FLAG_WINDOW = 8
FLAG_POLICY = 16  # a validation reason the variant's policy keeps as a flag instead of a reject
FLAG_PENDING = 32  # the embedding checks have not reported yet (they catch up behind the job)
FLAG_NAMES = {
    FLAG_DUPLICATE: "duplicate",
    FLAG_NEAR_DUPLICATE: "near-duplicate",
    FLAG_AMBIGUOUS: "ambiguous",
    FLAG_WINDOW: "window",
    FLAG_POLICY: "validation",
    FLAG_PENDING: "checks-pending",
}
FLAG_BITS = {name: bit for bit, name in FLAG_NAMES.items()}

RAW_KEEP = 4096  # characters of a group's raw LLM answer kept in the store


class CandidateError(ValueError):
    """A stored candidate whose JSON has the wrong shape (the reader skips and counts it)."""


def _str(x: Any) -> str:
    return x if isinstance(x, str) else ("" if x is None or isinstance(x, (dict, list)) else str(x))


def _opt_str(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        f = float(x)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _int(x: Any, default: int) -> int:
    if isinstance(x, bool):
        return default
    if isinstance(x, int):
        return x
    if isinstance(x, float) and math.isfinite(x):
        return int(x)
    return default


def safe_name(text: str) -> str:
    """A name fit for a file, a CLI argument and a candidate id: letters, digits, . _ -."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80]


def default_variant_name(backend: str, model: str, prompt_version: Any) -> str:
    """The variant name a job gets without `--name`: backend, model and prompt version."""
    parts = [safe_name(str(backend or "unknown")) or "unknown"]
    m = safe_name(str(model or ""))
    if m and m != parts[0]:
        parts.append(m)
    pv = "" if prompt_version is None else safe_name(str(prompt_version))
    if pv:
        parts.append(pv if pv.startswith(("p", "v")) else f"p{pv}")
    return "-".join(parts)


def candidate_id(group_key: str, number: int, variant: str | None = None) -> str:
    """A candidate's id: unique across variants; older candidates keep `group_key#number`."""
    base = f"{group_key}#{number}"
    return f"{base}@{variant}" if variant else base


@dataclass(frozen=True)
class Window:
    """The answer window: absolute times, the parent clip's span, and clip-relative times."""

    start: float | None
    end: float | None
    clip_start: float | None
    clip_end: float | None
    clip_rel_start: float | None
    clip_rel_end: float | None

    @classmethod
    def from_json(cls, d: Any) -> Window:
        d = d if isinstance(d, dict) else {}
        return cls(
            *(_num(d.get(k)) for k in ("start", "end", "clip_start", "clip_end", "clip_rel_start", "clip_rel_end"))
        )

    def to_json(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "clip_start": self.clip_start,
            "clip_end": self.clip_end,
            "clip_rel_start": self.clip_rel_start,
            "clip_rel_end": self.clip_rel_end,
        }

    def usable(self) -> bool:
        """Finite bounds everywhere and a positive span inside the clip."""
        vals = (self.start, self.end, self.clip_rel_start, self.clip_rel_end, self.clip_start, self.clip_end)
        if any(v is None for v in vals):
            return False
        return 0.0 <= self.clip_rel_start < self.clip_rel_end  # type: ignore[operator]

    @property
    def duration(self) -> float | None:
        if self.clip_rel_start is None or self.clip_rel_end is None:
            return None
        return self.clip_rel_end - self.clip_rel_start


@dataclass
class Checks:
    """What the quality checks found. `ambiguity` -1: not computed (no sentence encoder).

    `template` is the closest official NLQ template; `flagged` lists the validation reasons the
    variant's policy kept as flags (e.g. "copies_narration").
    """

    duplicate_of: str | None = None
    near_duplicate_of: str | None = None
    ambiguity: int = -1
    template: str = ""
    window_problems: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    pending: bool = False  # near-duplicate and ambiguity not computed yet; `update` fills them in

    @classmethod
    def from_json(cls, d: Any) -> Checks:
        d = d if isinstance(d, dict) else {}
        amb = d.get("ambiguity")
        # An ambiguity the checks wrote but that is not a number counts as "ambiguous": unknown
        # is not the same as "fine".
        ambiguity = -1 if amb is None else _int(amb, 1)
        wp = d.get("window_problems")
        fl = d.get("flagged")
        return cls(
            _opt_str(d.get("duplicate_of")),
            _opt_str(d.get("near_duplicate_of")),
            ambiguity,
            _str(d.get("template")),
            [_str(p) for p in wp] if isinstance(wp, list) else ([_str(wp)] if wp else []),
            [_str(p) for p in fl] if isinstance(fl, list) else [],
            d.get("pending") is True,
        )

    def to_json(self) -> dict:
        out = {
            "duplicate_of": self.duplicate_of,
            "near_duplicate_of": self.near_duplicate_of,
            "ambiguity": self.ambiguity,
            "template": self.template,
            "window_problems": list(self.window_problems),
        }
        if self.flagged:
            out["flagged"] = list(self.flagged)
        if self.pending:
            out["pending"] = True
        return out

    def update(self, found: dict) -> None:
        """Take the late embedding checks ({"near_duplicate_of", "ambiguity"}); no longer pending."""
        near = found.get("near_duplicate_of")
        self.near_duplicate_of = near if isinstance(near, str) and near else None
        self.ambiguity = _int(found.get("ambiguity"), -1)
        self.pending = False

    def flags(self) -> int:
        f = 0
        if self.duplicate_of:
            f |= FLAG_DUPLICATE
        if self.near_duplicate_of:
            f |= FLAG_NEAR_DUPLICATE
        if self.ambiguity > 0:
            f |= FLAG_AMBIGUOUS
        if self.window_problems:
            f |= FLAG_WINDOW
        if self.flagged:
            f |= FLAG_POLICY
        if self.pending:
            f |= FLAG_PENDING
        return f


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


@dataclass
class Candidate:
    """One generated question for one narration of a group."""

    id: str
    group_key: str
    video_uid: str
    clip_uid: str
    query: str
    window: Window
    narration: dict = field(default_factory=dict)  # uid, text, t, number
    group_narrations: list[dict] = field(default_factory=list)  # uid, text, t of each
    backend: str = ""
    model: str = ""
    prompt_version: Any = None
    variant: str = ""  # the variant's name; "" in shards written before variants existed
    checks: Checks = field(default_factory=Checks)
    created: float = 0.0
    extra: dict = field(default_factory=dict)  # unknown keys, written back unchanged

    _KNOWN = frozenset(
        "id group_key video_uid clip_uid query window narration group_narrations backend model "
        "prompt_version variant checks created status raw review".split()
    )

    @classmethod
    def from_json(cls, d: Any, group_key: str = "") -> Candidate:
        """Read a stored (or freshly built) candidate; CandidateError if it has no id or query."""
        if not isinstance(d, dict):
            raise CandidateError(f"a candidate must be a JSON object, not {type(d).__name__}")
        cid = d.get("id")
        if not isinstance(cid, str) or not cid:
            raise CandidateError("a candidate without a string id")
        q = d.get("query")
        narr = d.get("narration")
        gn = d.get("group_narrations")
        pv = d.get("prompt_version")
        return cls(
            id=cid,
            group_key=_str(d.get("group_key")) or group_key,
            video_uid=_str(d.get("video_uid")),
            clip_uid=_str(d.get("clip_uid")),
            query=q if isinstance(q, str) else "",
            window=Window.from_json(d.get("window")),
            narration=narr if isinstance(narr, dict) else {},
            group_narrations=[n for n in gn if isinstance(n, dict)] if isinstance(gn, list) else [],
            backend=_str(d.get("backend")),
            model=_str(d.get("model")),
            prompt_version=pv if isinstance(pv, (str, int)) and not isinstance(pv, bool) else None,
            variant=_str(d.get("variant")),
            checks=Checks.from_json(d.get("checks")),
            created=_num(d.get("created")) or 0.0,
            extra={k: v for k, v in d.items() if k not in cls._KNOWN},
        )

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "video_uid": self.video_uid,
            "clip_uid": self.clip_uid,
            "group_key": self.group_key,
            "narration": self.narration,
            "group_narrations": self.group_narrations,
            "window": self.window.to_json(),
            "query": self.query,
            "backend": self.backend,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "variant": self.variant,
            "checks": self.checks.to_json(),
            "created": self.created,
        }
        out.update(self.extra)
        return out

    # what the rooms ask of a candidate -------------------------------------------------------
    def flags(self) -> int:
        return self.checks.flags()

    def flag_names(self) -> list[str]:
        return flag_names(self.flags())

    def valid(self) -> bool:
        """Whether it could go into an NLQ file at all: a question, its uids and a real window."""
        return bool(self.query.strip()) and bool(self.video_uid) and bool(self.clip_uid) and self.window.usable()

    def text(self, state: dict | None = None) -> str:
        """The question as it stands after review: the edited text where edited."""
        if state and state.get("status") == "edited" and isinstance(state.get("text"), str) and state["text"]:
            return state["text"]
        return self.query

    @property
    def narration_number(self) -> int:
        return _int(self.narration.get("number"), 0)

    @property
    def narration_uid(self) -> str:
        return _str(self.narration.get("uid"))

    def variant_name(self) -> str:
        """Its variant; older candidates read as the default variant of their backend/model/prompt."""
        return self.variant or default_variant_name(self.backend, self.model, self.prompt_version)


def as_candidate(c: Candidate | dict, group_key: str = "") -> Candidate:
    return c if isinstance(c, Candidate) else Candidate.from_json(c, group_key)


def truncate_raw(text: str | None) -> dict | None:
    """A group's raw answer as stored: the first RAW_KEEP characters and the full length."""
    if text is None:
        return None
    text = str(text)
    return {"text": text[:RAW_KEEP], "length": len(text), "truncated": len(text) > RAW_KEEP}
