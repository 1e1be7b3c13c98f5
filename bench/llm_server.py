"""An independent OpenAI-compatible endpoint for the generation bench: a fixed latency and a
concurrency limit, set by flags, that the client cannot see or tune to.

    .venv/bin/python bench/llm_server.py --port 0 --latency 0.2 --concurrency 32

At most `--concurrency` requests are served at once (the rest wait in the server's queue, as
behind a real rate-limited endpoint), each answered `--latency` seconds after it was admitted,
with one valid NLQ-style question per numbered narration of the request (five for k = 5). So
the endpoint's limit is concurrency / latency requests per second, whatever the client does.
Prints "listening on URL" when ready; on SIGTERM prints one JSON line of its own figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time

_LINE = re.compile(r"^\s*(\d+)\.\s+(.*)$", re.M)
_WORD = re.compile(r"[A-Za-z]+")
_SKIP = frozenset("C O unsure a an the".split())


def questions(user: str) -> list[dict]:
    out = []
    for n, text in _LINE.findall(user):
        words = [w for w in _WORD.findall(text) if w not in _SKIP]
        thing = " ".join(words[-2:]).lower() if len(words) >= 2 else "it"
        verb = words[0].lower() if words else "saw"
        out.append({"narration": int(n), "query": f"Where was the {thing} before I {verb} it in step {n}?"})
    return out


class Server:
    def __init__(self, latency: float, concurrency: int) -> None:
        self.latency = latency
        self.slots = asyncio.Semaphore(concurrency)
        self.served = 0
        self.peak_waiting = 0
        self.waiting = 0
        self.started = time.monotonic()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:].strip() or 0)
                body = await reader.readexactly(length) if length else b""
                self.waiting += 1
                self.peak_waiting = max(self.peak_waiting, self.waiting)
                async with self.slots:
                    self.waiting -= 1
                    await asyncio.sleep(self.latency)
                    writer.write(self.answer(body))
                    self.served += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    def answer(self, body: bytes) -> bytes:
        try:
            req = json.loads(body or b"{}")
            user = next(
                (m.get("content", "") for m in reversed(req.get("messages", [])) if m.get("role") == "user"), ""
            )
        except (ValueError, AttributeError):
            user = ""
        content = json.dumps({"questions": questions(user or "")})
        prompt = sum(len(str(m.get("content", ""))) // 4 for m in req.get("messages", [])) if user else 0
        resp = {
            "id": f"chatcmpl-{self.served}", "object": "chat.completion", "created": int(time.time()),
            "model": req.get("model", "bench") if user else "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(content) // 4,
                      "total_tokens": prompt + len(content) // 4},
        }  # fmt: skip
        data = json.dumps(resp).encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nContent-Length: "
            + str(len(data)).encode()
            + b"\r\n\r\n"
            + data
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per request once admitted (default 0.2)")
    ap.add_argument("--concurrency", type=int, default=32, help="requests served at once (default 32)")
    a = ap.parse_args()
    srv = Server(a.latency, a.concurrency)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", a.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    cpu = os.times()
    print(json.dumps({"served": srv.served, "peak_waiting": srv.peak_waiting,
                      "cpu_seconds": round(cpu.user + cpu.system, 3)}), flush=True)  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
