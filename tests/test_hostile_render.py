"""Every screen drawn on hostile data: no exception, and no control sequence from the data reaches
the terminal (docs/ARCHITECTURE.md, "Trust").

The tree, the workspace and the LLM answers come from tests/hostile_fixtures.py: markup both
parsers would act on, OSC 52 / OSC 2 / CSI sequences, C1 codes, lone surrogates and a 100k-character
narration, in narration text, uids, queries, questions, server error bodies, reject reasons,
edits, run errors, logs and the paths themselves. What the driver writes is recorded, Textual's
own sequences are removed, and nothing else may be left; the marker word of each field must be
on screen, so that the data was drawn, not dropped. Notifications are on (`run_test` turns them
off by default), since a toast parses its message as markup unless told not to.
"""

from __future__ import annotations

import argparse
import shutil

import pytest
from hostile_fixtures import (
    HostileLLMServer,
    hostile_root,
    hostile_workspace_path,
    install_recording_driver,
    write_hostile_tree,
    write_hostile_workspace,
)
from tui_helpers import settle

SIZE = (140, 45)


@pytest.fixture(scope="module")
def hostile_master(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    return write_hostile_tree(hostile_root(base))


@pytest.fixture
def hostile(hostile_master, tmp_path, monkeypatch):
    """(root, workspace path, recorded terminal): a private copy of the tree at a hostile path."""
    root = hostile_root(tmp_path)
    shutil.rmtree(root)
    shutil.copytree(hostile_master, root)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hostile-test-0000")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    terminal = install_recording_driver(monkeypatch)
    return root, hostile_workspace_path(tmp_path), terminal


def _app(root, ws, screen, load=True):
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    args = argparse.Namespace(data=str(root) if root else None, workspace=str(ws), screen=screen, reviewer="tester")
    return NLQApp(AppContext.from_args(args), screen, load_on_start=load)


async def _wait(pilot, pred, timeout=40.0):
    for _ in range(int(timeout / 0.05)):
        if pred():
            return True
        await pilot.pause(0.05)
    return False


def _check(app, terminal, *words):
    """The app is alive, the terminal got none of the data's controls, and each word was drawn."""
    assert app._exception is None, app._exception  # noqa: SLF001 - an exception the app caught and stopped on
    assert app.is_running
    assert terminal.text(), "the recording driver got no output"
    foreign = terminal.foreign_controls()
    assert not foreign, f"control sequences from the data reached the terminal: {foreign}"
    missing = [w for w in words if not terminal.shows(w)]
    assert not missing, f"not drawn: {missing}"


def _notifications(app) -> str:
    return " ".join(str(n.message) for n in app._notifications)  # noqa: SLF001


async def test_data_screen_on_a_hostile_tree_at_a_hostile_path(hostile):
    root, ws, terminal = hostile
    app = _app(root, ws, "data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert app.ctx.index is not None, app.ctx.load_error
        _check(app, terminal, "PATHX")
        await pilot.press("i")  # the issues list names the unknown hostile field
        await pilot.pause(0.3)
        _check(app, terminal, "FIELD")


async def test_a_load_error_naming_a_hostile_path_is_a_notification_and_a_panel(hostile, tmp_path):
    _, ws, terminal = hostile
    missing = tmp_path / "gone[" / "]evil[$accent][ $x]\x1b]2;GONE\x07"
    app = _app(None, ws, "data")
    app.ctx.data_root = missing
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert app.ctx.load_error
        assert "GONE" in _notifications(app)
        await pilot.pause(0.5)
        _check(app, terminal, "GONE")


async def test_a_load_error_at_a_hostile_path_is_one_plain_notification_on_the_lab_screen(hostile, tmp_path):
    _, ws, terminal = hostile
    missing = tmp_path / "gone[" / "]evil[$accent][ $x]\x1b]2;GONE\x07"
    app = _app(None, ws, "lab")
    app.ctx.data_root = missing
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.pause(0.5)
        assert app.ctx.load_error and "GONE" in app.ctx.load_error
        _check(app, terminal, "GONE", "Data not loaded")


async def test_a_load_error_naming_a_hostile_video_uid_does_not_crash(hostile):
    import json

    from hostile_fixtures import payload

    root, ws, terminal = hostile
    ego = json.loads((root / "ego4d.json").read_text("utf-8"))
    ego["clips"].append({"clip_uid": payload("BADCLIP"), "video_uid": "[/]evil", "video_start_sec": "soon"})
    ego["videos"] = {"[/]evil": payload("BADVIDEO")}  # wrong type: the reader must say so in one line
    (root / "ego4d.json").write_text(json.dumps(ego), "utf-8")
    app = _app(root, ws, "data")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.pause(0.5)
        _check(app, terminal)
        assert app.ctx.load_error or app.ctx.index is not None


async def test_lab_with_a_hostile_group_open(hostile):
    root, ws, terminal = hostile
    app = _app(root, ws, "lab")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert app.screen.summary is not None
        await pilot.press("n")  # the not-usable windows, with reasons
        await pilot.pause(0.3)
        await pilot.press("u")  # the usable ones: uids and narrations
        await pilot.pause(0.3)
        _check(app, terminal, "NARR")
        await pilot.press("enter")  # the group view of the first window
        await pilot.pause(0.5)
        _check(app, terminal, "NARR")
        await pilot.press("escape")
        await pilot.pause(0.2)
        _check(app, terminal)


async def _generate_screen(pilot):
    app = pilot.app
    await settle(pilot)
    await _wait(pilot, lambda: getattr(app.screen, "groups", None) is not None)
    await settle(pilot)
    return app.screen


def _use_server(screen, srv) -> None:
    screen.query_one("#backend").value = "openai"
    screen.query_one("#model").value = "fake"
    screen.query_one("#base_urls").value = srv.base_url
    screen.query_one("#checks").value = "fast"


async def test_generate_preview_dry_run_and_feed_with_hostile_narrations_and_questions(hostile):
    root, ws, terminal = hostile
    app = _app(root, ws, "generate")
    with HostileLLMServer("questions") as srv:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = await _generate_screen(pilot)
            _use_server(screen, srv)
            screen.query_one("#gen-tabs").active = "preview"
            await pilot.pause(0.5)
            _check(app, terminal, "NARR")
            await pilot.press("f2")
            await settle(pilot)
            await _wait(pilot, lambda: screen.last_dry_run is not None)
            screen.query_one("#gen-tabs").active = "dry"
            await pilot.pause(0.5)
            _check(app, terminal, "LLMQ")
            screen.query_one("#groups").value = "2"
            await pilot.press("f5")  # a dialog asks: here, detached, or not
            assert await _wait(pilot, lambda: type(app.screen).__name__ == "StartJobModal")
            await pilot.press("enter")
            assert await _wait(pilot, lambda: screen.job is not None or screen.last_stats is not None)
            assert await _wait(pilot, lambda: screen.job is None)
            screen.query_one("#gen-tabs").active = "feed"
            await settle(pilot)
            await pilot.pause(0.3)
            _check(app, terminal, "LLMQ")


async def test_generate_dry_run_against_a_server_whose_error_body_is_hostile(hostile):
    root, ws, terminal = hostile
    app = _app(root, ws, "generate")
    with HostileLLMServer("error") as srv:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            screen = await _generate_screen(pilot)
            _use_server(screen, srv)
            await pilot.press("f2")
            await settle(pilot)
            await _wait(pilot, lambda: screen.last_dry_run is not None)
            screen.query_one("#gen-tabs").active = "dry"
            await pilot.pause(0.5)
            _check(app, terminal, "SRVERR")
            assert "sk-hostile-test-0000" not in terminal.text()


async def test_review_card_timeline_recent_list_and_filters_on_hostile_candidates(hostile):
    root, ws, terminal = hostile
    write_hostile_workspace(ws, surrogates=False)  # lone surrogates in the store: the test below
    app = _app(root, ws, "review", load=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        screen = app.screen
        assert await _wait(pilot, lambda: screen.store is not None and screen.current is not None)
        await pilot.pause(0.3)
        _check(app, terminal, "QUESTION", "NARR", "VUID")
        await pilot.press("tab")  # the recent decisions, one of them a hostile edit
        await pilot.pause(0.3)
        _check(app, terminal, "EDIT")
        await pilot.press("escape")
        await pilot.press("ctrl+f")  # the filters list the hostile model names
        await pilot.pause(0.5)
        _check(app, terminal, "MODEL")
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.press("x")  # the reasons modal, over a hostile card
        await pilot.pause(0.3)
        await pilot.press("escape")
        await pilot.pause(0.2)
        _check(app, terminal)


async def test_review_opens_on_candidates_with_lone_surrogates(hostile):
    root, ws, terminal = hostile
    write_hostile_workspace(ws, surrogates=True)
    app = _app(root, ws, "review", load=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        screen = app.screen
        assert await _wait(pilot, lambda: screen.store is not None and screen.current is not None)
        await pilot.pause(0.3)
        _check(app, terminal, "QUESTION", "NARR")


async def test_review_read_only_because_another_session_holds_the_lock_at_a_hostile_path(hostile):
    from engine.store import CandidateStore
    from engine.workspace import Workspace

    root, ws, terminal = hostile
    write_hostile_workspace(ws, surrogates=False)
    other = CandidateStore(Workspace(ws), reviewer="[/]other\x1b]2;HOLDER\x07")
    other.begin_review()  # the lock's holder and the workspace path are in the message
    try:
        app = _app(root, ws, "review", load=False)
        async with app.run_test(size=(160, 50), notifications=True) as pilot:
            screen = app.screen
            assert await _wait(pilot, lambda: screen.store is not None and screen.current is not None)
            await pilot.press("a")  # refused: read-only, said in a notification
            await pilot.pause(0.5)
            _check(app, terminal)
            assert screen.read_only
    finally:
        other.close()


async def test_review_error_panel_when_the_candidates_cannot_be_opened_at_a_hostile_path(hostile):
    root, ws, terminal = hostile
    ws.mkdir(parents=True)
    (ws / "candidates").write_text("not a folder")  # the store cannot open: an error naming the path
    app = _app(root, ws, "review", load=False)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        await settle(pilot)
        await pilot.pause(0.5)
        _check(app, terminal, "WSX")
        await pilot.press("a", "x")
        await pilot.pause(0.3)
        await pilot.press("escape")
        _check(app, terminal)


async def test_train_screen_with_a_failed_run_whose_error_and_log_are_hostile(hostile):
    _, ws, terminal = hostile
    write_hostile_workspace(ws, surrogates=False)
    app = _app(None, ws, "train", load=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = app.screen
        assert await _wait(pilot, lambda: getattr(screen, "polls", 0) > 0)
        await pilot.pause(1.0)
        _check(app, terminal, "RUNERR", "LOG")


async def test_notifications_and_error_reports_stay_plain(hostile):
    from hostile_fixtures import payload

    from nlq_tui.safe_text import notify
    from nlq_tui.workers import report_error

    root, ws, terminal = hostile
    app = _app(root, ws, "lab")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        notify(app, payload("NOTE"), title=payload("TITLE"))
        report_error(app.screen, KeyError(payload("BUG")), title="x")
        await pilot.pause(0.5)
        _check(app, terminal, "NOTE", "TITLE", "BUG")


async def test_help_and_the_palette_over_every_screen(hostile):
    root, ws, terminal = hostile
    write_hostile_workspace(ws, surrogates=False)
    app = _app(root, ws, "lab")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        for key in ("2", "3", "4", "5", "1"):
            await pilot.press(key)
            await settle(pilot, rounds=2)
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            await pilot.press("escape")
        await pilot.press("ctrl+p")  # the palette lists every action of the screen by name
        await pilot.pause(0.3)
        await pilot.press("escape")
        await pilot.pause(0.3)
        _check(app, terminal)
