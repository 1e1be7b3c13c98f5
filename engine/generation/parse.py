"""Tolerant parsing of a model's answer into `[(narration_number, query), ...]`.

Models wrap JSON in code fences, put prose around it, answer with a bare list, or use
"question" for "query". We accept all of those; what is still unusable raises `ParseFailure`
with the reason key the validator counts ("not_json" or "wrong_shape").

The answer comes from outside, so the work is bounded: at most MAX_TEXT characters are looked
at, at most MAX_STARTS embedded starts are tried, and JSON nested too deeply is "not_json"
(never a RecursionError), so a hostile answer costs milliseconds, not the job.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_DECODER = json.JSONDecoder()
_QUERY_KEYS = ("query", "question", "q")
_INDEX_KEYS = ("narration", "index", "n", "id", "number")
MAX_TEXT = 1 << 20  # characters of an answer that are parsed at all
MAX_STARTS = 32  # embedded '{' / '[' positions tried when the answer has prose around its JSON
MAX_FENCES = 8


class ParseFailure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _json_candidates(text: str):
    """JSON values found in text: fenced blocks first, then the whole text, then embedded ones."""
    for i, m in enumerate(_FENCE.finditer(text)):
        if i >= MAX_FENCES:
            break
        yield m.group(1).strip()
    yield text.strip()


def _loads(chunk: str):
    try:
        return json.loads(chunk)
    except RecursionError:
        raise ParseFailure("not_json", "the answer's JSON is nested too deeply") from None


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text` (fences and surrounding prose ignored)."""
    if text is None or not str(text).strip():
        raise ParseFailure("not_json", "empty answer")
    text = str(text)
    if len(text) > MAX_TEXT:
        raise ParseFailure("not_json", f"the answer has {len(text):,} characters (at most {MAX_TEXT:,} are parsed)")
    for chunk in _json_candidates(text):
        try:
            return _loads(chunk)
        except ValueError:
            pass
    # Prose around the JSON: try each '{' / '[' as a start and keep the first full value.
    best = None
    for i, m in enumerate(re.finditer(r"[\[{]", text)):
        if i >= MAX_STARTS:
            break
        try:
            value, _end = _DECODER.raw_decode(text, m.start())
        except RecursionError:
            raise ParseFailure("not_json", "the answer's JSON is nested too deeply") from None
        except ValueError:
            continue
        if isinstance(value, dict) and ("questions" in value or best is None):
            return value
        if isinstance(value, list) and best is None:
            best = value
    if best is not None:
        return best
    snippet = " ".join(text.split())[:80]
    raise ParseFailure("not_json", f"no JSON in the answer: {snippet!r}")


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        s = v.strip().rstrip(".").lstrip("#")
        if s.isdigit() and len(s) < 12:
            try:
                return int(s)
            except ValueError:  # a non-ASCII digit such as '²'
                return None
    return None


def questions_of(value: Any) -> list[tuple[int | None, Any]]:
    """[(narration number or None when unusable, query value)] from a parsed answer."""
    if isinstance(value, dict):
        items = None
        for key in ("questions", "queries", "items", "results"):
            if isinstance(value.get(key), list):
                items = value[key]
                break
        if items is None:
            if any(k in value for k in _QUERY_KEYS):  # a single question object
                items = [value]
            else:
                raise ParseFailure("wrong_shape", f"expected a 'questions' list, got keys {sorted(value)[:5]}")
    elif isinstance(value, list):
        items = value
    else:
        raise ParseFailure("wrong_shape", f"expected a JSON object, got {type(value).__name__}")
    out: list[tuple[int | None, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise ParseFailure("wrong_shape", f"a question entry is {type(item).__name__}, not an object")
        number = None
        for k in _INDEX_KEYS:
            if k in item:
                number = _as_int(item[k])
                break
        query = None
        for k in _QUERY_KEYS:
            if k in item:
                query = item[k]
                break
        out.append((number, query))
    return out


def parse_answer(text: str) -> list[tuple[int | None, Any]]:
    return questions_of(extract_json(text))
