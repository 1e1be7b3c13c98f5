import json
import os
import re
import subprocess
import sys
import time

import pytest

from engine.errors import WorkspaceError
from engine.runs import (
    RunTail,
    StatusWriter,
    create_run,
    effective_status,
    find_run,
    list_runs,
    stop_run,
)
from engine.workspace import Workspace, atomic_write_bytes, atomic_write_json


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def test_create_run_makes_the_folder_layout_and_records_it(ws):
    run = create_run(ws, {"stage": "baseline", "train": {"epochs": 1}})
    assert re.fullmatch(r"\d{8}-\d{6}-baseline-[0-9a-f]{4}", run.id)
    assert run.checkpoints_dir.is_dir() and run.predictions_dir.is_dir()
    cfg = json.loads(run.config_path.read_text())
    assert cfg["id"] == run.id and cfg["stage"] == "baseline" and cfg["train"] == {"epochs": 1}
    assert [r["id"] for r in ws.table("runs").all()] == [run.id]
    assert [r.id for r in list_runs(ws)] == [run.id]


def test_tail_reads_only_new_rows_and_waits_for_a_half_written_line(ws):
    run = create_run(ws, {"stage": "baseline"})
    tail = RunTail(run)
    assert tail.read_new() == ([], False)
    run.append_metrics({"step": 1, "loss": 2.0})
    with open(run.metrics_path, "ab") as f:
        f.write(b'{"step": 2, "lo')  # a writer caught mid-line
    rows, reset = tail.read_new()
    assert rows == [{"step": 1, "loss": 2.0}] and not reset
    with open(run.metrics_path, "ab") as f:
        f.write(b'ss": 1.5}\n')
    run.append_metrics({"split": "val", "step": 2, "R1@0.3": 10.0})
    rows, reset = tail.read_new()
    assert rows == [{"step": 2, "loss": 1.5}, {"split": "val", "step": 2, "R1@0.3": 10.0}]
    assert tail.read_new() == ([], False)


def test_tail_restarts_when_metrics_file_is_replaced_and_skips_garbage(ws):
    run = create_run(ws, {"stage": "baseline"})
    tail = RunTail(run)
    for i in range(3):
        run.append_metrics({"step": i})
    assert len(tail.read_new()[0]) == 3
    # a resume after a crash rewrites the file without the rows past the checkpoint
    atomic_write_bytes(run.metrics_path, b'{"step": 0}\nnot json\n[1, 2]\n')
    rows, reset = tail.read_new()
    assert reset and rows == [{"step": 0}]
    assert tail.bad_lines == 2


def test_tail_survives_missing_status_and_a_deleted_run_folder(ws):
    run = create_run(ws, {"stage": "baseline", "created": time.time() - 300})
    run.append_metrics({"step": 1})
    tail = RunTail(run)
    up = tail.poll()
    assert up.rows == [{"step": 1}] and up.status["state"] == "failed" and "missing" in up.status["error"]
    run.status_path.write_text('{"state": "runn')  # torn by something other than our atomic writer
    assert tail.poll().status["state"] == "failed"
    import shutil

    shutil.rmtree(run.path)
    up = tail.poll()
    assert up.gone and up.reset and up.rows == []
    assert run.log_tail() == []


def test_running_run_with_a_dead_process_shows_failed(ws):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    st = effective_status({"state": "running", "pid": proc.pid, "heartbeat": time.time()})
    assert st["state"] == "failed" and str(proc.pid) in st["error"]


def test_running_run_with_a_stale_heartbeat_shows_failed():
    now = time.time()
    fresh = {"state": "running", "pid": os.getpid(), "heartbeat": now - 1}
    assert effective_status(fresh, now)["state"] == "running"
    stale = {"state": "running", "pid": None, "heartbeat": now - 300}
    st = effective_status(stale, now)
    assert st["state"] == "failed" and "heartbeat" in st["error"]
    # another machine's run (shared filesystem): only the heartbeat can tell
    remote = {"state": "running", "pid": 1, "host": "elsewhere", "heartbeat": now - 300}
    assert effective_status(remote, now)["state"] == "failed"


