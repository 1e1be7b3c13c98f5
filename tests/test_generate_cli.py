"""`nlq-tui generate` as a user runs it: argument checks, the lock, progress without a terminal,
the dry run's text, and the detached job seen through --status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fake_llm_server import FakeLLMServer
from tui_helpers import tree, tree_master  # noqa: F401 - fixtures

from engine.generation import jobs
from engine.workspace import Workspace
from nlq_tui.cli import main

BAD = [
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "-3"], "--timeout"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "5"], "--temperature"),
    (["--concurrency", "0"], "--concurrency"),
    (["--max-tokens", "0"], "--max-tokens"),
    (["--max-retries", "-1"], "--max-retries"),
    (["--price-in", "inf"], "--price-in"),
    (["--max-response-bytes", "0"], "--max-response-bytes"),
    (["--groups", "0"], "--groups"),
    (["--stride", "0"], "--stride"),
    (["--alpha", "nan"], "--alpha"),
    (["--group-index", "-1"], "--group-index"),
    (["--backend", "openai", "--base-url", "http://[::1"], "--base-url"),
]


@pytest.mark.parametrize("argv, flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_numbers_and_urls_give_one_line_and_create_nothing(tree, tmp_path, capsys, argv, flag):
    code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and flag in err and "Traceback" not in err
    assert not (tmp_path / "ws").exists()


def test_a_generate_refused_by_the_lock_changes_nothing(tree, tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    ws.set("data_root", "/somewhere/else")
    before = (tmp_path / "ws" / "workspace.json").read_bytes()
    held = ws.acquire("candidates", "generation")
    try:
        code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--checks", "fast"])
    finally:
        held.release()
    err = capsys.readouterr().err
    assert code == 2 and "in use by pid" in err and err.count("\n") == 1
    assert (tmp_path / "ws" / "workspace.json").read_bytes() == before
    assert not list((tmp_path / "ws" / "candidates").iterdir())


def test_without_a_terminal_progress_is_a_plain_line_every_interval(tree, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jobs, "PROGRESS_LOG_S", 0.3)
    with FakeLLMServer(delay=0.1) as srv:
        code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--backend", "openai",
                     "--model", "fake", "--base-url", srv.base_url, "--concurrency", "1", "--groups", "15",
                     "--checks", "fast"])  # fmt: skip
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if " groups " in ln and "ETA" in ln]
    assert code == 0 and len(lines) >= 3 and "\r" not in err and "\x1b" not in err
    assert lines[-1].startswith("15/15 groups  100%")


def test_the_template_backends_estimate_says_it_is_free_without_token_wording(tree, tmp_path, capsys):
    code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--backend", "template",
                 "--dry-run"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "no LLM (built-in templates), free" in out and "completion tokens" not in out


def test_dry_run_prints_the_estimate_and_no_control_characters(tree, tmp_path, capsys):
    with FakeLLMServer(default="prose") as srv:
        code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--backend", "openai",
                     "--model", "fake", "--base-url", srv.base_url, "--price-in", "1", "--price-out", "2",
                     "--checks", "fast", "--dry-run"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "--- raw answer" in out and "estimate for the whole job:" in out and "$" in out
    assert not any(ord(c) < 32 and c not in "\n\t" for c in out)
    assert not list((tmp_path / "ws" / "candidates").glob("groups-*"))  # a dry run stores nothing


def test_detached_job_is_shown_by_status_and_stopped_by_stop(tree, tmp_path):
    ws = str(tmp_path / "ws")
    cli = [sys.executable, "-m", "nlq_tui.cli"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    with FakeLLMServer(delay=0.2) as srv:
        started = subprocess.run([*cli, "generate", "--workspace", ws, "--data", str(tree), "--backend", "openai",
                                  "--model", "fake", "--base-url", srv.base_url, "--concurrency", "1",
                                  "--checks", "fast", "--detach", "--json"],
                                 capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert started.returncode == 0, started.stderr
        pid = json.loads(started.stdout)["pid"]
        deadline = time.time() + 60
        while time.time() < deadline:
            st = json.loads(subprocess.run([*cli, "generate", "--workspace", ws, "--status", "--json"],
                                           capture_output=True, text=True, env=env).stdout)  # fmt: skip
            if (st.get("stats") or {}).get("groups_done", 0) >= 1:
                break
            time.sleep(0.2)
        assert st["state"] == "running" and st["pid"] == pid
        text = subprocess.run(
            [*cli, "generate", "--workspace", ws, "--status"], capture_output=True, text=True, env=env
        )
        assert f"generation job: running (pid {pid}" in text.stdout and " groups " in text.stdout
        stop = subprocess.run([*cli, "generate", "--workspace", ws, "--stop"], capture_output=True, text=True, env=env)
        assert stop.returncode == 0, stop.stderr
        st = jobs.wait_for_end(tmp_path / "ws", timeout=60)
    assert st["state"] == "cancelled"
    again = subprocess.run([*cli, "generate", "--workspace", ws, "--stop"], capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "nothing to stop" in again.stderr


def test_status_of_a_workspace_without_a_job_creates_nothing(tmp_path, capsys):
    assert main(["generate", "--workspace", str(tmp_path / "none"), "--status"]) == 0
    assert "no detached generation job" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()


def test_detach_without_the_key_it_needs_says_so_before_launching(tree, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--backend", "openai",
                 "--model", "m", "--base-url", "https://llm.example.com/v1", "--detach"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "OPENAI_API_KEY" in err and err.count("\n") == 1
    assert not (tmp_path / "ws" / "generation").exists()


def test_groups_whose_requests_failed_exit_3_so_scripts_run_it_again(tree, tmp_path, capsys):
    with FakeLLMServer(default="server_error") as srv:
        argv = ["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--backend", "openai",
                "--model", "fake", "--base-url", srv.base_url, "--max-retries", "0", "--groups", "3",
                "--checks", "fast"]  # fmt: skip
        assert main(argv) == 3
        assert main([*argv, "--dry-run"]) == 3
    err = capsys.readouterr().err
    assert "failed requests: server_error 3" in err
