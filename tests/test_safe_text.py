"""The safe-text rule at the str level (engine.textsafe) and its Textual layer (nlq_tui.safe_text)."""

from __future__ import annotations

import pytest

from engine.errors import DataError
from engine.textsafe import clip, error_line, one_line, safe_str, visible

HOSTILE = [
    "[/]",
    "[bold red]x[/]",
    "[link=file:///etc/passwd]x[/link]",
    "[@click=app.quit]q[/]",
    "[$accent]",
    "[ $x]",
    "\x1b]52;c;aGVsbG8=\x07",
    "\x1b]2;owned\x1b\\",
    "\x1b[?1049l\x1b[2J",
    "\x9b2J",
    "a\ud800b\udcffc",
    "\u202eevil",
    "back\\[/]slash",
]


@pytest.mark.parametrize("s", HOSTILE)
def test_visible_leaves_no_control_character_esc_or_lone_surrogate(s):
    out = visible(s)
    assert all(not (ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0) for c in out)
    out.encode("utf-8")  # lone surrogates became escapes: this must not raise


def test_esc_is_shown_as_a_picture_and_text_around_it_kept():
    assert visible("a\x1b[2Jb") == "a␛[2Jb"
    assert visible("bell\x07") == "bell␇"
    assert visible("\x9b") == "\\x9b"
    assert visible("x\ud800") == "x\\ud800"


def test_newlines_are_kept_only_when_asked_and_carriage_return_is_always_visible():
    assert visible("a\nb\tc\rd") == "a b c␍d"
    assert visible("a\nb\tc\rd", newlines=True) == "a\nb\tc␍d"


def test_limit_bounds_the_length_and_marks_the_cut():
    big = "n" * 100_000
    assert visible(big, 40) == "n" * 39 + "…"
    assert clip("short", 10) == "short"
    assert len(one_line("word " * 50_000, 100)) == 100


def test_one_line_collapses_whitespace():
    assert one_line("  a \n\n b\t c  ") == "a b c"


def test_error_line_names_a_bug_by_type_and_keeps_a_user_error_as_it_is():
    assert error_line(DataError("bad file x.json; fix it")) == "bad file x.json; fix it"
    assert error_line(RuntimeError("uid\x1b[2J")) == "RuntimeError: uid␛[2J"
    assert error_line(RuntimeError()) == "RuntimeError"


def test_safe_str_survives_a_broken_str():
    class Broken:
        def __str__(self):
            raise ValueError("no")

    assert safe_str(Broken()) == "<Broken>"
    assert visible(Broken()) == "<Broken>"


@pytest.mark.parametrize("s", HOSTILE)
def test_markup_escapes_round_trip_through_both_parsers(s):
    from rich.markup import render
    from textual.markup import to_content

    from nlq_tui.safe_text import content_markup_escape, rich_markup_escape

    assert to_content(content_markup_escape(s)).plain == visible(s)
    assert render(rich_markup_escape(s)).plain == visible(s)


def test_plain_text_and_content_parse_no_markup():
    from nlq_tui.safe_text import content, plain_content, plain_text

    assert plain_text("[bold]x[/]\x1b").plain == "[bold]x[/]␛"
    assert plain_content("[$accent][/]").plain == "[$accent][/]"
    c = content(("1 Data", "reverse"), " ", ("[/]\x1b]2;t\x07", "dim"))
    assert c.plain == "1 Data [/]␛]2;t␇"


def test_visible_same_length_keeps_positions_for_an_editable_field():
    from engine.textsafe import visible_same_length

    s = "a\x1b]2;x\x07b\x9bc\ud800d\u202ee"
    out = visible_same_length(s)
    assert len(out) == len(s) and out == "a␛]2;x␇b\ufffdc\ufffdd\ufffde"


async def test_safe_input_keeps_its_value_and_draws_controls_visibly():
    from textual.app import App

    from nlq_tui.widgets import SafeInput

    class One(App):
        def compose(self):
            yield SafeInput("/data/\x1b]2;T\x07x", id="i")

    app = One()
    async with app.run_test() as pilot:
        box = app.query_one("#i", SafeInput)
        await pilot.pause()
        assert box.value == "/data/\x1b]2;T\x07x"  # the real path, for loading
        drawn = "".join(seg.text for seg in box.render_line(0))
        assert "\x1b" not in drawn and "/data/␛]2;T␇x" in drawn


async def test_safe_input_draws_a_suggestion_from_the_disk_safely():
    from textual.app import App
    from textual.suggester import SuggestFromList

    from nlq_tui.widgets import SafeInput

    class One(App):
        def compose(self):
            yield SafeInput(id="i", suggester=SuggestFromList(["/data/\x1b]2;T\x07evil"]))

    app = One()
    async with app.run_test() as pilot:
        box = app.query_one("#i", SafeInput)
        box.focus()
        await pilot.press(*"/da")
        await pilot.pause(0.2)
        drawn = "".join(seg.text for seg in box.render_line(0))
        assert "\x1b" not in drawn and "\x07" not in drawn
        assert "ta/␛]2;T" in drawn and "evil" in drawn  # (Rich drops the BEL itself)
        await pilot.press("right")  # accepting the suggestion gives the real name
        assert box.value == "/data/\x1b]2;T\x07evil"
