"""The Data screen: path validation as you type, loading, feature folders, bad roots."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, OptionList
from tui_helpers import make_app, settle, static_text, tree, tree_copy, tree_master  # noqa: F401 - fixtures

from engine.workspace import Workspace


async def _type_root(pilot, text: str, submit: bool = False) -> None:
    inp = pilot.app.screen.query_one("#root", Input)
    inp.focus()
    inp.value = ""
    await pilot.press(*text)
    if submit:
        await pilot.press("enter")
    await settle(pilot)


async def test_the_root_path_is_checked_as_it_is_typed(tree_copy, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    app = make_app(tree_copy, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        check = app.screen.query_one("#root-check")
        # paths relative to the current folder (tmp_path), as a user types them
        await _type_root(pilot, "nowhere")
        assert "no such folder" in static_text(check)
        await _type_root(pilot, "afile")
        assert "is a file" in static_text(check)
        await _type_root(pilot, "empty")
        assert "no ego4d.json here" in static_text(check)
        await _type_root(pilot, "data")
        assert "an Ego4D root" in static_text(check)


async def test_a_broken_root_shows_its_error_and_keeps_the_previous_data(tree, tree_copy, tmp_path):
    narration = tree_copy / "v1" / "annotations" / "narration.json"
    narration.write_bytes(narration.read_bytes()[: narration.stat().st_size // 2])  # truncated download
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        good_index = app.ctx.index
        assert good_index is not None
        await _type_root(pilot, "data", submit=True)  # the copy, relative to the current folder
        panel = app.screen.query_one("#load-error")
        assert panel.display
        text = static_text(panel)
        assert "narration.json" in text and "Not loaded" in text
        assert "still using" in text
        assert app.ctx.index is good_index
        assert app.ctx.data_root == tree.resolve()
        assert Workspace(tmp_path / "ws").get("data_root") == str(tree.resolve())
        # the Lab still works on the previous data
        await pilot.press("escape")
        app.screen.query_one("#features").focus()
        await pilot.press("2")
        await settle(pilot)
        assert app.screen.summary is not None


async def test_a_root_that_fails_to_load_says_so_under_its_path_and_in_the_table(tree_copy, tmp_path):
    """The quick check passes (the files are there) but the load fails: the hint no longer invites
    a load as if nothing happened, and with no data kept the table names the error."""
    narration = tree_copy / "v1" / "annotations" / "narration.json"
    narration.write_bytes(narration.read_bytes()[: narration.stat().st_size // 2])
    app = make_app(None, tmp_path / "ws")
    app.ctx.data_root = tree_copy  # what the last session used (a download since cut short)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.ctx.index is None
        assert "ends early" in static_text(app.screen.query_one("#load-error"))
        hint = static_text(app.screen.query_one("#root-check"))
        assert "not loaded" in hint and "press enter to load it" not in hint
        issues = app.screen.issues
        assert [(i.level, i.code) for i in issues] == [("error", "not_loaded")] and "ends early" in issues[0].message
        assert "1 error ·" in static_text(app.screen.query_one("#issues-title"))
        await _type_root(pilot, "data")  # typing again: the quick check's hint as before
        assert "an Ego4D root" in static_text(app.screen.query_one("#root-check"))


async def test_a_missing_root_at_start_up_is_shown_not_raised(tmp_path):
    app = make_app(None, tmp_path / "ws")
    app.ctx.data_root = tmp_path / "gone"
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        assert app.ctx.index is None
        assert "data root not found" in static_text(app.screen.query_one("#load-error"))


async def test_feature_folders_are_listed_with_dimension_and_coverage(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        options = app.screen.query_one("#features", OptionList)
        assert options.option_count == 1
        prompt = str(options.get_option_at_index(0).prompt)
        assert "egovlp_fp16" in prompt and "256-d" in prompt and "12/12 videos" in prompt


async def test_a_loaded_root_and_feature_folder_are_saved_to_the_workspace(tree, tree_copy, tmp_path):
    app = make_app(tree, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await _type_root(pilot, "data", submit=True)
        assert app.ctx.data_root == tree_copy.resolve()
    ws = Workspace(tmp_path / "ws")
    assert ws.get("data_root") == str(tree_copy.resolve())
    assert ws.get("features") == "egovlp_fp16"


def test_feature_dimension_is_read_without_torch(tree, tmp_path):
    from nlq_tui.screens.data import peek_feature_dim

    pt = next((tree / "v1" / "egovlp_fp16").glob("*.pt"))
    assert peek_feature_dim(pt) == 256
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a zip")
    assert peek_feature_dim(bogus) is None
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert peek_feature_dim(empty) is None


def test_feature_dimension_matches_torch_for_other_shapes(tmp_path):
    import torch

    from nlq_tui.screens.data import peek_feature_dim

    for shape in ((3, 1536), (70000, 2304), (1, 7)):
        p = Path(tmp_path / f"f{shape[1]}.pt")
        torch.save(torch.zeros(*shape, dtype=torch.float16), p)
        assert peek_feature_dim(p) == shape[1]
    p = tmp_path / "three_d.pt"
    torch.save(torch.zeros(2, 3, 4), p)
    assert peek_feature_dim(p) is None


async def test_the_folder_picker_fills_in_an_ego4d_root(tree_copy, tmp_path):
    from nlq_tui.screens.data import RootPicker

    app = make_app(tree_copy, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await _type_root(pilot, "")
        await pilot.press("escape", "o")
        await pilot.pause(0.3)
        picker = app.screen
        assert isinstance(picker, RootPicker) and picker.start == tmp_path.resolve()
        tree_widget = picker.query_one("#picker-tree")
        for _ in range(40):  # the tree lists the folder in a worker
            await pilot.pause(0.05)
            if tree_widget.root.children:
                break
        await pilot.press("backspace")  # up one folder, and back down by enter
        for _ in range(40):
            await pilot.pause(0.05)
            if tree_widget.root.children and tree_widget.root.data.path == tmp_path.resolve().parent:
                break
        assert tree_widget.path == tmp_path.resolve().parent
        here = next(n for n in tree_widget.root.children if n.data.path == tmp_path.resolve())
        tree_widget.move_cursor(here)
        await pilot.pause()
        await pilot.press("enter")  # a folder that is no Ego4D root: it opens
        for _ in range(40):
            await pilot.pause(0.05)
            if here.children:
                break
        data_node = next(n for n in here.children if n.data.path.name == "data")
        tree_widget.move_cursor(data_node)
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, RootPicker)
        assert app.screen.query_one("#root", Input).value == "data"


async def test_markup_and_escapes_in_paths_and_uids_are_shown_as_text(tmp_path, tree_master, monkeypatch):
    """A root path or a video uid with `[/]` once crashed the Data screen's notices."""
    import json
    import shutil

    from tui_helpers import static_text

    root = tmp_path / "da[/]ta [b]x\x1b]2;t\x07"
    shutil.copytree(tree_master, root)
    narr_path = root / "v1/annotations/narration.json"
    narr = json.loads(narr_path.read_text("utf-8"))
    narr["[/]evil\x1b[2J"] = {"narration_pass_1": {"narrations": [{"timestamp_sec": "soon", "narration_text": "x"}]}}
    narr_path.write_text(json.dumps(narr), "utf-8")
    monkeypatch.chdir(tmp_path)
    app = make_app(root, tmp_path / "ws")
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        panel = static_text(app.screen.query_one("#load-error"))
        assert "Not loaded:" in panel and "[/]evil" in panel and "\x1b" not in panel and "␛" in panel
        await _type_root(pilot, str(root))
        assert "\x1b" not in static_text(app.screen.query_one("#root-check"))
        app.screen.action_full_check()
        await settle(pilot)
        assert app.is_running
