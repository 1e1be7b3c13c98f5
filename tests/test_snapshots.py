"""SVG snapshots of the Data and Lab screens (pytest-textual-snapshot).

The tree is hand-written here (not the sample generator), so the pictures change only when
the screens do. Nothing machine-dependent is on screen: the root shows as `data` (relative
to the current folder) and the Lab's compute time is blanked before the picture.
Regenerate after an intended change: `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from ego4d_fixtures import video, write_tree
from tui_helpers import make_app, settle

ACTIONS = [
    "picks up the knife from the counter",
    "cuts the onion on the board",
    "puts the knife in the sink",
    "opens the tap",
    "washes the plate",
    "dries the plate with a towel",
    "opens the fridge",
    "takes out a bottle of milk",
    "pours milk into the cup",
    "closes the fridge",
]


def _narrations(n: int, start: float, gap: float, unsure_every: int = 0, dup_at: int = -1) -> list[tuple[float, str]]:
    out = []
    for i in range(n):
        t = round(start + i * gap + (0.7 if i % 3 == 1 else 0.0), 2)
        text = f"#C C {ACTIONS[i % len(ACTIONS)]}"
        if unsure_every and i % unsure_every == unsure_every - 1:
            text += " #unsure"
        out.append((t, text))
    if dup_at >= 0:
        out.insert(dup_at + 1, (out[dup_at][0], "#O man X hands C a spoon"))
    return out


@pytest.fixture
def snap_tree(tmp_path, monkeypatch):
    root = write_tree(
        tmp_path / "data",
        videos=[
            video("kitchen-01", clips=[(0.0, 90.0)], pass1=_narrations(28, 1.0, 3.0, unsure_every=7, dup_at=10)),
            video(
                "garage-02",
                clips=[(0.0, 40.0), (45.0, 120.0)],
                pass1=_narrations(30, 2.0, 3.9),
                pass2=_narrations(10, 5.0, 9.0),
            ),
            video("garden-03", clips=[(0.0, 60.0)], split="val"),
            video("office-04", clips=[], pass1=_narrations(6, 1.0, 2.0)),
        ],
        features="empty",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))
    return root


def _app(root, tmp_path, screen):
    return make_app(root, tmp_path / "ws", screen)


async def _ready(pilot) -> None:
    await settle(pilot)
    screen = pilot.app.screen
    if screen.query("#lab-state"):
        screen.query_one("#lab-state").update("")  # the compute time differs run to run
    await pilot.pause()


def test_data_screen(snap_compare, snap_tree, tmp_path):
    assert snap_compare(_app(snap_tree, tmp_path, "data"), terminal_size=(120, 35), run_before=_ready)


def test_lab_screen(snap_compare, snap_tree, tmp_path):
    assert snap_compare(_app(snap_tree, tmp_path, "lab"), terminal_size=(120, 35), run_before=_ready)


def test_lab_screen_at_80x24(snap_compare, snap_tree, tmp_path):
    assert snap_compare(_app(snap_tree, tmp_path, "lab"), terminal_size=(80, 24), run_before=_ready)


def test_lab_group_view(snap_compare, snap_tree, tmp_path):
    async def open_group(pilot):
        await _ready(pilot)
        await pilot.press("down", "down", "enter")
        await pilot.pause()

    assert snap_compare(_app(snap_tree, tmp_path, "lab"), terminal_size=(120, 35), run_before=open_group)
