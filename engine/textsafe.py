"""Text from outside is data: the str-level half of the safe-text rule (docs/ARCHITECTURE.md, "Trust").

Narrations, uids, LLM answers, server error bodies and paths may hold terminal control
sequences, lone surrogates or megabytes of text. Before any of it reaches a terminal (the TUI,
CLI output, `--dry-run`, an error message) it goes through `visible`: every C0/C1 control
character, ESC and DEL is replaced by a visible stand-in (ESC becomes `␛`, other C0 codes their
Unicode control picture, C1 codes and bidirectional overrides `\\x9b`-style escapes), and lone
surrogates become `\\udcff`-style escapes, so nothing can be interpreted by the terminal and
nothing fails to encode. The Textual layer on top of this is `nlq_tui/safe_text.py`; this module
imports nothing outside the standard library so that engine/ can use it too.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# ESC is the one that matters most: it starts CSI/OSC/DCS sequences. A picture, not "^[" or
# "\x1b" text, so that a reader sees one character where the terminal would have seen one.
_PICTURES: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ .. ␟
_PICTURES[0x1B] = "␛"
_PICTURES[0x7F] = "␡"

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _table(newlines: bool) -> dict[int, str]:
    table: dict[int, str] = dict(_PICTURES)
    for c in range(0x80, 0xA0):
        table[c] = f"\\x{c:02x}"
    for c in _BIDI:
        table[c] = f"\\u{c:04x}"
    for c in range(0xD800, 0xE000):  # only lone ones exist in a str: pairs are decoded already
        table[c] = f"\\u{c:04x}"
    if newlines:
        table[0x0A] = "\n"
        table[0x09] = "\t"
    else:
        table[0x0A] = " "
        table[0x09] = " "
    return table


_ONE_LINE = _table(newlines=False)
_MULTI_LINE = _table(newlines=True)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_MULTI = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


_SAME_WIDTH: dict[int, str] = dict(_PICTURES)
_SAME_WIDTH.update({c: "\ufffd" for c in (*range(0x80, 0xA0), *_BIDI, *range(0xD800, 0xE000))})


def visible_same_length(text: str) -> str:
    """`text` with each unsafe character replaced by ONE visible character (a control picture,
    or U+FFFD for C1 codes, bidi overrides and lone surrogates), so that positions in it stay
    those of the original: for an editable field that shows a value it must not change."""
    return text.translate(_SAME_WIDTH) if _UNSAFE.search(text) is not None else text


def clip(text: str, limit: int | None) -> str:
    """`text` cut to at most `limit` characters, the cut marked with `…` (None: no limit)."""
    if limit is None or len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def visible(text: object, limit: int | None = None, *, newlines: bool = False) -> str:
    """`text` (any object: str() of it) safe for a terminal: control characters, ESC, bidi
    overrides and lone surrogates shown visibly; newlines and tabs kept only with `newlines`
    (else spaces); cut to `limit` characters when given. Never raises."""
    s = text if isinstance(text, str) else safe_str(text)
    if limit is not None:
        # Cut first (with room for the stand-ins' growth) so that a 100 MB string costs what
        # its first `limit` characters cost.
        s = s[: limit + 1]
    pattern = _UNSAFE_MULTI if newlines else _UNSAFE
    if pattern.search(s) is not None:
        s = s.translate(_MULTI_LINE if newlines else _ONE_LINE)
    return clip(s, limit)


def one_line(text: object, limit: int | None = 500) -> str:
    """`visible(text)` on one line, runs of whitespace collapsed, cut to `limit` characters
    (None: no limit): for messages, notifications and table cells."""
    pre = None if limit is None else limit * 2 + 64  # collapsing can only shorten it
    return clip(" ".join(visible(text, pre).split()), limit)


def safe_str(obj: object) -> str:
    """`str(obj)` that never raises (an object whose __str__ fails is shown by its type)."""
    try:
        return obj if isinstance(obj, str) else str(obj)
    except Exception:  # noqa: BLE001 - a broken __str__ in a third-party exception must not hide the error
        return f"<{type(obj).__name__}>"


def error_line(error: BaseException, limit: int | None = 500) -> str:
    """One safe line for an error: a user error's own message; anything else (a bug) with its
    type first, so that it reads as one."""
    from engine.errors import UserError

    if isinstance(error, UserError):
        return one_line(error, limit)
    message = one_line(error, limit)
    name = type(error).__name__
    return f"{name}: {message}" if message else name


def encodable(text: str, encoding: str | None) -> str:
    """`text` with what `encoding` cannot write replaced (for a stdout that is not UTF-8)."""
    if not encoding:
        return text
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        try:
            return text.encode(encoding, "replace").decode(encoding)
        except LookupError:
            return text.encode("ascii", "replace").decode("ascii")
