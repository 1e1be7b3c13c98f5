"""A small HTTP/1.1 client for one OpenAI-compatible server: keep-alive pool, bounded reads.

Why not httpx: at an endpoint's full rate the client's CPU per request decides the request
rate on a small box, and the general-purpose stack (httpx, httpcore, anyio) spends most of a
request's client CPU scanning its pool and wrapping sockets. Here a request is one write and
a read of the status line, the headers and a body of known length (or chunks), on a connection
kept open for the next one. What it does not do (proxies from the environment, HTTP/2) is left
to httpx2, which the backend uses instead when a proxy applies (docs/ARCHITECTURE.md,
"LLM exchange").

Every read is bounded: headers at 64 KB, a body at the caller's cap (`BodyTooLarge` as soon as
it is known to be over, without reading the rest). The caller's deadline (asyncio.timeout)
covers everything; a connection interrupted mid-exchange is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

HEADER_LIMIT = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, size: int | None, cap: int) -> None:
        super().__init__(f"body over {cap} bytes")
        self.size, self.cap = size, cap


class ProtocolError(ConnectionError):
    """The server's bytes are not an HTTP/1.1 response."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class Pool:
    """Connections to one base URL, reused across requests."""

    def __init__(self, base_url: str, *, limit: int) -> None:
        u = urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host = u.hostname or ""
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        default = (self.https and self.port == 443) or (not self.https and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default else f"{host}:{self.port}"
        self.limit = limit
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._ssl = ssl.create_default_context() if self.https else None

    async def _connect(self):
        return await asyncio.open_connection(
            self.host, self.port, ssl=self._ssl, server_hostname=self.host if self.https else None,
            limit=HEADER_LIMIT,
        )  # fmt: skip

    def _take_idle(self):
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    async def post(self, path: str, body: bytes, headers: dict[str, str], cap: int, error_cap: int) -> Response:
        """POST `body` to prefix + path on an idle connection (one the server closed is dropped
        first: its end of stream has arrived) or a new one. A failure mid-exchange is the
        caller's to retry: the server may have seen the request."""
        head = [f"POST {self.prefix}{path} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        conn = self._take_idle() or await self._connect()
        return await self._exchange(conn, data, cap, error_cap)

    async def _exchange(self, conn, data: bytes, cap: int, error_cap: int) -> Response:
        reader, writer = conn
        keep = False
        started = False
        try:
            writer.write(data)
            await writer.drain()
            line = await reader.readuntil(b"\r\n")
            started = True
            resp, keep = await _read_response(reader, line, cap, error_cap)
            return resp
        except asyncio.LimitOverrunError:
            raise ProtocolError("the response headers are over 64 KB") from None
        except asyncio.IncompleteReadError:
            raise ConnectionResetError(
                "the server closed the connection mid-answer" if started else "no answer"
            ) from None
        finally:
            if keep and len(self._idle) < self.limit:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


async def _read_response(reader: asyncio.StreamReader, line: bytes, cap: int, error_cap: int) -> tuple[Response, bool]:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP response: {line[:60]!r}")
    status = int(parts[1])
    raw = await reader.readuntil(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for h in raw[:-4].split(b"\r\n"):
        k, sep, v = h.partition(b":")
        if sep:
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    limit = cap if 200 <= status < 300 else error_cap
    keep = parts[0] == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = await _read_chunked(reader, limit, 200 <= status < 300)
        return Response(status, headers, body), keep and complete
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError(f"Content-Length {length[:20]!r}")
        n = int(length)
        if n > limit:
            if 200 <= status < 300:
                raise BodyTooLarge(n, limit)
            return Response(status, headers, await reader.readexactly(limit)), False
        return Response(status, headers, await reader.readexactly(n)), keep
    # no length: the body ends with the connection
    body = await reader.read(limit + 1)
    chunks, size = [body], len(body)
    while body and size <= limit:
        body = await reader.read(limit + 1 - size)
        chunks.append(body)
        size += len(body)
    if size > limit and 200 <= status < 300:
        raise BodyTooLarge(None, limit)
    return Response(status, headers, b"".join(chunks)[:limit]), False


async def _read_chunked(reader: asyncio.StreamReader, limit: int, strict: bool) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            n = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {line[:20]!r}") from None
        if n == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the final CRLF
                pass
            return b"".join(chunks), True
        if size + n > limit:
            if strict:
                raise BodyTooLarge(None, limit)
            chunks.append(await reader.readexactly(limit - size))
            return b"".join(chunks), False
        chunks.append(await reader.readexactly(n))
        size += n
        await reader.readexactly(2)
