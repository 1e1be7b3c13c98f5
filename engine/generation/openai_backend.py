"""The OpenAI-compatible backend: OpenAI, vLLM, Ollama, llama.cpp server (docs/ARCHITECTURE.md, "LLM exchange").

- One HTTP connection pool per `--base-url`, kept alive for every request in flight
  (engine.generation.http11; httpx2, the `openai` package's transport, where the environment
  names a proxy); each request goes to the server with the fewest requests in flight, so
  several servers share the load.
- Every answer is bounded: the body is read as a stream and cut at `max_response_bytes`
  (`too_large`), it is never decompressed (identity encoding), its JSON is decoded under the
  same deadline as the request (`timeout` covers connecting, reading and decoding), and JSON
  nested too deeply is `not_json`, never a RecursionError. An error body is read to 64 KB.
- Retries are ours, so that each is counted with its reason and `Retry-After` is honoured. A
  400 changes the request only when its message says what to change: no structured output
  (`response_format`), `max_completion_tokens` instead of `max_tokens` (reasoning models), no
  `temperature`; any other 400 is `bad_request`.
- The API key comes from the environment (OPENAI_API_KEY or --api-key-env) and is never
  written anywhere; every text from the server is redacted (`engine.generation.redact`)
  before it is kept. A local server gets a dummy key when none is set.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import json
import os
import random
import re
import time
from typing import Any
from urllib.parse import urlparse

from engine.errors import ConfigError
from engine.generation.base import Backend, Reply, Request
from engine.generation.prompt import ANSWER_SCHEMA
from engine.generation.redact import redact, register
from engine.generation.settings import MB, check_base_url
from engine.textsafe import one_line

RETRYABLE = frozenset(
    {"rate_limited", "server_error", "timeout", "connection", "empty_choices", "empty_answer", "html_response"}
)
FATAL = frozenset({"auth", "not_found"})  # every further request would fail the same way
DUMMY_KEY = "sk-local-no-key"
DOWN_SECONDS = 10.0  # a server that failed gets no new requests for this long (when there are others)
ERROR_BODY_CAP = 64 * 1024
MAX_TOKENS_SANE = 100_000_000  # a usage figure above this is a server bug, not tokens
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "nlq_questions", "schema": ANSWER_SCHEMA, "strict": True},
}
_NO_STRUCTURED = re.compile(r"response_format|json_schema|structured output|guided_json|grammar", re.I)
_UNSUPPORTED = re.compile(r"unsupported|not supported|does not support|not allowed|unknown|unrecognized", re.I)


def token_count(v) -> int:
    """A usage figure from a server, or 0 when it is missing, negative, absurd or not a number."""
    if isinstance(v, bool):
        return 0
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or not 0 <= v <= MAX_TOKENS_SANE:
        return 0
    return v


def is_local_url(url: str) -> bool:
    try:
        host = urlparse(url).hostname or ""
    except ValueError:
        return False
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
    except (TypeError, ValueError, OverflowError):
        return None


def _detail(text: str, limit: int = 200) -> str:
    """A server's text as one safe, bounded, redacted line."""
    return one_line(redact(text), limit)


