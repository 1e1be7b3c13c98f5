"""The OpenAI-compatible backend against a real HTTP server on loopback, misbehaving on purpose."""

from __future__ import annotations

import asyncio
import time

import pytest
from ego4d_fixtures import video, write_tree
from fake_llm_server import FakeLLMServer

from engine.ego4d import load_index
from engine.errors import ConfigError
from engine.generation.base import Request
from engine.generation.openai_backend import OpenAIBackend, retry_after_seconds
from engine.generation.pipeline import GenerationJob
from engine.store import CandidateStore
from engine.workspace import Workspace

VERBS = ["picks up the knife from the table", "cuts the onion with the knife", "puts the knife in the drawer",
         "opens the fridge", "washes the plate in the sink", "takes the cup from the shelf",
         "pours water into the cup", "drops the spoon on the counter"]  # fmt: skip
NARRS = [f"#C C {v}" for v in VERBS[:5]]


def _req(texts=NARRS) -> Request:
    from engine.generation.prompt import DEFAULT_PROMPT

    return Request("g", DEFAULT_PROMPT.messages(texts), list(texts), [0] * len(texts))


def _backend(srv: FakeLLMServer, **kw) -> OpenAIBackend:
    kw.setdefault("timeout", 2.0)
    kw.setdefault("backoff_base", 0.01)
    return OpenAIBackend("fake-model", [srv.base_url], **kw)


def _one(backend: OpenAIBackend, req: Request | None = None):
    async def go():
        try:
            return await backend.one(req or _req())
        finally:
            await backend.aclose()

    return asyncio.run(go())


def tree(tmp_path, videos_n: int = 2, narrations: int = 40):
    vids = [
        video(f"vid-{i}", clips=[(0.0, 2.0 * narrations + 10)],
              pass1=[(1.0 + 2 * j, f"#C C {VERBS[(i + j) % len(VERBS)]}") for j in range(narrations)])
        for i in range(videos_n)
    ]  # fmt: skip
    vids.append(
        video("vid-val", split="val", clips=[(0.0, 100.0)], pass1=[(1.0 + 2 * j, NARRS[j % 5]) for j in range(20)])
    )
    return write_tree(tmp_path / "data", videos=vids, features="empty")


# --------------------------------------------------------------------------------- one request


def test_rate_limit_is_retried_after_the_retry_after_delay():
    with FakeLLMServer(script=["rate_limit"], retry_after="0.4") as srv:
        t0 = time.monotonic()
        rep = _one(_backend(srv))
        took = time.monotonic() - t0
    assert not rep.failed and rep.attempts == 2 and rep.retry_reasons == ["rate_limited"]
    assert took >= 0.4
    assert rep.prompt_tokens > 0 and rep.completion_tokens > 0


def test_stalled_response_times_out_and_the_retry_succeeds():
    with FakeLLMServer(script=["stall"], stall=10) as srv:
        rep = _one(_backend(srv, timeout=0.5))
    assert not rep.failed and rep.retry_reasons == ["timeout"]


def test_server_without_structured_output_gets_plain_requests_after_one_400():
    with FakeLLMServer(default="no_schema") as srv:
        b = _backend(srv)

        async def go():
            try:
                return [await b.one(_req()) for _ in range(3)]
            finally:
                await b.aclose()

        reps = asyncio.run(go())
        bodies = srv.bodies
    assert all(not r.failed for r in reps)
    assert "response_format" in bodies[0] and all("response_format" not in x for x in bodies[1:])
    assert len(bodies) == 4  # one refused request, then three plain ones


def test_structured_output_is_requested_with_the_answer_schema():
    with FakeLLMServer() as srv:
        _one(_backend(srv))
        body = srv.bodies[0]
    schema = body["response_format"]["json_schema"]["schema"]
    assert body["model"] == "fake-model" and "questions" in schema["properties"]
    assert body["messages"][-1]["content"].count("\n1. #C C picks up the knife") == 1


def test_failures_after_the_last_retry_carry_their_reason():
    with FakeLLMServer(default="server_error") as srv:
        rep = _one(_backend(srv, max_retries=2))
        assert srv.requests == 3
    assert rep.failed and rep.error == "server_error" and rep.retry_reasons == ["server_error"] * 2


def test_html_page_with_status_200_is_a_failed_request_not_a_crash():
    with FakeLLMServer(default="html") as srv:
        rep = _one(_backend(srv, max_retries=0))
    assert rep.error == "html_response" and "nginx" in rep.error_detail


