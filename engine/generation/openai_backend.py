"""The OpenAI-compatible backend: OpenAI, vLLM, Ollama, llama.cpp server, through `openai`.

- One AsyncOpenAI client per `--base-url`; each request goes to the client with the fewest
  requests in flight, so several servers share the load.
- The client's own retries are off (max_retries=0): we retry here, so that every retry is
  counted with its reason, `Retry-After` is honoured exactly, and a 400 about
  `response_format` can switch that server to plain JSON instead of failing.
- The API key comes from the environment (OPENAI_API_KEY or the variable named by
  --api-key-env); it is never written anywhere. A local server (loopback or a private
  address) gets a dummy key when none is set, as vLLM and llama.cpp need none.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import os
import random
import time
from urllib.parse import urlparse

from engine.errors import ConfigError
from engine.generation.base import Backend, Reply, Request
from engine.generation.prompt import ANSWER_SCHEMA

RETRYABLE = frozenset(
    {"rate_limited", "server_error", "timeout", "connection", "empty_choices", "empty_answer", "html_response"}
)
FATAL = frozenset({"auth", "not_found"})  # every further request would fail the same way
DUMMY_KEY = "sk-local-no-key"
DOWN_SECONDS = 10.0  # a server that failed gets no new requests for this long (when there are others)
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "nlq_questions", "schema": ANSWER_SCHEMA, "strict": True},
}


def _int(v) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def is_local_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host in ("localhost", "") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def resolve_api_key(base_urls: list[str], api_key_env: str = "OPENAI_API_KEY") -> str:
    key = os.environ.get(api_key_env, "").strip()
    if key:
        return key
    if base_urls and all(is_local_url(u) for u in base_urls):
        return DUMMY_KEY
    raise ConfigError(
        f"no API key: set the environment variable {api_key_env} "
        "(or name another one with --api-key-env NAME); the key is never stored"
    )


def retry_after_seconds(headers) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException) -> tuple[str, str, float | None]:
    """(reason key, one-line detail, Retry-After seconds or None) for an exception from openai."""
    import openai

    detail = " ".join(str(exc).split())[:200]
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "no answer within the request timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", detail or "connection failed", None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = getattr(exc.response, "headers", None)
        if status == 429:
            return "rate_limited", detail, retry_after_seconds(headers)
        if status in (401, 403):
            return "auth", f"HTTP {status}: the server refused the API key", None
        if status == 404:
            return "not_found", f"HTTP 404: no such model or endpoint ({detail})", None
        if status >= 500:
            return "server_error", f"HTTP {status}", retry_after_seconds(headers)
        return "bad_request", f"HTTP {status}: {detail}", None
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout", "no answer within the request timeout", None
    return "error", f"{type(exc).__name__}: {detail}", None


class OpenAIBackend(Backend):
    name = "openai"
    batch_size = 1

    def __init__(
        self,
        model: str,
        base_urls: list[str] | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        structured: bool = True,
        temperature: float | None = 0.7,
        max_tokens: int = 1024,
        price_per_1k: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if not model:
            raise ConfigError("the openai backend needs --model NAME (the model the server serves)")
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.base_urls = list(dict.fromkeys(u.rstrip("/") for u in (base_urls or ["https://api.openai.com/v1"])))
        for u in self.base_urls:
            if urlparse(u).scheme not in ("http", "https"):
                raise ConfigError(f"--base-url {u!r} is not an http(s) URL (e.g. http://localhost:8000/v1)")
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.price_per_1k = price_per_1k
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._key = resolve_api_key(self.base_urls, api_key_env)
        self._structured = {u: structured for u in self.base_urls}
        self._in_flight = {u: 0 for u in self.base_urls}
        self._down_until: dict[str, float] = {}
        self._clients: dict[str, object] = {}
        self._rng = random.Random(0)

    def _pick_url(self) -> str:
        """The server with the fewest requests in flight among those not resting after a failure."""
        if len(self.base_urls) == 1:
            return self.base_urls[0]
        now = time.monotonic()
        up = [u for u in self.base_urls if self._down_until.get(u, 0.0) <= now]
        if not up:  # all failed lately: the one that rests the shortest
            return min(self.base_urls, key=lambda u: self._down_until.get(u, 0.0))
        return min(up, key=lambda u: self._in_flight[u])

    def _client(self, url: str):
        c = self._clients.get(url)
        if c is None:
            from openai import AsyncOpenAI  # heavy: imported on first use

            c = self._clients[url] = AsyncOpenAI(api_key=self._key, base_url=url, max_retries=0, timeout=self.timeout)
        return c

    def describe(self) -> str:
        where = ", ".join(self.base_urls)
        return f"openai:{self.model} @ {where}"

    async def complete(self, requests: list[Request]) -> list[Reply]:
        return list(await asyncio.gather(*(self.one(r) for r in requests)))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max * 4)
        d = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return d * (0.5 + self._rng.random() / 2)  # jitter keeps a fleet of workers from retrying in step

    async def one(self, request: Request) -> Reply:
        reply = Reply(text=None, attempts=0)
        t0 = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            reply.attempts = attempt
            url = self._pick_url()
            self._in_flight[url] += 1
            structured = self._structured[url]
            try:
                # The body goes in extra_body: the same JSON on the wire, but the client's typed
                # transform of nested messages and schema (about half of its CPU per request,
                # which at --concurrency 32 decides the request rate) is skipped.
                body = {"messages": request.messages, "max_tokens": self.max_tokens}
                if self.temperature is not None:
                    body["temperature"] = self.temperature
                if structured:
                    body["response_format"] = RESPONSE_FORMAT
                kwargs = dict(model=self.model, messages=[], extra_body=body)
                # The client has its own timeout; wait_for is the backstop for a server that
                # trickles bytes and so never trips the read timeout.
                # with_raw_response: the body is read as JSON here, without building the
                # client's pydantic models (about a third of the client's CPU per request).
                raw = await asyncio.wait_for(
                    self._client(url).chat.completions.with_raw_response.create(**kwargs), timeout=self.timeout + 5
                )
                reason, detail, wait = self._read(raw.content, reply)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified, counted and retried or reported
                reason, detail, wait = classify(exc)
                if reason == "bad_request" and structured:
                    # Most servers without structured output answer 400 (wording varies): plain
                    # JSON and tolerant parsing from now on, and this attempt does not count.
                    if self._structured[url]:
                        self._structured[url] = False
                        reply.retry_reasons.append("no_structured_output")
                        attempt -= 1
                        continue
            finally:
                self._in_flight[url] -= 1
            if reason is None:
                self._down_until.pop(url, None)
                reply.seconds = time.monotonic() - t0
                return reply
            if reason in ("connection", "timeout", "server_error", "html_response") and len(self.base_urls) > 1:
                # Send the next requests to the other servers for a while.
                self._down_until[url] = time.monotonic() + DOWN_SECONDS
            if reason in RETRYABLE and attempt <= self.max_retries:
                reply.retry_reasons.append(reason)
                await asyncio.sleep(self._backoff(attempt, wait))
                continue
            reply.error = reason
            reply.error_detail = detail
            reply.seconds = time.monotonic() - t0
            return reply

    @staticmethod
    def _read(body: bytes, reply: Reply) -> tuple[str | None, str, float | None]:
        """Fill the reply from a 2xx response body; (None, "", None) when it holds an answer."""
        try:
            data = json.loads(body)
        except ValueError:  # an HTML page or plain text with status 200 (a proxy, a wrong URL)
            snippet = " ".join(body[:200].decode("utf-8", "replace").split())[:80]
            return "html_response", f"HTTP 200 but not JSON: {snippet!r}", None
        if not isinstance(data, dict):
            return "html_response", f"HTTP 200 but a JSON {type(data).__name__}, not a completion", None
        usage = data.get("usage") or {}
        if isinstance(usage, dict):
            reply.prompt_tokens += _int(usage.get("prompt_tokens"))
            reply.completion_tokens += _int(usage.get("completion_tokens"))
        choices = data.get("choices") or []
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return "empty_choices", "the answer had no choices", None
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not content.strip():
            return "empty_answer", f"empty message (finish_reason={choices[0].get('finish_reason')})", None
        reply.text = content
        return None, "", None

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for c in clients.values():
            try:
                await c.close()
            except Exception:  # noqa: BLE001 - closing best effort
                pass
