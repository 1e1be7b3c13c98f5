"""Group selection, the `nlq-tui generate` command, and resuming after SIGKILL (real subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ego4d_fixtures import video, write_tree
from fake_llm_server import FakeLLMServer

from engine.ego4d import load_index
from engine.generation.pipeline import GenerationJob, GroupReader, select_groups, tile_groups
from engine.generation.template import TemplateBackend
from engine.store import CandidateStore
from engine.windows import WindowParams, compute
from engine.workspace import Workspace

NLQ_TUI = [sys.executable, "-m", "nlq_tui"]
VERBS = ["picks up the knife from the table", "cuts the onion with the knife", "puts the knife in the drawer",
         "opens the fridge", "washes the plate in the sink", "takes the cup from the shelf",
         "pours water into the cup", "drops the spoon on the counter", "folds the towel"]  # fmt: skip


def tree(tmp_path, videos_n=3, narrations=40, clips=None):
    vids = [
        video(f"vid-{i}", clips=clips or [(0.0, 2.0 * narrations + 10)],
              pass1=[(1.0 + 2 * j, f"#C C {VERBS[(i + 2 * j) % len(VERBS)]}") for j in range(narrations)])
        for i in range(videos_n)
    ]  # fmt: skip
    vids.append(
        video(
            "vid-test",
            split="test",
            clips=[(0.0, 100.0)],
            pass1=[(1.0 + 2 * j, "#C C opens the fridge") for j in range(20)],
        )
    )
    return write_tree(tmp_path / "data", videos=vids, features="empty")


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("OPENAI_API_KEY", None)
    return env


# ------------------------------------------------------------------------------ choosing groups


def test_default_tiling_gives_each_narration_of_a_clip_one_group(tmp_path):
    # two clips: narrations 0-16 in the first, 17-39 in the second
    index = load_index(tree(tmp_path, videos_n=1, clips=[(0.0, 34.0), (34.5, 90.0)]), use_cache=False)
    res = compute(index, WindowParams(k=5))
    tiled = tile_groups(res)
    rows = res.group_row[tiled]
    assert np.all(np.diff(rows) >= 5)  # no overlap
    covered = np.concatenate([np.arange(r, r + 5) for r in rows])
    assert len(covered) == len(set(covered.tolist()))
    # a clip boundary does not put the rest of the video out of step: 3 groups in the
    # first clip (rows 0-14), then the second clip's groups start at its first narration
    assert rows.tolist()[:4] == [0, 5, 10, 17]
    assert len(tile_groups(res, stride=1)) == res.n_groups


def test_sampling_is_repeatable_capped_per_video_and_never_uses_val_or_test(tmp_path):
    index = load_index(tree(tmp_path), use_cache=False)
    res = compute(index, WindowParams(k=5))
    a = select_groups(res, n=7, seed=3)
    assert np.array_equal(a, select_groups(res, n=7, seed=3)) and len(a) == 7
    assert not np.array_equal(a, select_groups(res, n=7, seed=4))
    capped = select_groups(res, per_video=2)
    assert np.bincount(res.group_video[capped]).max() == 2
    every = select_groups(res)
    assert not index.excluded[res.group_video[every]].any()
    keys = GroupReader(res).keys(every)
    assert len(set(keys)) == len(keys) and not any(k.startswith("vid-test/") for k in keys)


def test_group_reader_gives_windows_clipped_to_the_clip_and_relative_times(tmp_path):
    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    res = compute(index, WindowParams(k=5))
    gd = GroupReader(res).read(np.array([0]))[0]
    assert gd.texts[0].startswith("#C C") and len(gd.uids) == 5 and gd.clip_start == 0.0
    assert all(s <= t <= e for s, t, e in zip(gd.starts, gd.times, gd.ends))


# ------------------------------------------------------------------------------ the command


def test_generate_command_json_summary_and_second_run_skips_everything(tmp_path):
    root = tree(tmp_path)
    ws = tmp_path / "ws"
    cmd = NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(ws), "--checks", "fast", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.strip().splitlines()[-1])
    for key in (
        "groups_done",
        "requests",
        "questions_valid",
        "questions_rejected",
        "failed_requests",
        "tokens",
        "seconds",
    ):
        assert key in first
    assert first["groups_done"] == 24 and first["failed_requests"] == 0 and first["backend"] == "template"
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
    second = json.loads(out.stdout.strip().splitlines()[-1])
    assert second["groups_done"] == 0 and second["groups_skipped"] == 24 and second["requests"] == 0


def test_dry_run_prints_messages_answer_and_validation_and_stores_nothing(tmp_path):
    root = tree(tmp_path, videos_n=1)
    ws = tmp_path / "ws"
    out = subprocess.run(NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(ws), "--dry-run", "--group-index", "2"],
                         capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "--- system ---" in out.stdout and "\n1. #C C" in out.stdout and "--- validation ---" in out.stdout
    assert "/k5/10" in out.stdout.splitlines()[0]  # the third tiled group starts at narration 10
    assert not list((ws / "candidates").glob("groups-*.jsonl"))


def test_refused_api_key_stops_the_run_with_one_line_and_exit_2(tmp_path):
    root = tree(tmp_path, videos_n=2)
    with FakeLLMServer(default="unauthorized") as srv:
        out = subprocess.run(NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(tmp_path / "ws"),
                                        "--backend", "openai", "--model", "m", "--base-url", srv.base_url,
                                        "--concurrency", "2", "--json"],
                             capture_output=True, text=True, env=_env(), timeout=120)  # fmt: skip
        assert srv.requests <= 3  # stopped at once, not 16 refused requests
    assert out.returncode == 2 and "refused the API key" in out.stderr and out.stderr.count("\n") == 1
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["state"] == "failed" and summary["failures"] == {"auth": summary["failed_requests"]}


def test_bad_settings_exit_2_with_one_line(tmp_path):
    root = tree(tmp_path, videos_n=1)
    env = _env()
    out = subprocess.run(NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(tmp_path / "ws"),
                                    "--backend", "openai", "--model", "m", "--base-url", "https://api.example.com/v1"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "OPENAI_API_KEY" in out.stderr
    out = subprocess.run(NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(tmp_path / "ws"),
                                    "--backend", "openai"], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "--model" in out.stderr


def test_template_run_stores_candidates_with_full_provenance(tmp_path):
    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    events = []
    stats = GenerationJob(index, ws, TemplateBackend(), checks="full", on_event=events.append).run_sync()
    assert stats.state == "done" and stats.groups_done == 8
    store = CandidateStore(ws).load()
    c = store.candidate(store.rows[0].id)
    assert set(c) >= {"id", "video_uid", "clip_uid", "group_key", "narration", "group_narrations", "window", "query",
                      "backend", "model", "prompt_version", "raw", "checks", "status", "created"}  # fmt: skip
    assert c["variant"] == "template-nlq-templates-v1-p1"  # backend, model, prompt version
    assert c["id"] == f"{c['group_key']}#{c['narration']['number']}@{c['variant']}" and c["status"] == "pending"
    assert set(c["checks"]) == {"duplicate_of", "near_duplicate_of", "ambiguity", "template", "window_problems"}
    assert c["checks"]["template"] and len(c["group_narrations"]) == 5
    # full checks measured ambiguity (>= 0) against the narrations of the clip
    assert all(store.candidate(r.id)["checks"]["ambiguity"] >= 0 for r in store.rows[:10])
    assert {e["type"] for e in events} >= {"progress", "group"}


def test_second_job_on_the_same_workspace_fails_before_any_request_naming_the_holder(tmp_path):
    from engine.errors import WorkspaceError

    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    first = GenerationJob(index, Workspace(tmp_path / "ws"), TemplateBackend(), checks="fast")
    first.prepare()
    second = GenerationJob(index, Workspace(tmp_path / "ws"), TemplateBackend(), checks="fast")
    with pytest.raises(WorkspaceError, match="in use by pid"):
        second.prepare()
    first.run_sync()  # finishing releases the lock
    second = GenerationJob(index, Workspace(tmp_path / "ws"), TemplateBackend(), checks="fast")
    second.prepare()
    assert second.todo == [] and second.stats.groups_skipped == 8


@pytest.mark.parametrize("writes_before_full", [1, 2, 3])
def test_a_full_disk_ends_the_job_with_its_message_instead_of_hanging(tmp_path, monkeypatch, writes_before_full):
    # 1: the first group batch fails; 2: a later one, while the requests are already done and
    # the end marker waits on a full queue (this hung); 3: later still.
    import errno

    import engine.store.lines
    from engine.errors import WorkspaceError

    writes: list[int] = []

    def full_after(fd, data):  # the first writes land (the variant record, groups), then the disk is full
        if len(writes) >= writes_before_full:
            raise OSError(errno.ENOSPC, "No space left on device")
        writes.append(os.write(fd, data))

    monkeypatch.setattr(engine.store.lines, "write_all", full_after)
    index = load_index(tree(tmp_path, videos_n=3), use_cache=False)
    job = GenerationJob(index, Workspace(tmp_path / "ws"), TemplateBackend(), checks="fast")
    job.backend.batch_size = 1  # a small queue that fills while nothing drains it
    with pytest.raises(WorkspaceError, match="full"):
        job.run_sync()
    assert job.stats.state == "failed" and "full" in job.stats.error
    # what was stored before stays whole: every line complete, nothing torn after it
    stored = b"".join(p.read_bytes() for p in (tmp_path / "ws" / "candidates").glob("*.jsonl"))
    assert len(stored) == sum(writes) and stored.endswith(b"\n")
    assert all(json.loads(line) for line in stored.splitlines())


# ------------------------------------------------------------------------------ resuming


def _stored_groups(ws: Path) -> int:
    n = 0
    for p in (ws / "candidates").glob("groups-*.jsonl"):
        n += p.read_bytes().count(b"\n")
    return n


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_without_duplicates(tmp_path):
    root = tree(tmp_path, videos_n=4)  # 32 groups
    ws = tmp_path / "ws"
    with FakeLLMServer(delay=0.15) as srv:
        cmd = NLQ_TUI + ["generate", "--data", str(root), "--workspace", str(ws), "--backend", "openai",
                         "--model", "fake", "--base-url", srv.base_url, "--concurrency", "3", "--checks", "fast",
                         "--json"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        deadline = time.monotonic() + 60
        while _stored_groups(ws) < 6 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = _stored_groups(ws)
        assert 6 <= killed_at < 32
        requests_before = srv.requests
        out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=120)
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        # the rerun asks only for what was not stored; at most the in-flight requests were lost
        assert summary["groups_skipped"] >= killed_at and summary["groups_done"] == 32 - summary["groups_skipped"]
        assert srv.requests - requests_before == summary["groups_done"]
        assert requests_before - killed_at <= 3 + 1
    store = CandidateStore(Workspace(ws)).load()
    assert len(store.done_groups()) == 32
    ids = [r.id for r in store.rows]
    assert len(ids) == len(set(ids)) == 32 * 5


# ------------------------------------------------------------------------------ variants


def _openai(srv, **kw):
    from engine.generation.openai_backend import OpenAIBackend

    kw.setdefault("timeout", 5.0)
    return OpenAIBackend("fake", [srv.base_url], concurrency=4, max_retries=0, **kw)


def test_a_second_variant_over_done_groups_makes_new_candidates_beside_the_first(tmp_path):
    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    first = GenerationJob(index, ws, TemplateBackend(), checks="fast").run_sync()
    before = {r.id: r.query for r in CandidateStore(ws).load().rows}
    second = GenerationJob(index, ws, TemplateBackend(), checks="fast", variant="again").run_sync()
    assert first.groups_done == second.groups_done == 8 and second.groups_skipped == 0
    store = CandidateStore(ws).load()
    rows = store.rows
    assert {r.id: r.query for r in rows if r.variant == first.variant} == before
    assert len([r for r in rows if r.variant == "again"]) == len(before)
    assert len(store.done_groups("again")) == len(store.done_groups(first.variant)) == 8
    # the same variant again has nothing to do
    third = GenerationJob(index, ws, TemplateBackend(), checks="fast", variant="again").run_sync()
    assert third.groups_done == 0 and third.groups_skipped == 8


def test_resume_stays_within_the_variant_and_failed_groups_are_recorded(tmp_path):
    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)  # 16 groups
    ws = Workspace(tmp_path / "ws")
    with FakeLLMServer(script=["server_error"] * 3) as srv:
        a = GenerationJob(index, ws, _openai(srv), checks="fast", variant="a").run_sync()
    assert a.groups_done == 13 and a.groups_failed == 3
    store = CandidateStore(ws).load()
    assert len(store.failed_groups("a")) == 3
    store.close()
    with FakeLLMServer() as srv:
        b = GenerationJob(index, ws, _openai(srv), checks="fast", variant="b").run_sync()
        assert srv.requests == 16  # another variant asks for every group
        a2 = GenerationJob(index, ws, _openai(srv), checks="fast", variant="a").run_sync()
        assert srv.requests == 16 + 3  # variant a asks only for its three failed groups
    assert b.groups_done == 16 and a2.groups_done == 3 and a2.groups_skipped == 13
    store = CandidateStore(ws).load()
    assert store.failed_groups("a") == {} and len(store.done_groups("a")) == 16


def test_a_name_already_used_for_other_settings_is_refused_in_one_line(tmp_path):
    from engine.errors import ConfigError

    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    with FakeLLMServer() as srv:
        GenerationJob(index, ws, _openai(srv, temperature=0.2), checks="fast", variant="v", groups=2).run_sync()
        job = GenerationJob(index, ws, _openai(srv, temperature=0.9), checks="fast", variant="v")
        with pytest.raises(ConfigError, match="another --name"):
            job.prepare()
        job.close()


def test_validation_policy_keeps_copies_of_the_narration_as_flagged_candidates(tmp_path):
    from engine.generation.base import Backend, Reply

    class Restating(Backend):
        """Answers every narration by restating it: 'Did I opens the fridge?'."""

        name, model = "restating", "r1"

        async def complete(self, requests):
            return [Reply(items=[(i, f"Did I {' '.join(t.split()[2:])}?") for i, t in enumerate(r.narrations, 1)])
                    for r in requests]  # fmt: skip

    index = load_index(tree(tmp_path, videos_n=1), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    strict = GenerationJob(index, ws, Restating(), checks="fast", variant="strict").run_sync()
    kept = GenerationJob(index, ws, Restating(), checks="fast", variant="kept",
                         policy={"copies_narration": "flag"}).run_sync()  # fmt: skip
    assert strict.questions_valid == 0 and strict.rejected["copies_narration"] == 40
    assert kept.questions_valid == 40 and kept.rejected["copies_narration"] == 0 and kept.flagged["validation"] == 40
    store = CandidateStore(ws).load()
    c = store.get(next(r.id for r in store.rows if r.variant == "kept"))
    assert c.checks.flagged == ["copies_narration"] and "validation" in c.flag_names()
    assert {v.name: v.policy for v in store.variants()}["kept"] == {"copies_narration": "flag"}


def test_cost_estimate_counts_the_messages_the_requests_send_and_learns_the_servers_counts(tmp_path):
    from engine.generation.estimate import count_message_tokens, estimate_job

    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    with FakeLLMServer() as srv:
        job = GenerationJob(index, ws, _openai(srv, price_in=2.0, price_out=8.0), checks="fast", variant="e")
        est = estimate_job(job)
        assert not (ws.path / "candidates").exists() or not list((ws.path / "candidates").glob("groups-*"))
        texts, _ = job.reader.texts(np.array(job.todo))
        counted = sum(count_message_tokens(job.prompt.messages(t)) for t in texts)
        assert est["requests"] == 16 and est["prompt_tokens"] == pytest.approx(counted, rel=0.02)
        assert est["cost"] == pytest.approx((est["prompt_tokens"] * 2.0 + est["completion_tokens"] * 8.0) / 1e6)
        assert est["paid"] is False  # a loopback server
        job.close()
        done = GenerationJob(index, ws, _openai(srv, price_in=2.0, price_out=8.0), checks="fast", variant="e",
                             groups=8, seed=1).run_sync()  # fmt: skip
        # the next variant's estimate is scaled to what this server counted for the same prompt
        again = estimate_job(GenerationJob(index, ws, _openai(srv), checks="fast", variant="f"))
    per_group = done.prompt_tokens / done.requests
    assert again["prompt_tokens"] == pytest.approx(per_group * 16, rel=0.1) and "server" in again["token_method"]


def test_full_checks_run_behind_the_job_in_a_worker_and_fill_every_pending_candidate(tmp_path):
    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    events: list = []
    stats = GenerationJob(index, ws, TemplateBackend(), checks="full", on_event=events.append).run_sync()
    assert stats.state == "done" and stats.checks_error is None
    assert stats.checks_pending == 0 and stats.questions_checked == stats.questions_valid > 0
    assert stats.as_json()["checks_per_second"] > 0 and "checks-pending" not in stats.flagged
    steps = [e["text"] for e in events if e["type"] == "step"]
    assert steps[0] == "loading the sentence encoder" and steps[-1] == ""
    store = CandidateStore(ws).load()
    assert store.pending_checks() == []
    amb = [store.get(r.id).checks.ambiguity for r in store.rows]
    assert len(amb) == stats.questions_valid and min(amb) >= 0  # every one measured


def test_a_full_checks_queue_never_holds_the_job_up_and_every_candidate_is_still_checked(tmp_path, monkeypatch):
    import engine.generation.deferred as deferred

    monkeypatch.setattr(deferred, "QUEUE_BATCHES", 1)  # the worker is far behind at once
    monkeypatch.setattr(deferred, "BATCH", 8)
    real_flush, overflowed = deferred.DeferredChecks.flush, []

    def flush(self):
        before = len(self._overflow)
        real_flush(self)
        overflowed.append(len(self._overflow) - before)

    monkeypatch.setattr(deferred.DeferredChecks, "flush", flush)
    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    stats = GenerationJob(index, ws, TemplateBackend(), checks="full").run_sync()
    assert sum(overflowed) > 0  # batches found the queue full and were not waited for
    assert stats.state == "done" and stats.checks_error is None and stats.checks_pending == 0
    assert stats.questions_checked == stats.questions_valid > 0  # each checked once, none twice
    store = CandidateStore(ws).load()
    assert store.pending_checks() == []
    assert min(store.get(r.id).checks.ambiguity for r in store.rows) >= 0


def test_checks_left_pending_by_a_stopped_run_are_filled_in_by_the_next_run_of_the_variant(tmp_path):
    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    job = GenerationJob(index, ws, TemplateBackend(), checks="full")

    def stop_at_the_first_stored_group(ev):
        if ev["type"] == "group":
            job.cancel()  # stored, its checks not yet run: a cancelled job does not wait for them

    job.on_event = stop_at_the_first_stored_group
    first = job.run_sync()
    assert first.state == "cancelled" and first.groups_done > 0
    store = CandidateStore(ws).load()
    left = store.pending_checks()
    assert len(left) == first.questions_valid > 0
    store.close()
    second = GenerationJob(index, ws, TemplateBackend(), checks="full").run_sync()
    assert second.groups_done == 16 - first.groups_done and second.checks_pending == 0
    assert second.questions_checked == len(left) + second.questions_valid
    store = CandidateStore(ws).load()
    assert store.pending_checks() == [] and min(store.get(r.id).checks.ambiguity for r in store.rows) >= 0


KILLED_JOB = """
import sys
from engine.ego4d import load_index
from engine.generation.pipeline import GenerationJob
from engine.generation.template import TemplateBackend
from engine.workspace import Workspace
GenerationJob(load_index(sys.argv[1], use_cache=False), Workspace(sys.argv[2]), TemplateBackend(), checks="full").run_sync()
"""


@pytest.mark.slow
def test_the_checks_worker_ends_when_its_job_is_killed(tmp_path):
    root = tree(tmp_path, videos_n=3)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_JOB, str(root), str(tmp_path / "ws")], env=_env())
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 60
    kids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and not kids:
        kids = [int(x) for x in children.read_text().split()] if children.exists() else []
        time.sleep(0.05)
    assert kids, "the job never started its checks' worker"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(Path(f"/proc/{k}").exists() and _alive(k) for k in kids):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{k}").exists() and _alive(k) for k in kids)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_finished_job_leaves_the_variants_summary_current(tmp_path):
    from engine.variant_cache import SUMMARY, TABLE, cached_table
    from engine.variants import variant_table

    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    GenerationJob(index, ws, TemplateBackend(), checks="fast").run_sync()
    assert (ws.candidates_dir / SUMMARY).is_file() and (ws.candidates_dir / TABLE).is_file()
    cached = cached_table(ws.candidates_dir)
    assert cached is not None  # the next `nlq-tui variants` or F3 answers without reading the store
    assert cached[0] == variant_table(CandidateStore(ws), summary=False)


def test_a_big_store_never_summarised_is_left_to_the_first_read(tmp_path, monkeypatch):
    import engine.generation.pipeline as pipeline
    from engine.variant_cache import SUMMARY

    monkeypatch.setattr(pipeline, "FIRST_SUMMARY_MAX_BYTES", 1)  # every store counts as big
    index = load_index(tree(tmp_path, videos_n=2), use_cache=False)
    ws = Workspace(tmp_path / "ws")
    GenerationJob(index, ws, TemplateBackend(), checks="fast").run_sync()
    assert not (ws.candidates_dir / SUMMARY).exists()  # the job's end did not read the whole store
    monkeypatch.setattr(pipeline, "FIRST_SUMMARY_MAX_BYTES", 64 << 20)
    GenerationJob(index, ws, TemplateBackend(), checks="fast", variant="second").run_sync()
    assert (ws.candidates_dir / SUMMARY).exists()
