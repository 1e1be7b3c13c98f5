"""Detached generation jobs: a real child process, its status file, stop by identity, its environment."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from fake_llm_server import FakeLLMServer
from tui_helpers import tree, tree_master  # noqa: F401 - fixtures

from engine import proc
from engine.errors import ConfigError, WorkspaceError
from engine.generation import jobs
from engine.generation.jobs import JobSpec
from engine.store import CandidateStore
from engine.workspace import Workspace

KEY = "sk-test-SECRET-0123456789abcdef"


def _wait(pred, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _spec(tree, srv, **kw) -> JobSpec:
    return jobs.check_spec(JobSpec(data=str(tree), backend="openai", model="fake", base_urls=[srv.base_url],
                                   concurrency=1, checks="fast", **kw))  # fmt: skip


def _files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_detached_job_reports_progress_stops_on_request_and_releases_the_lock(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    env = dict(os.environ, OPENAI_API_KEY=KEY, OTHER_API_KEY="other-secret")
    with FakeLLMServer(delay=0.15) as srv:
        p = jobs.start_job(ws, _spec(tree, srv), env=env)
        try:
            st = _wait(lambda: (s := jobs.read_status(ws)) and (s.get("stats") or {}).get("groups_done", 0) >= 2 and s,
                       what="two groups done")  # fmt: skip
            assert (
                st["state"] == "running" and st["pid"] == p.pid and st["start_time"] == proc.process_start_time(p.pid)
            )
            # the child has the key its backend reads and no other
            environ = Path(f"/proc/{p.pid}/environ").read_bytes().split(b"\0")
            assert f"OPENAI_API_KEY={KEY}".encode() in environ
            assert not any(e.startswith(b"OTHER_API_KEY=") for e in environ)
            with pytest.raises(WorkspaceError, match="is running"):
                jobs.start_job(ws, _spec(tree, srv), env=env)  # one job per workspace
            assert jobs.stop_job(ws) == p.pid
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
    st = jobs.read_status(ws)
    assert st["state"] == "cancelled" and st["stats"]["groups_done"] >= 2
    assert len(CandidateStore(Workspace(tmp_path / "ws")).done_groups()) == st["stats"]["groups_done"]
    ws.acquire("candidates", "test").release()  # the lock went with the process
    assert KEY not in _files_text(tmp_path / "ws")  # settings are on disk, the key is not
    assert json.loads((tmp_path / "ws" / "generation" / "job.json").read_text())["api_key_env"] == "OPENAI_API_KEY"


def test_pause_flag_holds_the_job_and_clearing_it_lets_it_finish(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    with FakeLLMServer(delay=0.15) as srv:
        p = jobs.start_job(ws, _spec(tree, srv, groups=30), env=dict(os.environ))
        try:
            _wait(lambda: ((jobs.read_status(ws) or {}).get("stats") or {}).get("groups_done", 0) >= 1, what="a group")
            jobs.set_paused(ws, True)
            _wait(lambda: jobs.read_status(ws)["state"] == "paused", what="paused")
            n = srv.requests
            time.sleep(1.0)
            assert srv.requests - n <= 1  # at most the request in flight
            jobs.set_paused(ws, False)
            st = _wait(lambda: (s := jobs.read_status(ws))["state"] in jobs.END_STATES and s, what="the end")
        finally:
            p.wait(timeout=60)
    assert st["state"] == "done" and st["stats"]["groups_done"] == 30
    assert jobs.progress_parts(st["stats"], None)["pct"] == "100%"
    feed = jobs.FeedTail(tmp_path / "ws", start_back=1 << 30).read_new()
    groups = [ev for ev in feed if ev["type"] == "group"]
    assert 1 <= len(groups) <= 30 and groups[0]["candidates"][0]["query"].startswith("Where was the")
    log = (tmp_path / "ws" / "generation" / "generate.log").read_text()
    assert "30/30 groups" in log and "\x1b" not in log and "\r" not in log


def test_a_job_refused_by_the_lock_writes_nothing(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    held = ws.acquire("candidates", "generation")
    try:
        with pytest.raises(WorkspaceError, match="in use by pid"):
            jobs.start_job(ws, JobSpec(data=str(tree), checks="fast"))
    finally:
        held.release()
    assert not (tmp_path / "ws" / "generation").exists()


def test_stop_signals_only_the_recorded_process(tmp_path):
    ws = Workspace(tmp_path / "ws")
    folder = tmp_path / "ws" / "generation"
    folder.mkdir()
    me = proc.identity(os.getpid())
    cases = [
        ({**me, "start_time": me["start_time"] + 1}, "another process"),  # a reused pid
        ({**me, "host": "elsewhere.example"}, "runs on elsewhere.example"),
    ]
    for recorded, why in cases:
        (folder / "status.json").write_text(json.dumps({"state": "running", "heartbeat": time.time(), **recorded}))
        with pytest.raises(WorkspaceError, match=why):
            jobs.stop_job(ws)  # we are still alive: nothing was signalled
    # a reused pid, or a heartbeat in the future, reads as failed, not running
    (folder / "status.json").write_text(json.dumps({"state": "running", "heartbeat": time.time(), **cases[0][0]}))
    assert jobs.read_status(ws)["state"] == "failed"
    (folder / "status.json").write_text(json.dumps({"state": "running", "heartbeat": time.time() + 3600, **me}))
    st = jobs.read_status(ws)
    assert st["state"] == "failed" and "future" in st["error"]


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b"[" * 100_000, b'{"state": 7}'])
def test_a_damaged_status_file_reads_as_one_state(tmp_path, content):
    folder = tmp_path / "ws" / "generation"
    folder.mkdir(parents=True)
    (folder / "status.json").write_bytes(content)
    st = jobs.read_status(tmp_path / "ws")
    assert st is None or st["state"] == "failed"


@pytest.mark.parametrize(
    "field, value, flag",
    [("k", 0, "--k"), ("alpha", float("nan"), "--alpha"), ("groups", -1, "--groups"), ("timeout", 0.0, "--timeout"),
     ("temperature", float("nan"), "--temperature"), ("concurrency", 0, "--concurrency"),
     ("base_urls", ["http://[::1"], "--base-url"), ("checks", "slow", "--checks")],
)  # fmt: skip
def test_spec_checks_name_the_flag(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        jobs.check_spec(JobSpec(**{field: value}))


def test_child_env_drops_every_llm_key_but_the_one_its_backend_reads():
    env = {"PATH": "/bin", "OPENAI_API_KEY": "a", "MY_KEY": "b", "ANTHROPIC_API_KEY": "c"}
    assert jobs.child_env(JobSpec(backend="template"), env).keys() >= {"PATH"}
    assert not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"} & jobs.child_env(JobSpec(backend="template"), env).keys()
    got = jobs.child_env(JobSpec(backend="openai", api_key_env="MY_KEY"), env)
    assert got["MY_KEY"] == "b" and "OPENAI_API_KEY" not in got and "ANTHROPIC_API_KEY" not in got
