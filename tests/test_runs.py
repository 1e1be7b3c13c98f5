import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

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


def test_create_run_makes_the_folder_layout_and_no_index_besides_it(ws):
    run = create_run(ws, {"stage": "baseline", "train": {"epochs": 1}})
    assert re.fullmatch(r"\d{8}-\d{6}-baseline-[0-9a-f]{4}", run.id)
    assert run.checkpoints_dir.is_dir() and run.predictions_dir.is_dir()
    cfg = json.loads(run.config_path.read_text())
    assert cfg["id"] == run.id and cfg["stage"] == "baseline" and cfg["train"] == {"epochs": 1}
    # the folder is the only record: workspace.json holds no "runs" table to drift from it
    db = ws.path / "workspace.json"
    assert not db.exists() or "runs" not in json.loads(db.read_text() or "{}")
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


# ------------------------------------------------------------------------------------------------
# identity: stop and delete signal only the very process the status names


def _sleeper(env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True, env=env)


def _status_for(proc: subprocess.Popen, **extra) -> dict:
    from engine.proc import identity

    return {"state": "running", "heartbeat": time.time(), "pgid": proc.pid, **identity(proc.pid), **extra}


def test_stop_signals_the_recorded_process_and_nothing_on_another_host_or_a_reused_pid(ws):
    proc = _sleeper()
    try:
        run = create_run(ws, {"stage": "baseline"})
        # another host (a workspace on a shared filesystem): reported, not signalled
        atomic_write_json(run.status_path, _status_for(proc, host="gpu-box-7"))
        with pytest.raises(WorkspaceError, match="runs on gpu-box-7; stop it there"):
            stop_run(run)
        with pytest.raises(WorkspaceError, match="runs on gpu-box-7"):
            from engine.runs import delete_run

            delete_run(run)
        assert run.path.is_dir()
        # a reused pid: the live process is not the one that started at the recorded time
        atomic_write_json(run.status_path, _status_for(proc, start_time=_status_for(proc)["start_time"] - 1))
        st = run.status()
        assert st["state"] == "failed" and "another process" in st["error"]
        with pytest.raises(WorkspaceError, match="not running"):
            stop_run(run)
        # recorded before this machine restarted: whatever has the pid now is not the run
        atomic_write_json(run.status_path, _status_for(proc, boot_id="a-boot-before-this-one"))
        assert run.status()["state"] == "failed"
        with pytest.raises(WorkspaceError, match="not running"):
            stop_run(run)
        # a status without a recorded start time names no process that can be told apart
        atomic_write_json(run.status_path, {**_status_for(proc), "start_time": None})
        with pytest.raises(WorkspaceError, match="no start time"):
            stop_run(run)
        time.sleep(0.2)
        assert proc.poll() is None  # every refusal above left the process alone
        # the recorded identity: signalled, the group with it
        atomic_write_json(run.status_path, _status_for(proc))
        assert stop_run(run) == proc.pid
        assert proc.wait(timeout=10) == -15
    finally:
        proc.kill()
        proc.wait()


def test_a_heartbeat_in_the_future_is_stale_and_nothing_is_signalled(ws):
    proc = _sleeper()
    try:
        run = create_run(ws, {"stage": "baseline"})
        atomic_write_json(run.status_path, _status_for(proc, heartbeat=time.time() + 3600))
        st = run.status()
        assert st["state"] == "failed" and "in the future" in st["error"]
        with pytest.raises(WorkspaceError, match="not running"):
            stop_run(run)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_the_status_writer_records_the_identity_stop_checks(ws):
    from engine.proc import process_start_time, same_process

    run = create_run(ws, {"stage": "baseline"})
    writer = StatusWriter(run, interval=10)
    writer.start()
    try:
        raw = run.raw_status()
        assert raw["start_time"] == process_start_time(os.getpid()) and raw["host"]
        assert same_process(raw) == (True, "")
    finally:
        writer.finish("stopped")


