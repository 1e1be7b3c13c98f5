"""An OpenAI-compatible chat-completions server on loopback, for tests and the bench.

Real HTTP/1.1 with keep-alive on asyncio streams, in a background thread. It answers each
request after `delay` seconds with one question per numbered narration, or misbehaves as told:

    ok             a good JSON answer (message content is the JSON object)
    fenced         the JSON inside a ```json code fence
    prose          prose around the JSON
    not_json       prose only
    wrong_indices  narration numbers shifted by one (one out of range, one missing)
    html           HTTP 200 with an HTML page instead of JSON
    html_502       HTTP 502 with an HTML page (a proxy in front of a dead server)
    rate_limit     HTTP 429 with Retry-After
    server_error   HTTP 500
    unauthorized   HTTP 401 (a wrong API key)
    empty_choices  HTTP 200 with "choices": []
    stall          never answers within `stall` seconds (the client's timeout fires)
    drop           closes the connection without an answer
    no_schema      HTTP 400 when the request asks for response_format (then answers normally
                   to requests that do not)
    reasoning      HTTP 400 as OpenAI's reasoning models give it for max_tokens ("use
                   'max_completion_tokens' instead") and for a temperature other than 1
    echo_key       HTTP 400 whose error message echoes the Authorization header
    key_in_question  a good answer whose questions contain the Authorization header's key
    endless        HTTP 200 whose body streams without end (chunked), `chunk` bytes at a time
    huge           HTTP 200 with a valid answer `huge_bytes` long (the content padded)
    deep           HTTP 200 whose message content is JSON nested `depth` levels deep
    deep_envelope  HTTP 200 whose whole body is JSON nested `depth` levels deep
    negative_tokens  a good answer whose usage says -5 prompt and 10**15 completion tokens

`script` is a list of modes used by successive requests (then `default`); `modes_by_group`
makes a mode follow the group (keyed by the first narration's text) on its FIRST request only,
so retries can succeed. Used as a context manager: `with FakeLLMServer() as srv: srv.base_url`.

Run it alone for manual tests: `python tests/fake_llm_server.py --port 8001 --delay 0.2`.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter

_LINE = re.compile(r"^\s*(\d+)\.\s+(.*)$", re.M)


def good_questions(numbered: list[tuple[int, str]]) -> list[dict]:
    out = []
    for n, text in numbered:
        words = [w for w in re.findall(r"[A-Za-z]+", text) if w not in ("C", "O", "unsure", "a", "an", "the")]
        thing = " ".join(words[-2:]).lower() if len(words) >= 2 else "it"
        out.append({"narration": n, "query": f"Where was the {thing} when I looked for it in step {n}?"})
    return out


class FakeLLMServer:
    def __init__(
        self,
        delay: float = 0.0,
        script: list[str] | None = None,
        default: str = "ok",
        retry_after: str = "0",
        stall: float = 30.0,
        modes_by_group: dict[str, str] | None = None,
        port: int = 0,
        depth: int = 100_000,
        huge_bytes: int = 32 << 20,
        chunk: int = 64 * 1024,
    ) -> None:
        self.depth = depth
        self.huge_bytes = huge_bytes
        self.chunk = chunk
        self.endless_bytes = 0  # bytes of endless bodies sent (to show the client stopped reading)
        self.delay = delay
        self.script = list(script or [])
        self.default = default
        self.retry_after = retry_after
        self.stall = stall
        self.modes_by_group = dict(modes_by_group or {})
        self.port = port
        self.requests = 0
        self.modes = Counter()
        self.bodies: list[dict] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.keep_bodies = True

    # lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._run, name="fake-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():

            async def _shutdown() -> None:
                self._server.close()
                me = asyncio.current_task()
                tasks = [t for t in asyncio.all_tasks() if t is not me]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                asyncio.get_running_loop().stop()

            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=512))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    # HTTP ---------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    if ":" in ln:
                        k, v = ln.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(n) if n else b""
                keep = await self._respond(method, path, headers, body, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # a client went away, or the server is shutting down
        finally:
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def _send(writer, status: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 502: "Bad Gateway"}.get(status, "Status")  # fmt: skip
        hdrs = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}", f"Content-Length: {len(body)}",
                "Connection: keep-alive"]  # fmt: skip
        for k, v in (extra or {}).items():
            hdrs.append(f"{k}: {v}")
        writer.write(("\r\n".join(hdrs) + "\r\n\r\n").encode("latin-1") + body)

    def _next_mode(self, numbered: list[tuple[int, str]]) -> str:
        with self._lock:
            self.requests += 1
            if numbered and numbered[0][1] in self.modes_by_group:
                mode = self.modes_by_group.pop(numbered[0][1])
            elif self.script:
                mode = self.script.pop(0)
            else:
                mode = self.default
            self.modes[mode] += 1
            return mode

    async def _respond(self, method, path, headers, body, writer) -> bool:
        if method == "GET" and path.rstrip("/").endswith("/models"):
            self._send(
                writer, 200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
            )
            await writer.drain()
            return True
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            self._send(writer, 404, b'{"error": {"message": "not found"}}')
            await writer.drain()
            return True
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            self._send(writer, 400, b'{"error": {"message": "bad json"}}')
            await writer.drain()
            return True
        user = next((m.get("content", "") for m in reversed(req.get("messages", [])) if m.get("role") == "user"), "")
        numbered = [(int(a), b) for a, b in _LINE.findall(user or "")]
        mode = self._next_mode(numbered)
        with self._lock:
            if self.keep_bodies:
                self.bodies.append(req)
            self.auth_headers.append(headers.get("authorization", ""))
            req["_auth"] = headers.get("authorization", "")
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if mode == "stall":
                await asyncio.sleep(self.stall)
                return False
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._answer(mode, req, numbered, writer)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _endless(self, writer) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b'{"choices": [{"message": {"content": "' + b"x" * self.chunk
        head = f"{len(piece):x}\r\n".encode()
        try:
            while True:
                writer.write(head + piece + b"\r\n")
                self.endless_bytes += len(piece)
                await writer.drain()
                piece = b"x" * self.chunk
                head = f"{len(piece):x}\r\n".encode()
        except (ConnectionError, OSError):
            return False

    async def _misbehave(self, mode, req, numbered, writer) -> bool | None:
        """The modes of the hostile-input tests; None: not one of them."""
        key = req.get("_auth", "").removeprefix("Bearer ").strip()
        if mode == "endless":
            return await self._endless(writer)
        if mode == "echo_key":
            msg = f"invalid request; you sent Authorization: Bearer {key} from {req.get('model')}"
            self._send(writer, 400, json.dumps({"error": {"message": msg, "type": "invalid_request_error"}}).encode())
        elif mode == "reasoning":
            if "max_tokens" in req:
                msg = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
                err = {
                    "message": msg,
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": "unsupported_parameter",
                }
            elif req.get("temperature", 1) != 1:
                msg = (f"Unsupported value: 'temperature' does not support {req['temperature']} with this model. "
                       "Only the default (1) value is supported.")  # fmt: skip
                err = {
                    "message": msg,
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": "unsupported_value",
                }
            else:
                return None
            self._send(writer, 400, json.dumps({"error": err}).encode())
        elif mode == "deep_envelope":
            self._send(writer, 200, b"[" * self.depth + b"]" * self.depth)
        else:
            return None
        await writer.drain()
        return True

    def _content(self, mode: str, qs: list[dict], req: dict) -> str:
        answer = json.dumps({"questions": qs})
        if mode == "key_in_question":
            key = req.get("_auth", "").removeprefix("Bearer ").strip()
            return json.dumps(
                {"questions": [dict(q, query=f"Where did I put the key {key} after step 1?") for q in qs]}
            )
        if mode == "deep":
            return "[" * self.depth + "]" * self.depth
        if mode == "huge":
            return answer + " " * max(0, self.huge_bytes - len(answer))
        return {
            "fenced": f"```json\n{answer}\n```",
            "prose": f"Sure! Here are the questions you asked for:\n{answer}\nLet me know if you need more.",
            "not_json": "I am sorry, but I cannot write questions about these narrations.",
        }.get(mode, answer)

    async def _answer(self, mode, req, numbered, writer) -> bool:
        if mode == "drop":
            return False
        done = await self._misbehave(mode, req, numbered, writer)
        if done is not None:
            return done
        if mode == "no_schema":
            if "response_format" in req:
                self._send(writer, 400, json.dumps({"error": {"message": "response_format is not supported",
                                                              "type": "invalid_request_error"}}).encode())  # fmt: skip
                await writer.drain()
                return True
            mode = "ok"
        if mode == "rate_limit":
            self._send(writer, 429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                       extra={"Retry-After": self.retry_after})  # fmt: skip
        elif mode == "server_error":
            self._send(writer, 500, b'{"error": {"message": "boom", "type": "server_error"}}')
        elif mode == "unauthorized":
            self._send(
                writer, 401, b'{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}'
            )
        elif mode == "html_502":
            self._send(writer, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        elif mode == "html":
            self._send(writer, 200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
        else:
            qs = good_questions(numbered)
            if mode == "wrong_indices":
                qs = [{"narration": q["narration"] + 1, "query": q["query"]} for q in qs]
            content = self._content(mode, qs, req)
            choices = [] if mode == "empty_choices" else [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ]  # fmt: skip
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in req.get("messages", []))
            completion_tokens = len(content.split())
            if mode == "negative_tokens":
                prompt_tokens, completion_tokens = -5, 10**15
            resp = {
                "id": f"chatcmpl-{self.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.get("model", "fake"),
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },  # fmt: skip
            }
            self._send(writer, 200, json.dumps(resp).encode())
        await writer.drain()
        return True


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--default", default="ok")
    a = ap.parse_args()
    srv = FakeLLMServer(delay=a.delay, default=a.default, port=a.port)
    srv.keep_bodies = False
    srv.start()
    print(f"fake LLM server on {srv.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
