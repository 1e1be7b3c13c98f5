import json
import os
import subprocess
import sys
import time

import pytest
from training_fixtures import THREADS_ENV, make_glove, make_sample, tiny_cli_args

from engine.runs import find_run, wait_for_state
from engine.workspace import Workspace, atomic_write_json


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    root = make_sample(base / "root")
    return root, make_glove(root, base / "glove.txt")


def nlq(*args, timeout=120):
    env = {**os.environ, **THREADS_ENV, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nlq_tui", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def wait_for(pred, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_train_json_waits_and_prints_the_best_figures_then_eval_reproduces_them(tmp_path, data):
    root, glove = data
    ws = tmp_path / "ws"
    p = nlq("train", "--workspace", str(ws), *tiny_cli_args(root, glove), "--epochs", "2", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["state"] == "done" and out["best"]["R1@0.3"] == out["R1@0.3"]
    assert set(out) >= {"run_id", "state", "R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5", "mIoU"}
    e = nlq("eval", "--workspace", str(ws), "--run", out["run_id"][-4:], "--json")
    assert e.returncode == 0, e.stderr
    ev = json.loads(e.stdout)
    assert ev["R1@0.3"] == pytest.approx(out["R1@0.3"]) and ev["mIoU"] == pytest.approx(out["mIoU"])
    assert json.loads(open(ev["predictions"]).read())["challenge"] == "ego4d_nlq_challenge"
    listed = json.loads(nlq("runs", "--workspace", str(ws), "--json").stdout)
    assert [(r["id"], r["stage"], r["state"]) for r in listed] == [(out["run_id"], "baseline", "done")]
    assert listed[0]["best_R1@0.3"] == out["R1@0.3"]


def test_detached_run_survives_its_launcher_stops_on_sigterm_with_last_pt_and_resumes(tmp_path, data):
    root, glove = data
    ws = tmp_path / "ws"
    p = nlq("train", "--workspace", str(ws), *tiny_cli_args(root, glove), "--epochs", "500", "--detach")
    assert p.returncode == 0, p.stderr
    run = find_run(ws, p.stdout.strip())
    # the launcher has exited; the run goes on in its own session
    wait_for(lambda: any("loss" in r for r in run.metrics()))
    st = run.status()
    assert st["state"] == "running" and st["pgid"] == st["pid"] != os.getpgrp()
    s = nlq("stop", "--workspace", str(ws), run.id, "--wait", "60")
    assert s.returncode == 0, s.stderr
    st = run.status()
    assert st["state"] == "stopped", run.log_tail()
    assert run.last_path.exists()
    import torch

    stopped_step = torch.load(run.last_path, weights_only=True)["step"]
    assert stopped_step >= max(x["step"] for x in run.metrics() if "loss" in x)

    r = nlq("train", "--workspace", str(ws), "--resume", run.id, "--detach")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: run.status().get("resume") and run.status()["state"] == "running" and run.status().get("pid"))
    wait_for(lambda: max((x["step"] for x in run.metrics() if "loss" in x), default=0) > stopped_step)
    steps = [x["step"] for x in run.metrics() if "loss" in x]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # continued, not restarted
    assert nlq("stop", "--workspace", str(ws), run.id, "--wait", "60").returncode == 0
    assert run.status()["state"] == "stopped"
    assert "resumed from" in run.log_path.read_text()


def test_runs_shows_a_run_whose_process_died_as_failed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    from engine.runs import create_run

    run = create_run(ws, {"stage": "pretrain", "train": {}})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    atomic_write_json(
        run.status_path, {"state": "running", "pid": dead.pid, "heartbeat": time.time(), "started": time.time()}
    )
    p = nlq("runs", "--workspace", str(ws.path))
    assert p.returncode == 0
    line = next(l for l in p.stdout.splitlines() if l.startswith(run.id))
    assert line.split()[1:3] == ["pretrain", "failed"]
    assert "ended without a final status" in p.stdout


def test_user_errors_are_one_line_and_exit_2(tmp_path, data):
    root, glove = data
    ws = str(tmp_path / "ws")
    cases = [
        (["train", "--workspace", ws, "--data", str(root), "--stage", "finetune"], "--from RUN"),
        (["train", "--workspace", ws, "--data", str(root), "--stage", "pretrain"], "--train-file"),
        (["train", "--workspace", ws, "--data", str(tmp_path), "--epochs", "1"], "not an Ego4D root"),
        (["train", "--workspace", ws, "--data", str(root), "--features", "nope"], "no such feature folder"),
        (["eval", "--workspace", ws, "--run", "zzzz"], "no run 'zzzz'"),
        (["stop", "--workspace", ws, "zzzz"], "no run 'zzzz'"),
    ]
    for argv, needle in cases:
        p = nlq(*argv)
        assert p.returncode == 2, (argv, p.stderr)
        assert p.stderr.startswith("nlq-tui: error:") and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not list(Workspace(ws).runs_dir.iterdir())  # no half-made run folders


def test_torchrun_with_two_processes_trains_with_ddp_and_one_writer(tmp_path, data):
    root, glove = data
    ws = tmp_path / "ws"
    p = nlq("train", "--workspace", str(ws), *tiny_cli_args(root, glove), "--epochs", "1", "--nproc", "2", "--detach")
    assert p.returncode == 0, p.stderr
    run = find_run(ws, p.stdout.strip())
    st = wait_for_state(run, timeout=120)
    assert st["state"] == "done", run.log_tail()
    log = run.log_path.read_text()
    evals = [r for r in run.metrics() if "split" in r]
    assert evals and log.count("eval step") == len(evals)  # rank 1 neither evaluates nor logs
    assert run.best_path.exists() and run.last_path.exists()
    # 2 ranks x batch 8 per step: half the steps of one process over the same queries
    n_train = int(log.split("nlq_train.json: ")[1].split()[0])
    assert st["total_steps"] == -(-(-(-n_train // 2)) // 8)  # noqa: B002 (ceil division twice)
