"""Problems found in an Ego4D tree, and the small readers that report them as one line each.

A quirk of real files is a counted warning; anything else is an error whose one line names the
file, the place (JSON path, video, line and column) and what to do. `Problems` either raises the
first error (`load_index`) or collects them all (`check`). Text from the files is data: lone
surrogates are replaced (and counted), numbers too large for a float are errors, and a file in
another encoding or nested too deeply says so instead of raising a traceback.
"""

from __future__ import annotations

import codecs
import gc
import json
import math
import re
from pathlib import Path
from typing import Any

from engine.errors import DataError
from engine.index import Issue


class Problems:
    """Collects warnings (aggregated per code and file) and errors.

    strict: the first error raises DataError (load_index); otherwise errors are collected
    (check), up to `max_errors` per file so a broken 4M-row file does not flood the report.
    """

    def __init__(self, root: Path, strict: bool, max_errors: int = 20) -> None:
        self.root = root
        self.strict = strict
        self.max_errors = max_errors
        self.errors: list[Issue] = []
        self._errors_per_file: dict[str, int] = {}
        self._warn: dict[tuple[str, str], list] = {}

    def error(self, code: str, file: str, message: str) -> None:
        message = " ".join(message.split())
        if self.strict:
            raise DataError(message, path=file)
        n = self._errors_per_file.get(file, 0) + 1
        self._errors_per_file[file] = n
        if n <= self.max_errors:
            self.errors.append(Issue("error", code, file, message))

    def warn(self, code: str, file: str, what: str, where: str = "", count: int = 1) -> None:
        """Count `count` occurrences of quirk `code`; the message keeps the first `where`."""
        if count <= 0:
            return
        slot = self._warn.get((code, file))
        if slot is None:
            self._warn[(code, file)] = [count, what, where]
        else:
            slot[0] += count

    def absorb(self, other: Problems) -> None:
        """Take `other`'s errors and warnings as if reported here (in their order)."""
        for issue in other.errors:
            self.error(issue.code, issue.file, issue.message)
        for (code, file), (count, what, where) in other._warn.items():
            self.warn(code, file, what, where, count)

    def errors_in(self, file: str) -> int:
        return self._errors_per_file.get(file, 0)

    def issues(self) -> list[Issue]:
        out = list(self.errors)
        for file, n in self._errors_per_file.items():
            if n > self.max_errors:
                more = n - self.max_errors
                out.append(Issue("error", "more_errors", file, f"{file}: {more} more errors not shown", more))
        for (code, file), (count, what, where) in self._warn.items():
            msg = f"{file}: {what}: {count}" + (f" (first: {where})" if where else "")
            out.append(Issue("warning", code, file, msg, count))
        return out


def disp(root: Path, rel: str) -> str:
    return str(root / rel)


def check_file(root: Path, rel: str, problems: Problems, what: str) -> Path | None:
    """The path of a required file, or None after reporting why it cannot be read."""
    p = root / rel
    shown = disp(root, rel)
    try:
        exists = p.exists()
    except OSError:  # a looping symlink on some systems
        exists = False
    if not exists:
        if p.is_symlink():
            problems.error("unreadable", rel, f"{shown}: is a dangling or looping symlink; point it at the {what} file")
        elif not root.is_dir():
            problems.error(
                "root_missing",
                rel,
                f"{root}: data root not found or not a folder; pass the folder that holds ego4d.json and v1/",
            )
        else:
            problems.error("missing_file", rel, f"{shown}: not found; {what} must be at ROOT/{rel} (Ego4D layout)")
        return None
    if p.is_dir():
        problems.error(
            "folder_not_file", rel, f"{shown}: is a folder, expected the {what} file; put the JSON file at this path"
        )
        return None
    try:
        size = p.stat().st_size
    except OSError as exc:
        problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
        return None
    if size == 0:
        problems.error("empty_file", rel, f"{shown}: is empty (0 bytes); download or copy {what} again")
        return None
    return p


def json_type(obj: Any) -> str:
    if isinstance(obj, dict):
        return "an object"
    if isinstance(obj, list):
        return "a list"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, bool):
        return "a boolean"
    if obj is None:
        return "null"
    return "a number"


_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)"),
    (codecs.BOM_UTF8, "UTF-8 with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)"),
)


