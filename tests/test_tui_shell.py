"""The app shell: opening on data, moving between screens, help, palette, start-up cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tui_helpers import make_app, settle, static_text, tree, tree_master  # noqa: F401 - fixtures

from engine.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


async def test_app_opens_on_the_data_screen_with_the_index_loaded(tree, tmp_path):
    from nlq_tui.screens.data import DataScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DataScreen)
        assert app.ctx.index is not None and app.ctx.index.n_videos == 12
        counts = static_text(app.screen.query_one("#counts"))
        assert "narrations" in counts and "p1 " in counts


async def test_number_keys_switch_screens_and_keep_their_state(tree, tmp_path):
    from nlq_tui.screens.data import DataScreen
    from nlq_tui.screens.lab import LabScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        lab = app.screen
        assert isinstance(lab, LabScreen)
        assert lab.summary is not None
        await pilot.press("1")
        assert isinstance(app.screen, DataScreen)
        await pilot.press("2")
        assert app.screen is lab  # built once, state kept


async def test_a_screen_module_with_a_bug_is_reported_not_fatal(tree, tmp_path, monkeypatch):
    from nlq_tui import registry
    from nlq_tui.screens.data import DataScreen

    broken = tmp_path / "pkg"
    broken.mkdir()
    (broken / "broken_screen.py").write_text("import a_module_that_does_not_exist\n")
    monkeypatch.syspath_prepend(str(broken))
    monkeypatch.setitem(registry.SCREENS, "train", "broken_screen:TrainScreen")
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)
        assert any(
            "failed to load" in str(n.message) and "a_module_that_does_not_exist" in str(n.message)
            for n in app._notifications
        )


async def test_help_lists_the_keys_of_every_installed_screen(tree, tmp_path):
    from nlq_tui.screens.help import HelpScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = static_text(app.screen.query_one("#help-table"))
        for words in ("Quit", "^q", "Check every file", "Reset k, alpha", "1 Data", "2 Lab"):
            assert words in text, words
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_goes_to_a_screen_by_name(tree, tmp_path):
    from nlq_tui.screens.lab import LabScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"go to lab")
        from textual.command import CommandList

        for _ in range(100):  # the palette searches in the background
            await pilot.pause(0.05)
            hits = app.screen.query(CommandList)
            if hits and hits.first().option_count:
                break
        await pilot.press("down", "enter")
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)
        # every key of the screen is also a command by name
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Lab: Params", "Lab: Defaults", "Lab: Usable", "Help: all keys"} <= titles


async def test_the_palette_finds_another_screens_action_by_name_or_help_and_runs_it_there(tree, tmp_path):
    """From the Data screen: "new run" finds Train: New run, and "pick up" finds Review: Refresh
    by its help text (only the shown screen's keys were commands, matched by title alone)."""
    from textual.command import CommandList

    from nlq_tui.screens.train import TrainScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        async def hits(query: str) -> list[str]:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*query)
            found: list[str] = []
            for _ in range(100):  # the palette searches in the background
                await pilot.pause(0.05)
                lists = app.screen.query(CommandList)
                if lists and lists.first().option_count:
                    found = [str(o.prompt) for o in lists.first().options]
                    break
            return found

        assert any("Review: Refresh" in h for h in await hits("pick up"))
        await pilot.press("escape")
        await settle(pilot)
        found = await hits("new run")
        assert "Train: New run" in found[0]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TrainScreen)
        for _ in range(40):
            await pilot.pause(0.05)
            if app.screen.query_one("#train-tabs").active == "new-pane":
                break
        assert app.screen.query_one("#train-tabs").active == "new-pane"  # the action ran there


async def test_ctrl_q_quits(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


def test_without_data_flag_the_workspace_root_is_used(tree, tmp_path):
    from nlq_tui.app import NLQApp  # noqa: F401 - the shell imports

    ws = Workspace(tmp_path / "ws")
    ws.set("data_root", str(tree))
    ws.set("features", "egovlp_fp16")
    app = make_app(None, tmp_path / "ws")
    assert app.ctx.data_root == tree
    assert app.ctx.features == "egovlp_fp16"


def test_without_data_flag_or_setting_the_repo_sample_data_is_used(tmp_path):
    from nlq_tui.context import sample_data_root

    app = make_app(None, tmp_path / "ws")
    assert app.ctx.data_root == sample_data_root()  # None when this checkout has no sample_data/


STARTUP_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys, argparse
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    async def main():
        args = argparse.Namespace(data=sys.argv[1], workspace=sys.argv[2], screen="lab", reviewer=None)
        app = NLQApp(AppContext.from_args(args), "lab")
        async with app.run_test(size=(120, 35)) as pilot:
            for _ in range(5):
                await app.workers.wait_for_complete()
                await pilot.pause(0.05)
            loaded = app.ctx.index is not None and app.screen.summary is not None
        heavy = sorted(m for m in ("torch", "transformers", "openai") if m in sys.modules)
        print(json.dumps({"loaded": loaded, "heavy": heavy}))

    asyncio.run(main())
    """
)


def test_startup_and_the_lab_import_no_torch_transformers_or_openai(tree, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, str(tree), str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"loaded": True, "heavy": []}


async def test_keys_can_be_remapped_from_the_workspace(tree, tmp_path):
    from nlq_tui.screens.lab import LabScreen

    Workspace(tmp_path / "ws").set("keymap", {"app.screen.lab": "l"})
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)


def test_a_data_flag_naming_no_folder_is_an_error_before_the_app_opens(tmp_path):
    import argparse

    import pytest

    from engine.errors import UserError
    from nlq_tui.app import run

    args = argparse.Namespace(
        data=str(tmp_path / "nowhere"), workspace=str(tmp_path / "ws"), screen=None, reviewer=None
    )
    with pytest.raises(UserError, match="no such folder"):
        run(args)


async def test_a_number_key_from_help_closes_it_and_switches(tree, tmp_path):
    from nlq_tui.screens.data import DataScreen
    from nlq_tui.screens.lab import LabScreen

    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark", "2")
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)
        await pilot.press("1")
        assert isinstance(app.screen, DataScreen)  # not the help left behind on the Data screen


def test_every_screen_and_widget_takes_its_keys_from_bindings_py():
    """Keys are data in one place (remappable by id): no class writes its BINDINGS inline."""
    import ast

    inline = []
    for path in sorted((REPO / "nlq_tui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if any(isinstance(t, ast.Name) and t.id == "BINDINGS" for t in targets) and isinstance(
                    stmt.value, (ast.List, ast.Tuple, ast.ListComp)
                ):
                    inline.append(f"{path.relative_to(REPO)}:{stmt.lineno} {node.name}")
    assert not inline, f"BINDINGS written inline (move them to nlq_tui/bindings.py): {inline}"
