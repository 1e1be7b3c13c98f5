"""From a validated answer to typed candidates and the group's stored record (docs/ARCHITECTURE.md, "Store").

Every candidate records its variant (its id carries the variant's name, so a second variant
over the same groups makes new candidates beside the old ones), its window, the group's
narrations and its checks; what a reviewer sees as flags is decoded from the checks by the
candidate itself (`Candidate.flags()`), nowhere here.
"""

from __future__ import annotations

from engine.candidate import Candidate, Checks, Window, candidate_id
from engine.generation.base import Reply
from engine.generation.groups import GroupData
from engine.generation.redact import redact
from engine.generation.validate import Verdict
from engine.variants import Variant


def build_candidates(gd: GroupData, verdict: Verdict, variant: Variant, now: float) -> list[Candidate]:
    # times and windows were rounded to 0.1 ms when the group was read
    group_narrations = [{"uid": u, "text": t, "t": x} for u, t, x in zip(gd.uids, gd.texts, gd.times)]
    out = []
    for number, query in verdict.accepted:
        i = number - 1
        s, e = gd.starts[i], gd.ends[i]
        window = Window(
            s, e, gd.clip_start, gd.clip_end,
            None if s is None else round(s - gd.clip_start, 4), None if e is None else round(e - gd.clip_start, 4),
        )  # fmt: skip
        out.append(
            Candidate(
                id=candidate_id(gd.key, number, variant.name),
                group_key=gd.key,
                video_uid=gd.video_uid,
                clip_uid=gd.clip_uid,
                query=redact(query),
                window=window,
                narration={"uid": gd.uids[i], "text": gd.texts[i], "t": gd.times[i], "number": number},
                group_narrations=group_narrations,
                backend=variant.backend,
                model=variant.model,
                prompt_version=variant.prompt_version,
                variant=variant.name,
                checks=Checks(window_problems=list(gd.problems[i]), flagged=list(verdict.flagged.get(number, ()))),
                created=now,
            )
        )
    return out


def group_meta(rep: Reply, variant: Variant, params: dict, checks: str, cost: float | None) -> dict:
    """What the store keeps per group besides its candidates: provenance and the request's figures."""
    meta = {
        "backend": variant.backend,
        "model": variant.model,
        "prompt_version": variant.prompt_version,
        "variant": variant.name,
        "params": params,
        "attempts": rep.attempts,
        "retry_reasons": rep.retry_reasons,
        "prompt_tokens": rep.prompt_tokens,
        "completion_tokens": rep.completion_tokens,
        "seconds": round(rep.seconds, 3),
        "checks": checks,
    }
    if cost is not None:
        meta["cost"] = round(cost, 8)
    return meta


def apply_checks(c: Candidate, found: dict) -> None:
    """Copy what the quality checks found (QualityChecker's dict) onto the candidate's checks."""
    ch = c.checks
    ch.duplicate_of = found.get("duplicate_of")
    ch.near_duplicate_of = found.get("near_duplicate_of")
    amb = found.get("ambiguity")
    ch.ambiguity = amb if isinstance(amb, int) else -1
    ch.template = found.get("template") or ch.template
