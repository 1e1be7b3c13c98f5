"""The one small interface every generation backend implements.

The pipeline hands a backend a batch of requests (one per group: the exact chat messages plus
the group's narrations) and gets back one `Reply` per request, in order. A reply carries the
answer text (or, for the template backend, the already-structured answer), token usage and,
when the request failed for good, the failure reason. The pipeline never knows which backend
it drives: it only reads `batch_size` and `concurrency` to decide how to feed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    group_key: str
    messages: list[dict]  # [{"role": "system"|"user", "content": str}]
    narrations: list[str]  # the group's narration texts, numbered 1..k in the user message
    flags: list[int] = field(default_factory=list)  # engine.index FLAG_* bits per narration


@dataclass
class Reply:
    text: str | None = None  # the raw answer text, None when the request failed
    parsed: Any = None  # an already-structured answer, skips text parsing
    items: list[tuple[int, str]] | None = None  # [(narration number, query)]: skips all parsing (template)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    seconds: float = 0.0
    error: str | None = None  # failure reason key ("rate_limited", "timeout", ...) when failed for good
    error_detail: str = ""
    retry_reasons: list[str] = field(default_factory=list)  # one key per retried attempt
    raw_length: int | None = None  # characters of the answer before anything was cut

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Backend:
    """Base class: subclasses set `name`, `model` and implement `complete`."""

    name = "base"
    model = ""
    batch_size = 1  # requests per `complete` call
    concurrency = 1  # `complete` calls in flight at once
    price_in: float | None = None  # USD per 1M prompt tokens (optional, gives a running cost)
    price_out: float | None = None  # USD per 1M completion tokens
    needs_messages = True  # False: the backend reads only the narrations (template)

    def set_prices(self, price_in=None, price_out=None, price_per_1k=None) -> None:
        """Prices per 1M tokens; the older single `price_per_1k` counts for both directions."""
        if price_per_1k is not None:
            price_in = price_per_1k * 1000 if price_in is None else price_in
            price_out = price_per_1k * 1000 if price_out is None else price_out
        self.price_in, self.price_out = price_in, price_out

    def paid(self) -> bool:
        """Whether requests cost money (a remote endpoint): the app asks before a large job."""
        return False

    async def complete(self, requests: list[Request]) -> list[Reply]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections / models. Safe to call twice."""

    def describe(self) -> str:
        return f"{self.name}:{self.model}" if self.model else self.name

    def cost(self, prompt_tokens: int, completion_tokens: int = 0) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (prompt_tokens * (self.price_in or 0.0) + completion_tokens * (self.price_out or 0.0)) / 1e6
