"""Variants: what changes a generation's output, side by side in one workspace (docs/ARCHITECTURE.md, "Store").

A `Variant` names a backend, model, prompt version and the parameters that change the output.
Every candidate records its variant's name; a job resumes within its own variant only. The
store keeps each variant's record in `candidates/variants.jsonl`; candidates written before
variants existed read as the default variant of their backend, model and prompt version.

`variant_table(store)` gives the figures per variant that `nlq-tui variants` prints and the
Generate screen shows: groups done and failed, validation rejects and flags, review outcomes,
the accept rate with its 95% Wilson interval, and two reviewers' agreement (Cohen's kappa).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.candidate import FLAG_NAMES, default_variant_name, safe_name
from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.store import CandidateStore

POLICY_ACTIONS = ("reject", "flag")
OUTPUT_PARAMS = ("temperature", "max_tokens", "k", "stride", "min_window")


@dataclass(frozen=True)
class Variant:
    """What a job's output depends on. `legacy`: read from candidates older than variants."""

    name: str
    backend: str
    model: str
    prompt_version: Any = None
    temperature: float | None = None
    max_tokens: int | None = None
    k: int | None = None
    stride: int | None = None
    min_window: float | None = None
    policy: dict[str, str] = field(default_factory=dict)  # validation reason -> "reject" | "flag"
    legacy: bool = False

    def __post_init__(self) -> None:
        if not self.name or safe_name(self.name) != self.name:
            raise ConfigError(
                f"variant name {self.name!r}: use letters, digits, '.', '_' or '-' (e.g. {safe_name(self.name) or 'v2'})"
            )
        for reason, action in self.policy.items():
            if action not in POLICY_ACTIONS:
                raise ConfigError(f"validation policy for {reason!r}: {action!r} is not one of reject, flag")

    @classmethod
    def default(cls, backend: str, model: str, prompt_version: Any, **params: Any) -> Variant:
        """The variant a job gets without a name: named after backend, model and prompt version."""
        return cls(default_variant_name(backend, model, prompt_version), backend, model, prompt_version, **params)

    @classmethod
    def from_json(cls, d: dict) -> Variant:
        def num(x: Any) -> Any:
            return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None

        policy = d.get("policy")
        policy = {str(k): str(v) for k, v in policy.items()} if isinstance(policy, dict) else {}
        return cls(
            name=str(d["name"]),
            backend=str(d.get("backend") or ""),
            model=str(d.get("model") or ""),
            prompt_version=d.get("prompt_version"),
            temperature=num(d.get("temperature")),
            max_tokens=num(d.get("max_tokens")),
            k=num(d.get("k")),
            stride=num(d.get("stride")),
            min_window=num(d.get("min_window")),
            policy={k: v for k, v in policy.items() if v in POLICY_ACTIONS},
            legacy=bool(d.get("legacy")),
        )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "backend": self.backend,
            "model": self.model,
            "prompt_version": self.prompt_version,
            **{p: getattr(self, p) for p in OUTPUT_PARAMS},
            "policy": dict(self.policy),
            **({"legacy": True} if self.legacy else {}),
        }

    def output_key(self) -> tuple:
        """What must match for two jobs to be the same variant."""
        return (
            self.backend,
            self.model,
            "" if self.prompt_version is None else str(self.prompt_version),
            *(getattr(self, p) for p in OUTPUT_PARAMS),
            tuple(sorted(self.policy.items())),
        )

    def differs_from(self, other: Variant) -> list[str]:
        """The settings in which `other` differs (empty: the same variant)."""
        out = []
        for name in ("backend", "model", "prompt_version", *OUTPUT_PARAMS, "policy"):
            a, b = getattr(self, name), getattr(other, name)
            if name == "prompt_version":
                a, b = (None if a is None else str(a)), (None if b is None else str(b))
            if a != b:
                out.append(f"{name} {b!r} (stored: {a!r})")
        return out


# ---------------------------------------------------------------------------------------------
# figures