def test_a_detached_run_gets_no_llm_key_in_its_environment(ws, monkeypatch):
    from engine.runs import launch

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-secret-2")
    monkeypatch.setenv("MY_LLM_TOKEN", "sk-test-secret-3")  # named with --api-key-env
    monkeypatch.setenv("NLQ_KEEP_ME", "visible")
    run = create_run(ws, {"stage": "baseline"})
    # a stand-in for `python -m engine.training` that waits, so its /proc/PID/environ can be read
    monkeypatch.setattr(
        "engine.runs.entry_command", lambda run, **kw: [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    proc = launch(run, secret_env=["MY_LLM_TOKEN"])
    try:
        deadline = time.time() + 10
        environ = b""
        while time.time() < deadline and b"NLQ_RUN_DETACHED" not in environ:
            environ = open(f"/proc/{proc.pid}/environ", "rb").read()
            time.sleep(0.05)
        names = {item.split(b"=", 1)[0] for item in environ.split(b"\0") if item}
        assert b"NLQ_KEEP_ME" in names and b"NLQ_RUN_DETACHED" in names
        assert not {b"OPENAI_API_KEY", b"ANTHROPIC_API_KEY", b"MY_LLM_TOKEN"} & names
        assert b"sk-test-secret" not in environ
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------------------------------------
# damaged folders and full disks


def test_deep_nesting_or_a_folder_as_status_json_reads_as_a_failed_run(ws):
    from engine.runs import RunIndex

    deep = create_run(ws, {"stage": "baseline"})
    deep.status_path.write_text("[" * 100_000 + "]" * 100_000)
    wrong = create_run(ws, {"stage": "baseline"})
    wrong.status_path.write_text(json.dumps({"state": {"a": [[[1]]]}, "pid": {"x": 1}, "heartbeat": [1]}))
    folder = create_run(ws, {"stage": "baseline", "created": time.time() - 300})
    folder.status_path.mkdir()
    nested_cfg = create_run(ws, {"stage": "baseline"})
    nested_cfg.config_path.write_text('{"stage": ' + "[" * 50_000 + "]" * 50_000 + "}")
    summaries = {s["id"]: s for s in RunIndex(ws).summaries()}
    assert {s["state"] for s in summaries.values()} == {"failed"}
    assert "unknown state of type dict" in summaries[wrong.id]["error"]
    assert summaries[nested_cfg.id]["stage"] == "?"
    for run in (deep, wrong, folder):
        up = RunTail(run).poll()
        assert up.status["state"] == "failed" and not up.gone


def test_a_file_where_runs_should_be_gives_one_line_and_runs_still_lists(tmp_path):
    ws = Workspace(tmp_path / "ws")
    import shutil

    shutil.rmtree(ws.runs_dir)
    ws.runs_dir.write_text("not a folder")
    from engine.runs import runs_problem

    assert "is a file, not the runs folder" in runs_problem(ws)
    assert list_runs(ws) == []
    with pytest.raises(WorkspaceError, match="is a file, not the runs folder"):
        create_run(ws, {"stage": "baseline"})
    p = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "runs", "--workspace", str(ws.path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert p.returncode == 2 and "is a file, not the runs folder" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "is a file, not a workspace folder" in runs_problem(ws.runs_dir)  # --workspace naming a file


@pytest.mark.parametrize("code, words", [(28, "full"), (5, "I/O error|EIO")])
def test_a_full_or_failing_disk_leaves_no_orphan_run_folder(ws, monkeypatch, code, words):
    import engine.workspace

    def refuse(fd):  # the disk gives up when config.json's bytes are flushed to it
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(engine.workspace.os, "fsync", refuse)
    with pytest.raises(WorkspaceError, match=f"the disk holding .*({words})") as err:
        create_run(ws, {"stage": "baseline"})
    assert str(ws.runs_dir) in str(err.value) and "\n" not in str(err.value)
    assert list(ws.runs_dir.iterdir()) == []


def test_runs_in_an_empty_folder_creates_no_workspace(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "runs"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert p.returncode == 0, p.stderr
    assert "no runs in" in p.stdout
    assert list(tmp_path.iterdir()) == []


def test_resume_is_refused_for_a_done_or_running_run_and_one_without_last_pt(ws):
    from engine.errors import ConfigError
    from engine.runs import check_resumable

    run = create_run(ws, {"stage": "baseline"})
    run.last_path.write_bytes(b"x")
    atomic_write_json(run.status_path, {"state": "done", "pid": None, "heartbeat": time.time()})
    with pytest.raises(ConfigError, match="the run is done"):
        check_resumable(run)
    atomic_write_json(run.status_path, {"state": "stopped", "pid": None, "heartbeat": time.time()})
    assert check_resumable(run)["state"] == "stopped"
    run.last_path.unlink()
    with pytest.raises(ConfigError, match="no checkpoint to resume from"):
        check_resumable(run)


def test_the_cli_refuses_to_resume_a_done_run_and_to_stop_another_hosts_run(ws):

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = create_run(ws, {"stage": "baseline", "train": {}}, run_id="20260101-000000-baseline-aaaa")
    done.last_path.write_bytes(b"x")
    atomic_write_json(done.status_path, {"state": "done", "pid": None, "heartbeat": time.time()})
    sleeper = _sleeper()
    try:
        remote = create_run(ws, {"stage": "baseline", "train": {}}, run_id="20260101-000001-baseline-bbbb")
        atomic_write_json(remote.status_path, _status_for(sleeper, host="gpu-box-7"))
        for args, line in (
            (["train", "--resume", "aaaa"], "the run is done; resume continues a stopped or failed run"),
            (["stop", "bbbb"], "runs on gpu-box-7; stop it there"),
        ):
            p = subprocess.run(
                [sys.executable, "-m", "nlq_tui", *args, "--workspace", str(ws.path)],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            assert p.returncode == 2 and line in p.stderr, (args, p.stderr)
            assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        assert sleeper.poll() is None
        assert done.raw_status()["state"] == "done"
    finally:
        sleeper.kill()
        sleeper.wait()