def test_requests_spread_over_several_base_urls():
    with FakeLLMServer(delay=0.05) as a, FakeLLMServer(delay=0.05) as b:
        backend = OpenAIBackend("m", [a.base_url, b.base_url], concurrency=8, timeout=2)

        async def go():
            try:
                return await backend.complete([_req() for _ in range(8)])
            finally:
                await backend.aclose()

        reps = asyncio.run(go())
        assert a.requests >= 3 and b.requests >= 3
    assert all(not r.failed for r in reps)


def test_a_dead_server_among_several_is_avoided_after_its_first_failure():
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with FakeLLMServer() as good:
        backend = OpenAIBackend("m", [dead, good.base_url], concurrency=4, timeout=2, backoff_base=0.01)

        async def go():
            try:
                return [await backend.one(_req()) for _ in range(10)]
            finally:
                await backend.aclose()

        reps = asyncio.run(go())
        assert good.requests == 10
    assert all(not r.failed for r in reps)
    assert sum(r.retry_reasons.count("connection") for r in reps) == 1


def test_retry_after_accepts_seconds_ms_and_http_dates():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_remote_endpoint_without_a_key_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("NLQ_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="NLQ_TEST_KEY"):
        OpenAIBackend("m", ["https://api.example.com/v1"], api_key_env="NLQ_TEST_KEY")


# --------------------------------------------------------------------------------- a whole run


def test_misbehaving_server_run_finishes_and_counts_every_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("NLQ_TEST_KEY", "sk-test-secret-123")
    root = tree(tmp_path)
    index = load_index(root, use_cache=False)
    ws = Workspace(tmp_path / "ws")
    script = ["rate_limit", "server_error", "html", "html_502", "empty_choices", "stall", "drop",
              "prose", "fenced", "wrong_indices", "not_json"]  # fmt: skip
    with FakeLLMServer(script=script, stall=10) as srv:
        backend = OpenAIBackend("fake-model", [srv.base_url], api_key_env="NLQ_TEST_KEY", concurrency=4,
                                timeout=0.5, max_retries=0)  # fmt: skip
        job = GenerationJob(index, ws, backend, checks="fast")
        stats = job.run_sync()
        assert set(srv.auth_headers) == {"Bearer sk-test-secret-123"}
    # 2 train videos x 40 narrations, k=5 tiled: 16 groups; the val video gives none
    assert stats.groups_total == 16 and stats.requests == 16
    assert stats.failures == {"rate_limited": 1, "server_error": 2, "html_response": 1, "empty_choices": 1,
                              "timeout": 1, "connection": 1}  # fmt: skip
    assert stats.failed_requests == 7 and stats.groups_done == 9
    assert stats.rejected == {"not_json": 1, "index_out_of_range": 1, "missing_question": 1}
    assert stats.questions_valid == 9 * 5 - 5 - 1  # not_json loses 5, wrong_indices 1
    # a second run against a healthy server finishes the 7 failed groups, no duplicates
    with FakeLLMServer() as srv:
        backend = OpenAIBackend("fake-model", [srv.base_url], api_key_env="NLQ_TEST_KEY", timeout=2)
        stats2 = GenerationJob(index, ws, backend, checks="fast").run_sync()
        assert srv.requests == 7
    assert stats2.groups_skipped == 9 and stats2.groups_done == 7
    store = CandidateStore(ws)
    assert len(store.done_groups()) == 16
    ids = [r.id for r in store.rows]
    assert len(ids) == len(set(ids)) == stats.questions_valid + 7 * 5
    assert not any("vid-val" in r.video_uid for r in store.rows)
    c = store.candidate(ids[0])
    assert c["backend"] == "openai" and c["model"] == "fake-model" and c["prompt_version"] == 1
    assert c["window"]["clip_rel_start"] is not None and c["narration"]["uid"]
    # the key is never written to the workspace
    for path in ws.path.rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-123" not in path.read_bytes(), path


# --------------------------------------------------------------------------------- hostile servers

SECRET = "sk-hostile-test-key-0123456789"


def _hostile_job(tmp_path, monkeypatch, srv, **kw):
    monkeypatch.setenv("NLQ_TEST_KEY", SECRET)
    index = load_index(tree(tmp_path), use_cache=False)
    backend = OpenAIBackend("fake-model", [srv.base_url], api_key_env="NLQ_TEST_KEY", concurrency=4,
                            timeout=kw.pop("timeout", 3.0), max_retries=0, **kw)  # fmt: skip
    events: list = []
    job = GenerationJob(index, Workspace(tmp_path / "ws"), backend, checks="fast", on_event=events.append)
    return job, events


def _no_secret_in(ws_path, *texts):
    for t in texts:
        assert SECRET not in str(t)
    for path in ws_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_key_echoed_in_errors_and_questions_is_masked_everywhere(tmp_path, monkeypatch):
    with FakeLLMServer(script=["echo_key", "key_in_question"], default="ok") as srv:
        job, events = _hostile_job(tmp_path, monkeypatch, srv)
        stats = job.run_sync()
        assert SECRET in srv.auth_headers[0]  # the server did get the key
    assert stats.failures == {"bad_request": 1} and stats.groups_done == 15
    store = CandidateStore(job.workspace).load()
    masked = [r.query for r in store.rows if "***" in r.query]
    assert len(masked) == 5  # the key_in_question group, its key replaced
    failure = next(e for e in events if e["type"] == "failure")
    assert "***" in failure["detail"]
    _no_secret_in(job.workspace.path, events, stats.as_json())


def test_an_endless_body_is_cut_at_the_cap_and_the_job_goes_on(tmp_path, monkeypatch):
    with FakeLLMServer(script=["endless", "endless"], default="ok") as srv:
        job, _ = _hostile_job(tmp_path, monkeypatch, srv, max_response_bytes=256 * 1024)
        t0 = time.monotonic()
        stats = job.run_sync()
        took = time.monotonic() - t0
    assert stats.failures == {"too_large": 2} and stats.groups_done == 14 and stats.state == "done"
    assert took < 3.0


def test_deeply_nested_answers_are_counted_not_fatal_and_a_rerun_goes_on(tmp_path, monkeypatch):
    with FakeLLMServer(script=["deep", "deep_envelope"], default="ok", depth=200_000) as srv:
        job, _ = _hostile_job(tmp_path, monkeypatch, srv)
        stats = job.run_sync()
    assert stats.state == "done"
    assert stats.failures == {"not_json": 1}  # the envelope: not stored, asked again next run
    assert stats.rejected["not_json"] == 1  # the content: the model answered, stored rejected
    assert stats.groups_done == 15
    with FakeLLMServer(default="ok") as srv:
        job2, _ = _hostile_job(tmp_path, monkeypatch, srv)
        assert job2.run_sync().groups_done == 1


def test_a_huge_answer_is_refused_by_its_length_without_reading_it():
    with FakeLLMServer(script=["huge"], huge_bytes=32 << 20) as srv:
        t0 = time.monotonic()
        rep = _one(_backend(srv, max_retries=0))
        assert time.monotonic() - t0 < 2.0
    assert rep.error == "too_large" and "max-response-bytes" in rep.error_detail


def test_reasoning_model_gets_max_completion_tokens_and_keeps_structured_output():
    with FakeLLMServer(default="reasoning") as srv:
        b = _backend(srv)

        async def go():
            try:
                return [await b.one(_req()) for _ in range(3)]
            finally:
                await b.aclose()

        reps = asyncio.run(go())
        bodies = srv.bodies
    assert all(not r.failed for r in reps)
    assert reps[0].retry_reasons == ["max_completion_tokens", "no_temperature"]
    last = bodies[-1]
    assert "max_completion_tokens" in last and "max_tokens" not in last and "temperature" not in last
    assert "response_format" in last and len(bodies) == 5  # two refused, then three answered


def test_a_400_that_is_not_about_structured_output_keeps_it_on():
    with FakeLLMServer(script=["echo_key"]) as srv:
        b = _backend(srv, max_retries=0)
        rep = _one(b)
    assert rep.error == "bad_request" and b._structured[b.base_urls[0]] is True


def test_negative_or_absurd_token_counts_are_not_added():
    with FakeLLMServer(default="negative_tokens") as srv:
        rep = _one(_backend(srv))
    assert not rep.failed and rep.prompt_tokens == 0 and rep.completion_tokens == 0


@pytest.mark.parametrize(
    ("kw", "flag"),
    [({"timeout": 0}, "--timeout"), ({"timeout": float("nan")}, "--timeout"), ({"temperature": float("nan")},
     "--temperature"), ({"temperature": -1}, "--temperature"), ({"concurrency": 0}, "--concurrency"),
     ({"max_tokens": -3}, "--max-tokens"), ({"max_retries": -1}, "--max-retries"),
     ({"max_response_bytes": 0}, "--max-response-bytes"), ({"price_in": float("inf")}, "--price-in"),
     ({"base_urls": ["http://[::1"]}, "--base-url"), ({"base_urls": ["ftp://x/v1"]}, "--base-url")],
)  # fmt: skip
def test_out_of_range_settings_are_one_line_naming_the_flag(kw, flag):
    from engine.generation.factory import make_backend

    kw.setdefault("base_urls", ["http://127.0.0.1:9/v1"])
    with pytest.raises(ConfigError) as err:
        make_backend("openai", model="m", **kw)
    assert str(err.value).startswith(flag) and "\n" not in str(err.value)


ENDLESS_JOB = """
import json, sys, time
from engine.ego4d import load_index
from engine.generation.openai_backend import OpenAIBackend
from engine.generation.pipeline import GenerationJob
from engine.workspace import Workspace
root, ws, url = sys.argv[1:4]


def vm_hwm_mb():  # this process's peak RSS (ru_maxrss would include the forking parent's)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

index = load_index(root, use_cache=False)
backend = OpenAIBackend("m", [url], concurrency=4, timeout=2.0, max_retries=1, backoff_base=0.01)
t0 = time.monotonic()
st = GenerationJob(index, Workspace(ws), backend, checks="fast").run_sync()
print(json.dumps({"seconds": time.monotonic() - t0, "failures": dict(st.failures), "done": st.groups_done,
                  "max_rss_mb": vm_hwm_mb()}))
"""


def test_a_job_against_an_endless_body_stays_small_and_ends_within_the_timeout(tmp_path):
    import json
    import subprocess
    import sys

    root = tree(tmp_path)
    with FakeLLMServer(default="endless") as srv:
        out = subprocess.run([sys.executable, "-c", ENDLESS_JOB, str(root), str(tmp_path / "ws"), srv.base_url],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        sent = srv.endless_bytes
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"endless body: job peak RSS {res['max_rss_mb']:.0f} MB, {res['seconds']:.2f} s, server sent {sent >> 20} MB")
    assert res["failures"] == {"too_large": 16} and res["done"] == 0
    assert res["max_rss_mb"] < 300 and res["seconds"] < 2.0 * 2  # 16 groups x 2 attempts, 4 at once, each cut at 1 MB


def test_the_cli_never_prints_a_key_a_server_echoes(tmp_path):
    import json
    import os
    import subprocess
    import sys

    root = tree(tmp_path)
    env = dict(os.environ, HF_HUB_OFFLINE="1", NLQ_TEST_KEY=SECRET)
    env.pop("OPENAI_API_KEY", None)
    base = [sys.executable, "-m", "nlq_tui", "generate", "--data", str(root), "--workspace", str(tmp_path / "ws"),
            "--backend", "openai", "--model", "m", "--api-key-env", "NLQ_TEST_KEY", "--max-retries", "0"]  # fmt: skip
    outs = []
    with FakeLLMServer(default="echo_key") as srv:
        for extra in (["--dry-run"], ["--dry-run", "--json"]):
            outs.append(subprocess.run(base + ["--base-url", srv.base_url] + extra, capture_output=True, text=True,
                                       env=env, timeout=120))  # fmt: skip
    with FakeLLMServer(script=["echo_key"], default="key_in_question") as srv:
        outs.append(subprocess.run(base + ["--base-url", srv.base_url, "--checks", "fast", "--json"],
                                   capture_output=True, text=True, env=env, timeout=120))  # fmt: skip
    for out in outs:
        assert SECRET not in out.stdout and SECRET not in out.stderr
    assert "***" in outs[0].stdout and json.loads(outs[1].stdout)["error"] == "bad_request"
    assert json.loads(outs[2].stdout.strip().splitlines()[-1])["groups_done"] == 15
    _no_secret_in(tmp_path / "ws")


@pytest.mark.parametrize("mode", ["ok", "endless", "huge", "echo_key"])
def test_the_httpx2_transport_used_behind_a_proxy_is_bounded_the_same_way(monkeypatch, mode):
    from engine.generation import openai_backend

    monkeypatch.setattr(openai_backend, "_proxied", lambda url: True)  # as if HTTP_PROXY named one
    with FakeLLMServer(default=mode, huge_bytes=4 << 20) as srv:
        b = _backend(srv, max_retries=0, max_response_bytes=1 << 20)
        rep = _one(b)
    assert {"ok": None, "endless": "too_large", "huge": "too_large", "echo_key": "bad_request"}[mode] == rep.error


def test_a_proxy_from_the_environment_is_honoured_unless_the_host_is_bypassed(monkeypatch):
    from engine.generation.openai_backend import _proxied

    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert _proxied("https://api.example.com/v1") and not _proxied("https://internal.example/v1")
    assert not _proxied("http://api.example.com/v1")  # no proxy named for plain http
