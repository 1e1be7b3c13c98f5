"""Validation: which questions of an answer become candidates, and why the others do not.

Every rejection carries a reason key (counted in reports, never silently dropped):

    not_json, wrong_shape            the answer as a whole is unusable
    index_out_of_range               a narration number that is not 1..k
    missing_question                 a narration with no question
    extra_question                   a second question for the same narration
    not_a_question                   not a string, or does not end with "?"
    too_short, too_long              fewer than MIN_WORDS words / more than MAX_WORDS or MAX_CHARS
    narration_markers                still has "#C", "#O", "#unsure" or a "C" for the camera wearer
    copies_narration                 the narration restated with a question mark
    unsure_narration                 the target narration is tagged #unsure
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.generation.parse import ParseFailure, parse_answer, questions_of
from engine.index import FLAG_UNSURE

REASONS = (
    "not_json",
    "wrong_shape",
    "index_out_of_range",
    "missing_question",
    "extra_question",
    "not_a_question",
    "too_short",
    "too_long",
    "narration_markers",
    "copies_narration",
    "unsure_narration",
)

MIN_WORDS = 3
MAX_WORDS = 40
MAX_CHARS = 250
RAW_KEEP = 4000  # characters of a raw answer kept on a whole-answer rejection

_MARKERS = re.compile(r"#\s*[A-Za-z]|(?:^|[\s,;:(])C\s+[a-z]|^\s*C\b")
_WORD = re.compile(r"[a-z0-9']+")
_NARR_MARK = re.compile(r"#\s*\w+")
_STOP = frozenset("the a an c i me my mine his her their its of and to it them this that these those".split())
_QWORDS = frozenset(
    "what where when who whom whose which how many much did do does was were is are have has had "
    "i my me before after ? in on at".split()
)


@lru_cache(maxsize=1 << 16)
def normalise(text: str) -> str:
    """Lowercase, straight apostrophes, punctuation out, single spaces: the duplicate key."""
    t = str(text).replace("\u2019", "'").replace("\u2018", "'").lower()
    return " ".join(_WORD.findall(t))


def _stem(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxzh":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _content(text: str, drop: frozenset) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text) if w not in drop}


_WH = ("where", "what", "which", "who", "whom", "whose", "how", "why", "in what", "in which")


def _narration_core(narration: str) -> str:
    """'#C C picks up the knife.' -> 'picks up the knife' (markers and the subject letter out)."""
    t = _NARR_MARK.sub(" ", narration.replace("\u2019", "'"))
    words = normalise(t).split()
    if words and words[0] in ("c", "i"):
        words = words[1:]
    return " ".join(words)


def copies_narration(query: str, narration: str) -> bool:
    """True when the question only restates the narration.

    A wh-question ("Where did I put the knife?") asks for something the narration does not
    say, so it is a copy only when it contains the narration word for word. A yes/no or
    "when" question is a copy when it has no content word the narration lacks and uses
    nearly all of the narration's ("Did I open the box?" for "#C C opens the box").
    """
    qn = normalise(query)
    core = _narration_core(narration)
    if len(core.split()) >= 3 and f" {core} " in f" {qn} ":
        return True
    if qn.startswith(_WH):
        return False
    n = _content(core, _STOP)
    if len(n) < 2:
        return False
    q = _content(qn, _STOP | _QWORDS)
    return len(n & q) >= 0.9 * len(n) and not (q - n)


@dataclass
class Verdict:
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (narration number 1..k, query)
    rejected: list[dict] = field(default_factory=list)
    flagged: dict[int, list[str]] = field(default_factory=dict)  # narration number -> reasons kept as flags

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejected:
            out[r["reason"]] = out.get(r["reason"], 0) + 1
        return out


RAW_ITEM_KEEP = 500  # characters of a rejected question (or of the JSON of a non-text one) kept


def bounded_raw(raw: Any, limit: int = RAW_ITEM_KEEP) -> Any:
    """A rejected value as stored: text cut to `limit`, numbers as they are, anything else as
    its JSON text cut to `limit` (a nested answer must not nest the store's files)."""
    if raw is None or isinstance(raw, (bool, int, float)):
        return raw if not isinstance(raw, float) or raw == raw and abs(raw) != float("inf") else str(raw)
    if isinstance(raw, str):
        return raw[:limit]
    try:
        text = json.dumps(raw, ensure_ascii=False)
    except (RecursionError, TypeError, ValueError):
        text = f"<{type(raw).__name__} nested too deeply>"
    return text[:limit]


def _reject(group_key: str, number: int | None, reason: str, detail: str, raw: Any, keep: int = RAW_ITEM_KEEP) -> dict:
    raw = bounded_raw(raw, keep)
    return {"group_key": group_key, "narration": number, "reason": reason, "detail": detail, "raw": raw}


@lru_cache(maxsize=1 << 18)
def _check_text(query: str, narration: str, flags: int, keep: frozenset = frozenset()) -> tuple[str, str] | None:
    # Cached: the template backend asks the same question of the same narration text often.
    return _check_any(query, narration, flags, keep)


def _check_any(query: Any, narration: str, flags: int, keep: frozenset = frozenset()) -> tuple[str, str] | None:
    """The first reason to reject; reasons in `keep` (the policy's flags) are passed over and
    reported as ("flag:<reason>", detail) when nothing else rejects the question."""
    flagged = None
    for reason, detail in _problems(query, narration, flags):
        if reason not in keep or not isinstance(query, str):
            return reason, detail
        flagged = flagged or (f"flag:{reason}", detail)
    return flagged


def _problems(query: Any, narration: str, flags: int):
    """Every (reason, detail) that applies, in the order a reviewer would name them."""
    if flags & FLAG_UNSURE:
        yield "unsure_narration", "the narration is tagged #unsure"
    if not isinstance(query, str):
        yield "not_a_question", f"the query is {type(query).__name__}, not text"
        return
    q = " ".join(query.split())
    if _MARKERS.search(q):
        yield "narration_markers", "contains #C/#O/#unsure or 'C' for the camera wearer"
    if not q.endswith("?"):
        yield "not_a_question", "does not end with '?'"
    words = len(q.split())
    if words < MIN_WORDS:
        yield "too_short", f"{words} words (minimum {MIN_WORDS})"
    if words > MAX_WORDS or len(q) > MAX_CHARS:
        yield "too_long", f"{words} words, {len(q)} characters (maximum {MAX_WORDS} / {MAX_CHARS})"
        return  # a long text is not compared word by word
    if copies_narration(q, narration):
        yield "copies_narration", "restates the narration"


FLAGGABLE = ("not_a_question", "too_short", "too_long", "narration_markers", "copies_narration", "unsure_narration")


def policy_keep(policy: dict[str, str] | None) -> frozenset:
    """The reasons a variant's validation policy keeps as flags (the rest reject)."""
    return frozenset(r for r, action in (policy or {}).items() if action == "flag" and r in FLAGGABLE)


def validate(
    group_key: str,
    narrations: list[str],
    flags: list[int],
    text: str | None = None,
    parsed: Any = None,
    items: list | None = None,
    keep: frozenset = frozenset(),
) -> Verdict:
    """Split an answer for a group of k narrations into accepted questions and rejections.

    Give the raw answer `text`, an already-structured `parsed` answer, or `items`
    [(narration number, query)] (the template backend, which skips parsing altogether).
    `keep`: reasons the variant's policy keeps as flags (`policy_keep`); such a question is
    accepted with the reason in `Verdict.flagged`.
    """
    if items is None:
        try:
            items = questions_of(parsed) if parsed is not None else parse_answer(text or "")
        except ParseFailure as exc:
            verdict = Verdict()
            raw = (text or "")[:RAW_KEEP]
            verdict.rejected.append(_reject(group_key, None, exc.reason, exc.detail, raw, RAW_KEEP))
            return verdict
    return validate_items(group_key, narrations, flags, items, keep)


def validate_items(
    group_key: str, narrations: list[str], flags: list[int], items, keep: frozenset = frozenset()
) -> Verdict:
    verdict = Verdict()
    accepted, rejected = verdict.accepted, verdict.rejected
    k = len(narrations)
    seen: set[int] = set()
    for number, query in items:
        if number is None or not 1 <= number <= k:
            rejected.append(
                _reject(group_key, None, "index_out_of_range", f"narration {number!r} is not in 1..{k}", query)
            )
            continue
        if number in seen:
            rejected.append(
                _reject(group_key, number, "extra_question", f"a second question for narration {number}", query)
            )
            continue
        seen.add(number)
        f = flags[number - 1] if flags else 0
        if isinstance(query, str):
            bad = _check_text(query, narrations[number - 1], f & FLAG_UNSURE, keep)
        else:
            bad = _check_any(query, narrations[number - 1], f, keep)
        if bad is not None:
            if not bad[0].startswith("flag:"):
                rejected.append(_reject(group_key, number, bad[0], bad[1], query))
                continue
            verdict.flagged[number] = [bad[0][5:]]
        accepted.append((number, _squash(query)))
    if len(seen) < k:
        for number in range(1, k + 1):
            if number not in seen:
                rejected.append(
                    _reject(group_key, number, "missing_question", f"no question for narration {number}", None)
                )
    return verdict


@lru_cache(maxsize=1 << 16)
def _squash(query: str) -> str:
    return " ".join(query.split())
