"""One group, no store: the prompt preview and the dry run (docs/ARCHITECTURE.md, "Generation").

What a dry run returns is shown on screen and printed: the answer and every error detail are
redacted (no API key) and bounded here; making them visible (control characters) is the
caller's step through engine.textsafe.
"""

from __future__ import annotations

import numpy as np

from engine.generation.base import Backend, Request
from engine.generation.groups import GroupData, GroupReader
from engine.generation.prompt import Prompt
from engine.generation.redact import redact, redact_deep
from engine.generation.validate import validate
from engine.textsafe import one_line
from engine.windows import WindowResult

RAW_SHOWN = 64 * 1024  # characters of a raw answer a dry run shows


def preview_messages(result: WindowResult, g: int, prompt: Prompt) -> tuple[GroupData, list[dict]]:
    gd = GroupReader(result).read(np.array([g]))[0]
    return gd, prompt.messages(gd.texts)


async def dry_run(result: WindowResult, g: int, backend: Backend, prompt: Prompt) -> dict:
    """Send one group and report the raw answer and what validation made of it; stores nothing."""
    gd, messages = preview_messages(result, g, prompt)
    try:
        rep = (await backend.complete([Request(gd.key, messages, gd.texts, gd.flags)]))[0]
    finally:
        await backend.aclose()
    parsed = rep.parsed
    if parsed is None and rep.items is not None:
        parsed = {"questions": [{"narration": n, "query": q} for n, q in rep.items]}
    raw = None if rep.text is None else redact(rep.text)
    out = {"group_key": gd.key, "messages": messages, "narrations": gd.texts,
           "raw": None if raw is None else raw[:RAW_SHOWN], "raw_length": None if raw is None else len(raw),
           "parsed": redact_deep(parsed), "error": rep.error, "error_detail": one_line(redact(rep.error_detail), 300),
           "attempts": rep.attempts, "tokens": rep.tokens, "prompt_tokens": rep.prompt_tokens,
           "completion_tokens": rep.completion_tokens, "seconds": round(rep.seconds, 3)}  # fmt: skip
    if not rep.failed:
        v = validate(gd.key, gd.texts, gd.flags, text=rep.text, parsed=rep.parsed, items=rep.items)
        out["accepted"] = [{"narration": n, "query": redact(q)} for n, q in v.accepted]
        out["rejected"] = redact_deep(v.rejected)
    return out
