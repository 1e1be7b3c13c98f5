"""The Lab screen: live figures, tables over window ids, filters, the group view."""

from __future__ import annotations

import numpy as np
from textual.app import App, ComposeResult
from textual.widgets import Input, Select
from tui_helpers import make_app, settle, static_text, tree, tree_copy, tree_master  # noqa: F401 - fixtures


async def _open_lab(pilot):
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)
    return pilot.app.screen


async def _set_input(pilot, selector: str, value: str) -> None:
    screen = pilot.app.screen
    inp = screen.query_one(selector, Input)
    inp.focus()
    await pilot.pause()
    await pilot.press("ctrl+a", "ctrl+k")  # select nothing, then clear: Input's own keys
    inp.value = ""
    await pilot.press(*value)
    await settle(pilot)


async def test_changing_alpha_changes_the_figures(tree, tmp_path):
    from engine.windows import WindowParams, compute

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        before = static_text(lab.query_one("#figures"))
        usable_before = lab.summary["usable"]
        await _set_input(pilot, "#alpha", "0.5")
        after = static_text(lab.query_one("#figures"))
        assert lab.result.params.alpha == 0.5
        assert after != before
        # what the screen shows is the engine's figure for the typed parameters
        expected = compute(app.ctx.index, WindowParams(alpha=0.5)).summary()["usable"]
        assert lab.summary["usable"] == expected != usable_before
        assert f"{expected:,}" in after


async def test_a_bad_parameter_says_why_and_keeps_the_last_figures(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        shown = static_text(lab.query_one("#figures"))
        await _set_input(pilot, "#k", "0")
        assert "k must be a whole number >= 1" in static_text(lab.query_one("#lab-state"))
        assert static_text(lab.query_one("#figures")) == shown
        assert lab.result.params.k == 5


async def test_a_burst_of_keystrokes_ends_on_the_last_value(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        inp = lab.query_one("#min_window", Input)
        inp.focus()
        inp.value = ""
        await pilot.press(*"2.75")  # each keystroke is a change; only the last must win
        await settle(pilot)
        assert lab.result.params.min_window == 2.75


async def test_changing_k_and_pass_recomputes_groups(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        await _set_input(pilot, "#k", "3")
        assert lab.result.k == 3 and lab.summary["windows"] == 3 * lab.summary["groups"]
        lab.query_one("#pass", Select).value = "both"
        await pilot.pause(0.2)
        await settle(pilot)
        assert lab.result.params.narration_pass == "both"


async def test_selecting_a_row_opens_its_group_on_a_timeline(tree, tmp_path):
    from nlq_tui.screens.lab import GroupScreen
    from nlq_tui.widgets import ClipTimeline

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        table = lab.query_one("#bad-table")
        table.focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        group = app.screen
        assert isinstance(group, GroupScreen)
        window = int(lab._bad[1])
        assert group.group == window // lab.result.k
        timeline = group.query_one(ClipTimeline)
        assert len(timeline.marks) == lab.result.k
        d = lab.result.describe_window(window)
        assert (timeline.clip_start, timeline.clip_end) == (d["clip_start"], d["clip_end"])
        listing = static_text(group.query_one("#group-table"))
        assert d["text"][:30] in listing
        await pilot.press("escape")
        assert app.screen is lab


async def test_reason_filter_shows_only_windows_with_that_reason(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        lab.query_one("#reason", Select).value = "overlap"
        await settle(pilot)
        rows = lab._bad
        assert len(rows) == lab.summary["reasons"]["overlap"] > 0
        assert all("overlap" in lab.result.describe_window(int(w))["reasons"] for w in rows[:50])
        lab.query_one("#reason", Select).value = "no_clip"  # a run reason: the table lists runs
        await settle(pilot)
        assert lab._bad_runs and len(lab._bad) == lab.summary["reasons"]["no_clip"]


async def test_video_filter_keeps_one_video(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        res = lab.result
        v = int(res.group_video[-1])
        uid = app.ctx.index.video_uids[v]
        await _set_input(pilot, "#video", uid[:8])
        assert lab._good is None  # the usable ids are gathered only for the Usable tab
        await pilot.press("escape")
        lab.action_show_tab("usable")
        await settle(pilot)
        assert len(lab._good) > 0
        assert set(res.window_video[lab._good].tolist()) == {v}
        assert set(res.window_video[lab._bad].tolist()) <= {v}


class _TableApp(App):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.fetched: list[int] = []

    def compose(self) -> ComposeResult:
        from nlq_tui.widgets import Column, VirtualTable

        yield VirtualTable([Column("row", 12, "right"), Column("text", None)], id="t")

    def on_mount(self) -> None:
        ids = np.arange(self.n, dtype=np.int64)[::-1]

        def fetch(i: int):
            self.fetched.append(i)
            return (f"{ids[i]:,}", f"row {i}")

        self.query_one("#t").set_source(self.n, fetch)
        self.query_one("#t").focus()


async def test_usable_tab_lists_the_usable_windows(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        lab.query_one("#bad-table").focus()
        await pilot.press("u")
        await settle(pilot)
        assert len(lab._good) == lab.summary["usable"]
        assert not lab.result.reason_bits[lab._good].any()
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "GroupScreen"


async def test_virtual_table_draws_only_the_rows_on_screen():
    app = _TableApp(10_000_000)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert 0 < len(set(app.fetched)) <= 20
        await pilot.press("end")
        await pilot.pause()
        table = app.query_one("#t")
        assert table.cursor_row == 9_999_999
        assert max(app.fetched) == 9_999_999
        assert len(set(app.fetched)) <= 40


HOSTILE = [
    "[/]",
    "[bold red]x[/]",
    "[link=file:///etc/passwd]pw[/link]",
    "[@click=app.quit]quit[/]",
    "[$accent]",
    "[ $x]",
    "\x1b]52;c;Zm9vCg==\x07",
    "\x1b]2;pwned\x1b\\",
    "\x1b[2J\x1b[?1049l",
]


async def test_hostile_narrations_render_as_text_in_the_lab_and_its_group(tree_copy, tmp_path):
    """`[/]` in a narration once crashed the group view (a Rich table read it as markup)."""
    import json

    from nlq_tui.screens.lab import GroupScreen

    path = tree_copy / "v1/annotations/narration.json"
    narr = json.loads(path.read_text("utf-8"))
    for entry in narr.values():
        for n, x in enumerate((entry.get("narration_pass_1") or {}).get("narrations", [])):
            x["narration_text"] = f"#C C {HOSTILE[n % len(HOSTILE)]} {n}"
    path.write_text(json.dumps(narr), "utf-8")
    app = make_app(tree_copy, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        lab = await _open_lab(pilot)
        assert lab.result is not None
        for table_id in ("#bad-table", "#good-table"):
            lab.query_one(table_id).focus()
            await pilot.press("enter")
            await settle(pilot)
            group = app.screen
            assert isinstance(group, GroupScreen)
            listing = static_text(group.query_one("#group-table"))
            assert "\x1b" not in listing and "#C C" in listing
            assert any(h in listing for h in ("[/]", "[$accent]", "[ $x]", "␛"))
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is lab
            lab.action_show_tab("usable")
            await settle(pilot)
        assert app.is_running
