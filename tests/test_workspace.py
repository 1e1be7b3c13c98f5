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