def group_stat(stats: dict, key: str, default: Any = 0) -> Any:
    """A group line's `stats[key]` as a number; anything else a hand or a bug left there (text,
    a list, a boolean, NaN, an infinity) is `default`, so one damaged line never stops the table."""
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return value


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion k/n; None when n is 0."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(pairs: list[tuple[bool, bool]]) -> tuple[float | None, float | None]:
    """(raw agreement, Cohen's kappa) of two raters' accept (True) / reject (False) decisions.

    Kappa is None when it is undefined (no pairs, or both raters gave one answer to everything,
    so chance agreement is 1).
    """
    n = len(pairs)
    if not n:
        return None, None
    agree = sum(1 for a, b in pairs if a == b) / n
    pa = sum(1 for a, _ in pairs if a) / n
    pb = sum(1 for _, b in pairs if b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return agree, None
    return agree, (agree - pe) / (1 - pe)


def empty_row(v: Variant) -> dict:
    """A variant's row before anything is counted (`_pairs`: the doubly reviewed, for kappa)."""
    return {
        "name": v.name,
        "backend": v.backend,
        "model": v.model,
        "prompt_version": v.prompt_version,
        "params": {p: getattr(v, p) for p in OUTPUT_PARAMS},
        "policy": dict(v.policy),
        "groups_done": 0,
        "groups_failed": 0,
        "candidates": 0,
        "questions_valid": 0,
        "rejected": Counter(),
        "flagged": Counter(),
        "accepted": 0,
        "edited": 0,
        "rejected_in_review": Counter(),
        "pending": 0,
        "tokens": 0,
        "cost": None,
        "seconds": 0.0,
        "_pairs": [],
    }


def variant_table(store: CandidateStore, *, summary: bool = True) -> list[dict]:
    """One dict per variant (in the order they were first stored), JSON-ready.

    accept_rate is (accepted + edited) / reviewed (accepted, edited, rejected), with its 95%
    Wilson interval; agreement compares the first decision with another reviewer's second
    opinion on the same candidate (edited counts as accept).

    A store not read yet is not read: the figures come from the summary that
    `engine.variant_summary` keeps up to date, the same rows and the same warnings (in
    `store.problems`) as a full read, which `summary=False` or a store already read takes.
    """
    if summary and not store.log.scan_started and not store.journal.loaded:
        from engine.variant_summary import summary_table

        return summary_table(store)
    store.load()
    rows: dict[str, dict] = {}
    for v in store.variants():
        rows[v.name] = empty_row(v)
    for name, figures in store.group_figures().items():
        row = rows.get(name)
        if row is None:
            continue
        row["groups_done"] = figures["groups"]
        row["tokens"] = figures["tokens"]
        row["seconds"] = round(figures["seconds"], 3)
        row["cost"] = figures["cost"]
        row["rejected"].update(figures["rejected"])
    for name, failed in store.failed_groups_by_variant().items():
        if name in rows:
            rows[name]["groups_failed"] = len(failed)
    for r in store.rows:
        row = rows.get(r.variant)
        if row is None:
            continue
        row["candidates"] += 1
        if r.valid:
            row["questions_valid"] += 1
        for bit, flag in FLAG_NAMES.items():
            if r.flags & bit:
                row["flagged"][flag] += 1
        st = store.states.get(r.id)
        status = st["status"] if st else "pending"
        if status == "accepted":
            row["accepted"] += 1
        elif status == "edited":
            row["edited"] += 1
        elif status == "rejected":
            row["rejected_in_review"][st.get("reason") or "unspecified"] += 1
        else:
            row["pending"] += 1
        if st and status in ("accepted", "edited", "rejected"):
            for reviewer, op in store.opinions.get(r.id, {}).items():
                if reviewer != st.get("reviewer") and op["status"] in ("accepted", "edited", "rejected"):
                    row["_pairs"].append((status != "rejected", op["status"] != "rejected"))
                    break
    return finish_rows(list(rows.values()))


def finish_rows(rows: list[dict]) -> list[dict]:
    """The counted rows made JSON-ready: reviewed, the accept rate and its interval, agreement."""
    out = []
    for row in rows:
        reviewed = row["accepted"] + row["edited"] + sum(row["rejected_in_review"].values())
        ok = row["accepted"] + row["edited"]
        interval = wilson(ok, reviewed)
        pairs = row.pop("_pairs")
        agree, kappa = cohen_kappa(pairs)
        row["reviewed"] = reviewed
        row["accept_rate"] = None if not reviewed else round(ok / reviewed, 4)
        row["accept_rate_ci95"] = None if interval is None else [round(interval[0], 4), round(interval[1], 4)]
        row["agreement"] = {
            "doubly_reviewed": len(pairs),
            "raw": None if agree is None else round(agree, 4),
            "kappa": None if kappa is None else round(kappa, 4),
        }
        for key in ("rejected", "flagged", "rejected_in_review"):
            row[key] = dict(sorted(row[key].items()))
        out.append(row)
    return out


def compare_variants(store: CandidateStore, a: str, b: str, limit: int = 200, *, summary: bool = True) -> list[dict]:
    """The narrations of groups both variants covered, with each variant's question side by side.

    One dict per (group, narration number), groups in store order: {"group_key", "number",
    "narration", "a", "b"}; "a"/"b" is None where that variant produced no question for it.
    A store not read yet is not read: the summary says which group lines to read (see
    `variant_table`).
    """
    if summary and not store.log.scan_started and not store.journal.loaded:
        from engine.variant_summary import summary_compare

        return summary_compare(store, a, b, limit)
    store.load()
    groups = store.groups
    out: list[dict] = []
    for variant, gk in list(groups):
        if variant != a or (b, gk) not in groups:
            continue
        by_number: dict[int, dict] = {}
        for side, name in (("a", a), ("b", b)):
            for r in groups[(name, gk)]:
                c = store.get(r.id)
                n = c.narration_number
                slot = by_number.setdefault(n, {"group_key": gk, "number": n, "narration": "", "a": None, "b": None})
                slot["narration"] = slot["narration"] or str(c.narration.get("text") or "")
                slot[side] = store.query_text(r.id)
        out.extend(by_number[n] for n in sorted(by_number))
        if len(out) >= limit:
            return out[:limit]
    return out


def delete_variant(store: CandidateStore, name: str) -> int:
    """Remove a variant's candidates and the decisions on them; returns how many candidates went."""
    return store.delete_variant(name)