class Failure(Exception):
    """One attempt's failure: reason key, one-line detail, Retry-After seconds."""

    def __init__(self, reason: str, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.wait = reason, detail, wait


def decode_json(body: bytes):
    """JSON from bytes, or Failure("not_json"); deep nesting is a failure, not RecursionError."""
    try:
        return json.loads(body)
    except RecursionError:
        raise Failure("not_json", "the answer's JSON is nested too deeply") from None
    except ValueError:
        head = body[:200].decode("utf-8", "replace")
        reason = "html_response" if head.lstrip().startswith("<") else "not_json"
        raise Failure(reason, f"HTTP 200 but not JSON: {_detail(head, 80)!r}") from None


def _error_message(body: bytes) -> tuple[str, str]:
    """(message, param) of an error body: {"error": {"message", "param"}} or the text itself."""
    text = body[:ERROR_BODY_CAP].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text, ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        msg, param = err.get("message"), err.get("param")
        return (msg if isinstance(msg, str) else text), (param if isinstance(param, str) else "")
    if isinstance(err, str):
        return err, ""
    return text, ""


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
        price_in: float | None = None,
        price_out: float | None = None,
        price_per_1k: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_response_bytes: int = MB,
    ) -> None:
        if not model:
            raise ConfigError("the openai backend needs --model NAME (the model the server serves)")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"--concurrency must be a whole number >= 1, got {concurrency!r}")
        self.model = model
        urls = base_urls or ["https://api.openai.com/v1"]
        self.base_urls = list(dict.fromkeys(check_base_url(u) for u in urls))
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.set_prices(price_in, price_out, price_per_1k)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_response_bytes = int(max_response_bytes)
        key = resolve_api_key(self.base_urls, api_key_env)
        if key != DUMMY_KEY:
            register(key)
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",  # a compressed body could expand past any cap
        }
        self._structured = {u: structured for u in self.base_urls}
        self._tokens_field = dict.fromkeys(self.base_urls, "max_tokens")
        self._temperature_ok = dict.fromkeys(self.base_urls, True)
        self._in_flight = dict.fromkeys(self.base_urls, 0)
        self._down_until: dict[str, float] = {}
        self._clients: dict[str, Any] = {}
        self._rng = random.Random(0)

    def paid(self) -> bool:
        return not all(is_local_url(u) for u in self.base_urls)

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
        if c is None and not _proxied(url):
            from engine.generation.http11 import Pool

            c = self._clients[url] = Pool(url, limit=self.concurrency)
        elif c is None:
            httpx2 = _httpx()
            n = self.concurrency
            c = self._clients[url] = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.timeout),
                # every request in flight keeps its connection: no reconnect per request
                limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n, keepalive_expiry=30.0),
                trust_env=True,
            )
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

    def body(self, url: str, messages: list[dict]) -> dict:
        """The request body as sent to `url` (its adaptations to earlier 400s included)."""
        body: dict = {"model": self.model, "messages": messages, self._tokens_field[url]: self.max_tokens}
        if self.temperature is not None and self._temperature_ok[url]:
            body["temperature"] = self.temperature
        if self._structured[url]:
            body["response_format"] = RESPONSE_FORMAT
        return body

    async def one(self, request: Request) -> Reply:
        reply = Reply(text=None, attempts=0)
        t0 = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            reply.attempts = attempt
            url = self._pick_url()
            self._in_flight[url] += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await self._attempt(url, request, reply)
                reason = None
            except asyncio.CancelledError:
                raise
            except Failure as f:
                reason, detail, wait = f.reason, f.detail, f.wait
            except TimeoutError:
                reason, detail, wait = "timeout", f"no complete answer within --timeout {self.timeout:g} s", None
            except Exception as exc:  # noqa: BLE001 - classified, counted and retried or reported
                reason, detail, wait = self._classify(exc)
            finally:
                self._in_flight[url] -= 1
            if reason is None:
                self._down_until.pop(url, None)
                reply.seconds = time.monotonic() - t0
                return reply
            if reason == "adapted":  # the request changed as the server asked: not an attempt
                reply.retry_reasons.append(detail)
                attempt -= 1
                continue
            if reason in ("connection", "timeout", "server_error", "html_response") and len(self.base_urls) > 1:
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
    def _classify(exc: BaseException) -> tuple[str, str, float | None]:
        httpx2 = _httpx()
        text = _detail(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, httpx2.TimeoutException):
            return "timeout", "no answer within the request timeout", None
        if isinstance(exc, (httpx2.TransportError, OSError, EOFError)):
            return "connection", text or "connection failed", None
        return "error", text, None

    async def _attempt(self, url: str, request: Request, reply: Reply) -> None:
        payload = json.dumps(self.body(url, request.messages), ensure_ascii=False).encode("utf-8")
        client = self._client(url)
        if not hasattr(client, "stream"):  # our own HTTP/1.1 pool
            from engine.generation.http11 import BodyTooLarge

            cap = self.max_response_bytes
            try:
                resp = await client.post("/chat/completions", payload, self._headers, cap, min(cap, ERROR_BODY_CAP))
            except BodyTooLarge as exc:
                how = f"has {exc.size:,} bytes" if exc.size is not None else f"is over {cap:,} bytes"
                raise Failure("too_large", f"the answer {how} (--max-response-bytes {cap:,})") from None
            if not 200 <= resp.status < 300:
                self._status_failure(url, resp.status, resp.body, resp.headers)
            self._read(resp.body, reply)
            return
        async with client.stream("POST", url + "/chat/completions", content=payload, headers=self._headers) as resp:
            status = resp.status_code
            ok = 200 <= status < 300
            cap = self.max_response_bytes if ok else min(self.max_response_bytes, ERROR_BODY_CAP)
            length = resp.headers.get("content-length", "")
            if ok and length.isdigit() and int(length) > cap:
                raise Failure("too_large", f"the answer has {int(length):,} bytes (--max-response-bytes {cap:,})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    if ok:
                        raise Failure("too_large", f"the answer is over {cap:,} bytes (--max-response-bytes)")
                    chunks.append(chunk[: cap - (size - len(chunk))])
                    break
                chunks.append(chunk)
            body = b"".join(chunks)
            headers = resp.headers
        if not ok:
            self._status_failure(url, status, body, headers)
        self._read(body, reply)

    def _status_failure(self, url: str, status: int, body: bytes, headers) -> None:
        """Raise the Failure for a non-2xx answer (or "adapted" when the request can change)."""
        message, param = _error_message(body)
        detail = _detail(message)
        if status == 429:
            raise Failure("rate_limited", detail, retry_after_seconds(headers))
        if status in (401, 403):
            raise Failure("auth", f"HTTP {status}: the server refused the API key")
        if status == 404:
            raise Failure("not_found", f"HTTP 404: no such model or endpoint ({detail})")
        if status >= 500:
            raise Failure("server_error", f"HTTP {status}", retry_after_seconds(headers))
        if status == 400:
            said = f"{param} {message}"
            if ("max_tokens" in said and _UNSUPPORTED.search(said)) or "max_completion_tokens" in said:
                if self._tokens_field[url] == "max_tokens":
                    self._tokens_field[url] = "max_completion_tokens"
                    raise Failure("adapted", "max_completion_tokens")
            elif "temperature" in said and _UNSUPPORTED.search(said):
                if self._temperature_ok[url]:
                    self._temperature_ok[url] = False
                    raise Failure("adapted", "no_temperature")
            elif _NO_STRUCTURED.search(said) and self._structured[url]:
                self._structured[url] = False
                raise Failure("adapted", "no_structured_output")
        raise Failure("bad_request", f"HTTP {status}: {detail}")

    @staticmethod
    def _read(body: bytes, reply: Reply) -> None:
        """Fill the reply from a 2xx response body, or raise the Failure it amounts to."""
        data = decode_json(body)
        if not isinstance(data, dict):
            raise Failure("html_response", f"HTTP 200 but a JSON {type(data).__name__}, not a completion")
        usage = data.get("usage")
        if isinstance(usage, dict):
            reply.prompt_tokens += token_count(usage.get("prompt_tokens"))
            reply.completion_tokens += token_count(usage.get("completion_tokens"))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise Failure("empty_choices", "the answer had no choices")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not content.strip():
            finish = one_line(choices[0].get("finish_reason"), 40)
            raise Failure("empty_answer", f"empty message (finish_reason={finish})")
        reply.text = redact(content)
        reply.raw_length = len(content)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for c in clients.values():
            try:
                await c.aclose()
            except Exception:  # noqa: BLE001 - closing best effort
                pass


@functools.cache  # looked up on every failed request: a failed import is not retried each time
def _httpx() -> Any:
    """The HTTP client the `openai` package brings (httpx2 since openai 3, httpx before; the
    same API): it carries requests through a proxy named by the environment."""
    import importlib

    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")  # an older openai


def _proxied(url: str) -> bool:
    """Whether the environment names a proxy for this URL (then httpx2 carries the request)."""
    import urllib.request

    parts = urlparse(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")
