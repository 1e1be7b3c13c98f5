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