def sniff_encoding(head: bytes) -> str | None:
    """The encoding a file's first bytes show when it is not plain UTF-8 JSON, else None.

    JSON text starts with ASCII, so a NUL among its first bytes means UTF-16 or UTF-32
    without a byte-order mark.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if len(head) >= 4 and b"\x00" in head[:4]:
        if head[0] == 0 and head[1] == 0:
            return "UTF-32 (big-endian)"
        if head[1:4] == b"\x00\x00\x00":
            return "UTF-32 (little-endian)"
        return "UTF-16 (big-endian)" if head[0] == 0 else "UTF-16 (little-endian)"
    return None


def encoding_error(problems: Problems, rel: str, shown: str, found: str) -> None:
    problems.error(
        "wrong_encoding",
        rel,
        f"{shown}: is {found} text, expected UTF-8 JSON; convert it (e.g. iconv -t UTF-8) or download it again",
    )


def warn_unknown(problems: Problems, rel: str, names, where: str) -> None:
    """Unknown fields of one object, named (at most three, sorted) with where they are; no names:
    counted without a place (the first such warning already names one)."""
    at = f"{', '.join(sorted(map(str, names))[:3])} in {where}" if names else ""
    problems.warn("unknown_field", rel, "unknown extra fields (ignored)", at)


def warn_bom(problems: Problems, rel: str) -> None:
    problems.warn("utf8_bom", rel, "starts with a UTF-8 byte-order mark (ignored)", "byte 0")


def read_json(root: Path, rel: str, problems: Problems, what: str) -> Any:
    """Parse a whole (small) JSON file; None after reporting why it cannot be used."""
    p = check_file(root, rel, problems, what)
    if p is None:
        return None
    shown = disp(root, rel)
    try:
        data = p.read_bytes()
    except OSError as exc:
        problems.error("unreadable", rel, f"{shown}: cannot read ({exc.strerror}); check its permissions")
        return None
    found = sniff_encoding(data[:4])
    if found is not None and not found.startswith("UTF-8"):
        encoding_error(problems, rel, shown, found)
        return None
    if found is not None:
        warn_bom(problems, rel)
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.error(
            "not_utf8",
            rel,
            f"{shown}: not UTF-8 text (bad byte at {exc.start}); it is not a JSON file or is damaged, download it again",
        )
        return None
    del data
    return parse_json_text(text, shown, rel, problems)


def parse_json_text(text: str, shown: str, rel: str, problems: Problems) -> Any:
    """json.loads with every failure as one error line (None then)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a big metadata file is millions of containers that the GC would rescan
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problems.error("bad_json", rel, json_error_message(shown, exc.msg, exc.lineno, exc.colno, exc.pos, len(text)))
    except RecursionError:
        problems.error("too_deep", rel, too_deep_message(shown, text))
    except ValueError as exc:  # an integer with more digits than Python converts
        problems.error("bad_json", rel, f"{shown}: unreadable number ({str(exc)[:80]}); fix or re-download the file")
    finally:
        if gc_was_enabled:
            gc.enable()
    return None


def json_error_message(shown: str, msg: str, line: int, col: int, pos: int, length: int, context: str = "") -> str:
    where = f"line {line} column {col}" + (f", {context}" if context else "")
    if pos >= length - 1 or msg.startswith("Unterminated") or msg == "Expecting value" and pos >= length - 2:
        return f"{shown}: ends early at {where} (truncated JSON: {msg}); download or copy the file again"
    return f"{shown}: not valid JSON at {where} ({msg}); download or copy the file again"


MAX_DEPTH = 256  # no Ego4D file nests deeper than 8; the message names where this is passed
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def too_deep_at(text: str, start: int = 0, limit: int = MAX_DEPTH) -> tuple[int, int] | None:
    """(line, column) where brackets first nest deeper than `limit` in text[start:], or None."""
    depth = 0
    for m in _TOKEN.finditer(text, start):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                pos = m.start()
                line = text.count("\n", 0, pos) + 1
                return line, pos - text.rfind("\n", 0, pos)
        elif c in "]}":
            depth -= 1
    return None


def too_deep_message(shown: str, text: str, start: int = 0, context: str = "") -> str:
    at = too_deep_at(text, start)
    where = f" at line {at[0]} column {at[1]}" if at else ""
    ctx = f", {context}" if context else ""
    return (
        f"{shown}: JSON nested more than {MAX_DEPTH} levels deep{where}{ctx}; "
        "this is not an Ego4D file or it is damaged, download it again"
    )


def describe_bad_number(v: Any) -> str:
    if isinstance(v, str):
        return f"a string ({v[:20]!r})"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, float):
        return "infinite"
    if isinstance(v, int):
        return "a number too large for seconds"
    return json_type(v)


def as_seconds(v: Any) -> float | None:
    """A JSON value as finite float seconds, or None (bools, strings, NaN, huge integers)."""
    t = type(v)
    if t is float:
        return v if math.isfinite(v) else None
    if t is int:
        try:
            return float(v)
        except OverflowError:
            return None
    return None


def good_number(v: Any) -> bool:
    return as_seconds(v) is not None


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(s: str) -> tuple[str, bool]:
    """`s` with lone surrogates (from `\\ud800`-style escapes) replaced by U+FFFD; whether any was.

    They cannot be encoded as UTF-8, so kept they would fail every later write and render.
    """
    if _SURROGATE.search(s) is None:
        return s, False
    return _SURROGATE.sub("\ufffd", s), True


def warn_surrogates(problems: Problems, rel: str, where: str, count: int = 1) -> None:
    problems.warn("lone_surrogates", rel, "text with lone surrogate escapes (replaced by U+FFFD)", where, count)
