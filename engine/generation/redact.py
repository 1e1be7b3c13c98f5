"""The API key never leaves the process: every text from a server or an exception is redacted.

A backend registers the key it sends (`register`); `redact` replaces every occurrence of a
registered value with `***`. The backend applies it to answers and error details as they
arrive, and the pipeline again to what it stores and reports, so a key that a server echoes
(in a 400 body, in a question, JSON-escaped inside an answer) is gone before anything shows or
stores it (docs/ARCHITECTURE.md, "Trust").
"""

from __future__ import annotations

import threading

MASK = "***"
MIN_SECRET = 8  # shorter values would mask ordinary words; no real API key is this short

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register(value: str | None) -> None:
    """Mask `value` from now on (process-wide; registering twice is harmless)."""
    global _secrets
    if not value or len(value) < MIN_SECRET:
        return
    with _lock:
        if value not in _secrets:
            # longest first, so a key that contains another registered key is masked whole
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def redact(text):
    """`text` with every registered secret replaced by `***` (non-strings pass through)."""
    if not _secrets or not isinstance(text, str):
        return text
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def redact_deep(value, _depth: int = 0):
    """`redact` over the strings in a JSON-like value (dicts, lists), to a bounded depth."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if _depth > 32:
        return "<nested too deeply>"
    if isinstance(value, dict):
        return {redact(k): redact_deep(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_deep(v, _depth + 1) for v in value]
    return value


def secrets_registered() -> bool:
    return bool(_secrets)
