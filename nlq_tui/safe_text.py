"""Text from outside on screen: the Textual half of the safe-text rule (docs/ARCHITECTURE.md, "Trust").

Untrusted text (narrations, uids, questions, server errors, paths) reaches a widget only as
plain `rich.text.Text` or Textual `Content` made by these functions, never as a markup string:
both markup parsers read `[/]`, `[@click=...]`, `[$accent]` and `[ $x]` in data as tags or
variables (a crash, a hidden action or vanished text), and `rich.markup.escape` does not stop
Textual's parser. `engine.textsafe.visible` first makes control characters and ESC visible,
since neither `Text` nor `Content` removes them on the way to the terminal.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text
from textual.content import Content

from engine.textsafe import error_line, one_line, visible

__all__ = [
    "content",
    "display_path",
    "content_markup_escape",
    "error_line",
    "notify",
    "one_line",
    "plain_content",
    "plain_text",
    "rich_markup_escape",
    "visible",
]

NOTIFY_LIMIT = 2000  # a toast is a few lines; a 100k-character error body is cut here


def plain_text(text: object, style: str = "", *, limit: int | None = None, newlines: bool = True) -> Text:
    """A Rich `Text` showing `text` as it is (no markup), controls visible, cut to `limit`."""
    return Text(visible(text, limit, newlines=newlines), style=style)


def plain_content(text: object, style: str = "", *, limit: int | None = None, newlines: bool = True) -> Content:
    """A Textual `Content` showing `text` as it is (no markup), controls visible, cut to `limit`."""
    return (
        Content.styled(visible(text, limit, newlines=newlines), style)
        if style
        else Content(visible(text, limit, newlines=newlines))
    )


def content(*parts: str | tuple[str, str] | Content, limit: int | None = None) -> Content:
    """`Content.assemble` with every str part made visible: mix fixed styled text and data
    without a markup string, e.g. `content(("1 Data", "reverse"), "  ", (root_name, "dim"))`.
    `limit` caps each data part."""
    safe: list[str | tuple[str, str] | Content] = []
    for part in parts:
        if isinstance(part, tuple):
            safe.append((visible(part[0], limit), part[1]))
        elif isinstance(part, str):
            safe.append(visible(part, limit))
        else:
            safe.append(part)
    return Content.assemble(*safe)


def content_markup_escape(text: object, limit: int | None = None) -> str:
    """`text` for insertion into a Textual content-markup string (Static("..."), notify with
    markup): controls visible and every `[` escaped. Prefer `content()`; this is for code that
    must keep a markup template."""
    return visible(text, limit).replace("[", "\\[")


_RICH_BRACKET = re.compile(r"(\\*)\[")


def rich_markup_escape(text: object, limit: int | None = None) -> str:
    """`text` for insertion into a Rich console-markup string (`Text.from_markup`, a Rich table
    cell given as str): controls visible, every `[` escaped, backslashes before it doubled."""
    return _RICH_BRACKET.sub(lambda m: m.group(1) * 2 + "\\[", visible(text, limit))


def notify(
    target,
    message: object,
    *,
    title: object = "",
    severity: str = "information",
    timeout: float | None = None,
) -> None:
    """`target.notify` (an App, Screen or Widget) with `message` and `title` shown as plain text:
    no markup, controls visible, at most NOTIFY_LIMIT characters. Thread-safe as App.notify is."""
    target.notify(
        visible(message, NOTIFY_LIMIT, newlines=True),
        title=one_line(title, 200),
        severity=severity,  # type: ignore[arg-type]
        timeout=timeout,
        markup=False,
    )


def display_path(path: Path | None) -> str:
    """A path as a user would type it: relative to the current folder when inside it. The raw
    text (for an Input's value, which SafeInput draws safely); a label shows it with plain_text."""
    if path is None:
        return ""
    try:
        rel = Path(path).resolve().relative_to(Path.cwd().resolve())
        return str(rel) if str(rel) != "." else "."
    except ValueError:
        home = Path.home()
        try:
            return "~/" + str(Path(path).relative_to(home))
        except ValueError:
            return str(path)