def test_status_writer_beats_and_finishes(ws):
    run = create_run(ws, {"stage": "baseline"})
    writer = StatusWriter(run, interval=0.05)
    writer.start(total_steps=10)
    first = run.raw_status()["heartbeat"]
    time.sleep(0.3)
    st = run.raw_status()
    assert st["state"] == "running" and st["pid"] == os.getpid() and st["heartbeat"] > first
    writer.finish("done", best={"R1@0.3": 12.5})
    time.sleep(0.15)
    st = run.raw_status()
    assert st["state"] == "done" and st["ended"] >= st["started"] and st["error"] is None
    summary = run.summary()
    assert summary["state"] == "done" and summary["best_R1@0.3"] == 12.5 and summary["elapsed_s"] >= 0.3


def test_stop_refuses_a_run_that_is_not_running(ws):
    run = create_run(ws, {"stage": "baseline"})
    atomic_write_json(run.status_path, {"state": "done", "pid": 123, "heartbeat": time.time()})
    with pytest.raises(WorkspaceError, match="not running"):
        stop_run(run)


def test_find_run_by_id_prefix_suffix_and_path(ws):
    a = create_run(ws, {"stage": "baseline"}, run_id="20260101-000000-baseline-aaaa")
    b = create_run(ws, {"stage": "pretrain"}, run_id="20260101-000001-pretrain-bbbb")
    assert find_run(ws, a.id).id == a.id
    assert find_run(ws, "bbbb").id == b.id
    assert find_run(ws, "latest").id == b.id
    assert find_run(ws, str(a.path)).id == a.id
    with pytest.raises(WorkspaceError, match="matches 2 runs"):
        find_run(ws, "20260101")
    with pytest.raises(WorkspaceError, match="no run"):
        find_run(ws, "zzzz")
    assert find_run(ws, "pretrain").id == b.id  # any unique part of the id, as --help says


def test_a_run_created_a_moment_ago_without_status_is_starting_not_failed(ws):
    run = create_run(ws, {"stage": "baseline"})
    st = run.status()
    assert st["state"] == "running" and st["starting"]
    old = create_run(ws, {"stage": "baseline", "created": time.time() - 300})
    assert old.status()["state"] == "failed"


@pytest.mark.parametrize("pid", ["1234", [1, 2], True])
def test_status_fields_of_the_wrong_type_read_as_missing(pid):
    st = effective_status({"state": "running", "pid": pid, "pgid": "x", "heartbeat": "yesterday", "error": ["?"]})
    assert st["state"] == "failed" and "no heartbeat" in st["error"]
    assert st["pid"] is None and st["pgid"] is None and st["heartbeat"] is None
    nan_beat = effective_status({"state": "running", "pid": None, "heartbeat": float("nan")})
    assert nan_beat["state"] == "failed"
    # a whole number too big for kill(2) is no live process either
    assert effective_status({"state": "running", "pid": 10**30, "heartbeat": time.time()})["state"] == "failed"


def test_runs_json_lists_a_damaged_run_as_failed_instead_of_crashing(ws):
    run = create_run(ws, {"stage": "baseline", "train": {}})
    atomic_write_json(
        run.status_path,
        {
            "state": "running",
            "pid": "4242",
            "pgid": [1],
            "heartbeat": "garbage",
            "started": "noon",
            "ended": {},
            "step": "7",
            "best": {"R1@0.3": "high"},
        },
    )
    other = create_run(ws, {"stage": ["baseline"], "created": "today", "train": {}})
    atomic_write_json(other.status_path, {"state": "done", "pid": [4242], "heartbeat": None, "best": {"R1@0.3": "x"}})
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for extra in (["--json"], []):  # the text listing formats the same fields
        p = subprocess.run(
            [sys.executable, "-m", "nlq_tui", "runs", "--workspace", str(ws.path), *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert p.returncode == 0, p.stderr
    listed = {
        r["id"]: r
        for r in json.loads(
            subprocess.run(
                [sys.executable, "-m", "nlq_tui", "runs", "--workspace", str(ws.path), "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            ).stdout
        )
    }
    assert set(listed) == {run.id, other.id}
    damaged = listed[run.id]
    assert damaged["state"] == "failed" and "no heartbeat" in damaged["error"]
    assert "status.json has an unreadable pid, pgid, heartbeat, started, ended" in damaged["error"]
    assert damaged["pid"] is None and damaged["step"] is None and damaged["elapsed_s"] is None
    assert damaged["best_R1@0.3"] is None
    assert listed[other.id]["state"] == "done" and listed[other.id]["stage"] == "?"
