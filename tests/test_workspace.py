import json
import subprocess
import sys

import pytest

from engine.errors import WorkspaceError
from engine.workspace import Workspace, atomic_write_json


def test_settings_persist_across_instances(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.set("data_root", "/data/ego4d")
    ws.set("features", "egovlp_fp16")
    again = Workspace(tmp_path / "ws")
    assert again.get("data_root") == "/data/ego4d"
    assert again.settings() == {"data_root": "/data/ego4d", "features": "egovlp_fp16"}
    for sub in ("candidates", "exports", "runs"):
        assert (tmp_path / "ws" / sub).is_dir()


def test_workspace_path_that_is_a_file_is_a_user_error(tmp_path):
    f = tmp_path / "ws"
    f.write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace(f)


def test_corrupt_workspace_json_names_the_file(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (ws.path / "workspace.json").write_text('{"settings": {"1": ')
    with pytest.raises(WorkspaceError, match="workspace.json: not valid JSON"):
        Workspace(tmp_path / "ws").get("x")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_second_process_cannot_take_a_held_writer_lock(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with ws.lock("candidates", "review"):
        code = (
            "import sys; from engine.workspace import Workspace\n"
            "from engine.errors import WorkspaceError\n"
            f"ws = Workspace({str(ws.path)!r})\n"
            "try:\n    ws.acquire('candidates')\nexcept WorkspaceError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3
        assert "in use by pid" in out.stdout and "review" in out.stdout
    # released: now it can be taken
    ws.acquire("candidates").release()


def test_concurrent_setters_lose_no_update(tmp_path):
    ws = Workspace(tmp_path / "ws")
    code = (
        "import sys; from engine.workspace import Workspace\n"
        f"ws = Workspace({str(ws.path)!r})\n"
        "for i in range(15): ws.set(f'{sys.argv[1]}{i}', i)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, p]) for p in "ab"]
    assert all(p.wait() == 0 for p in procs)
    settings = Workspace(ws.path).settings()
    assert len(settings) == 30


def test_existing_opens_without_creating_anything(tmp_path):
    with pytest.raises(WorkspaceError, match="no such workspace"):
        Workspace.existing(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    (tmp_path / "bare").mkdir()
    ws = Workspace.existing(tmp_path / "bare")
    assert ws.get("data_root") is None and list((tmp_path / "bare").iterdir()) == []


def test_wrong_types_in_workspace_json_read_as_unset_with_one_line_each(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (ws.path / "workspace.json").write_text(
        json.dumps(
            {"settings": {"1": {"data_root": 5, "features": "egovlp_fp16"}}, "prompts": [1, 2], "jobs": {"1": 3}}
        )
    )
    again = Workspace(ws.path)
    assert again.get("data_root") is None and again.get("features") == "egovlp_fp16"
    assert again.table("prompts").all() == [] and again.table("jobs").all() == []
    problems = again.all_problems()
    assert any("setting 'data_root' is not a str" in p for p in problems)
    assert any("table 'prompts' is not an object" in p for p in problems)
    assert any("records of 'jobs' with wrong types" in p for p in problems)
    (ws.path / "workspace.json").write_text("[" * 100_000)
    with pytest.raises(WorkspaceError, match="nested too deeply"):
        Workspace(ws.path).get("x")


def test_a_file_where_a_subfolder_should_be_is_named_not_a_crash(tmp_path):
    (tmp_path / "ws").mkdir()
    for sub in ("locks", "exports"):
        (tmp_path / "ws" / sub).write_text("x")
    ws = Workspace(tmp_path / "ws")
    assert len(ws.problems) == 2 and all("should be; move it aside" in p for p in ws.problems)
    with pytest.raises(WorkspaceError, match="locks: is not a folder"):
        ws.acquire("candidates")
    with pytest.raises(WorkspaceError, match="locks: is not a folder"):
        ws.set("x", 1)


def test_atomic_writes_take_the_umask_and_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import errno
    import os

    import engine.workspace as wsmod

    old = os.umask(0o027)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wsmod.tempfile, "mkstemp", full)
    with pytest.raises(WorkspaceError, match=r"^the disk holding .*b\.json is full"):
        atomic_write_json(tmp_path / "b.json", {"x": 1})


def test_a_lock_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    import builtins
    import errno

    ws = Workspace(tmp_path / "ws")
    real = builtins.open

    def read_only(path, *a, **k):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(path, *a, **k)

    monkeypatch.setattr(builtins, "open", read_only)
    with pytest.raises(
        WorkspaceError, match=r"cannot take the decisions lock \(Read-only file system\); it can only be read"
    ):
        ws.acquire("decisions")
