"""Fixtures and helpers shared by the TUI tests (test_tui_*.py, test_snapshots.py).

The trees are written by the real sample generator with a fixed seed, so what the screens
show is the same on every run (the snapshot tests depend on it).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

TREE_VIDEOS = 12
TREE_SEED = 7


def _write_tree(path: Path) -> Path:
    from engine.sample import write_sample

    write_sample(path, videos=TREE_VIDEOS, features=True, seed=TREE_SEED)
    return path


@pytest.fixture(scope="session")
def tree_master(tmp_path_factory) -> Path:
    """A small Ego4D tree, written once per session; copy it before changing it."""
    return _write_tree(tmp_path_factory.mktemp("tree") / "data")


@pytest.fixture
def tree(tree_master, monkeypatch) -> Path:
    """The session tree (do not change it), with the current folder its parent, so the app
    shows the root as `data`, the same on every machine."""
    monkeypatch.chdir(tree_master.parent)
    return tree_master


@pytest.fixture
def tree_copy(tree_master, tmp_path, monkeypatch) -> Path:
    """A private copy of the tree at `<tmp>/data` for tests that damage it."""
    root = tmp_path / "data"
    shutil.copytree(tree_master, root)
    monkeypatch.chdir(tmp_path)
    return root


def make_app(root: Path | None, workspace: Path, screen: str | None = None, load: bool = True):
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    args = argparse.Namespace(
        data=str(root) if root else None, workspace=str(workspace), screen=screen, reviewer="tester"
    )
    return NLQApp(AppContext.from_args(args), screen, load_on_start=load)


async def settle(pilot, rounds: int = 3) -> None:
    """Let workers finish and their results reach the screen, including the start-up load,
    whose worker starts only after the first paint. A worker that a newer one replaced
    (exclusive groups) ends cancelled; that is expected here."""
    from textual.worker import WorkerCancelled

    quiet = 0
    for _ in range(200):  # at most ~10 s
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause(0.05)
        busy = any(not w.is_finished for w in pilot.app.workers) or getattr(pilot.app, "load_pending", False)
        quiet = 0 if busy else quiet + 1
        if quiet >= rounds:  # no worker for a few frames: results have reached the screen
            break
    await pilot.pause()


def static_text(widget) -> str:
    """The plain text a Static shows (markup strings and Rich renderables such as tables)."""
    from rich.console import Console
    from rich.text import Text

    content = widget.content
    if isinstance(content, str):
        content = Text.from_markup(content)
    console = Console(width=200, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(content)
    return console.export_text()
