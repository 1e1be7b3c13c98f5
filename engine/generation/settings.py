"""Generation settings: every number a user can set for a backend, checked in one place.

Each field carries its flag name, its range and a help line in the dataclass metadata, so the
CLI and the Generate screen build their flags and fields from `SETTINGS_FIELDS` and a bad
value gives one `ConfigError` line naming the flag (docs/ARCHITECTURE.md, "Generation").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlparse

from engine.errors import ConfigError

MB = 1 << 20


def _num(flag: str, lo: float, hi: float, *, lo_open: bool = False, integer: bool = False, help: str = "") -> dict:
    return {"flag": flag, "lo": lo, "hi": hi, "lo_open": lo_open, "integer": integer, "help": help}


@dataclass(frozen=True)
class GenerationSettings:
    """What a backend needs; `validated()` raises ConfigError naming the flag of a bad value."""

    backend: str = "template"
    model: str | None = None
    base_urls: tuple[str, ...] = ()
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = field(default=8, metadata=_num("--concurrency", 1, 4096, integer=True,
                                                      help="requests in flight (openai)"))  # fmt: skip
    timeout: float = field(default=120.0, metadata=_num("--timeout", 0, 86400, lo_open=True,
                                                        help="seconds per request, reading and decoding included"))  # fmt: skip
    max_retries: int = field(default=5, metadata=_num("--max-retries", 0, 100, integer=True,
                                                      help="retries per request"))  # fmt: skip
    max_tokens: int = field(default=1024, metadata=_num("--max-tokens", 1, 1_000_000, integer=True,
                                                        help="answer length limit in tokens"))  # fmt: skip
    temperature: float | None = field(default=0.7, metadata=_num("--temperature", 0, 2, help="sampling temperature"))
    structured: bool = True
    price_in: float | None = field(default=None, metadata=_num("--price-in", 0, 1e6,
                                                               help="USD per 1M prompt tokens"))  # fmt: skip
    price_out: float | None = field(default=None, metadata=_num("--price-out", 0, 1e6,
                                                                help="USD per 1M completion tokens"))  # fmt: skip
    batch_size: int | None = field(default=None, metadata=_num("--batch-size", 1, 4096, integer=True,
                                                               help="groups per generate() call (hf)"))  # fmt: skip
    max_response_bytes: int = field(default=MB, metadata=_num("--max-response-bytes", 1024, 1 << 30, integer=True,
                                                              help="largest answer read from the server"))  # fmt: skip
    device: str | None = None

    def validated(self) -> GenerationSettings:
        for f in fields(self):
            meta = f.metadata
            if "flag" in meta:
                _check_number(dict(meta), getattr(self, f.name))
        if self.backend not in ("template", "openai", "hf"):
            raise ConfigError(f"--backend {self.backend!r} is unknown: choose template, openai or hf")
        urls = tuple(check_base_url(u) for u in self.base_urls)
        return replace(self, base_urls=urls)

    @classmethod
    def with_price_per_1k(cls, price_per_1k: float | None, **kw) -> GenerationSettings:
        """The old single price per 1,000 tokens, as the same price per 1M for both directions."""
        if price_per_1k is not None:
            _check_number(_num("--price-per-1k", 0, 1e3), price_per_1k)
            kw.setdefault("price_in", price_per_1k * 1000)
            kw.setdefault("price_out", price_per_1k * 1000)
        return cls(**kw)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for these tokens, None when no price is set."""
        if self.price_in is None and self.price_out is None:
            return None
        return (prompt_tokens * (self.price_in or 0.0) + completion_tokens * (self.price_out or 0.0)) / 1e6


SETTINGS_FIELDS = {f.name: dict(f.metadata) for f in fields(GenerationSettings) if "flag" in f.metadata}


def bound_text(x: float) -> str:
    """A range's end as a person reads it: 1,099,511,627,776, not 1.09951e+12."""
    return f"{int(x):,}" if math.isfinite(x) and x == int(x) else f"{x:g}"


def _check_number(meta: dict, value) -> None:
    if value is None:
        return
    flag, lo, hi = meta["flag"], meta["lo"], meta["hi"]
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad:
        bad = not math.isfinite(value) or value < lo or value > hi or (meta["lo_open"] and value <= lo)
        bad = bad or (meta["integer"] and float(value) != int(value))
    if bad:
        low = f"> {bound_text(lo)}" if meta["lo_open"] else f">= {bound_text(lo)}"
        kind = "a whole number" if meta["integer"] else "a number"
        raise ConfigError(f"{flag} must be {kind} {low} and <= {bound_text(hi)}, got {value!r}")


def check_base_url(url: str) -> str:
    """The URL without a trailing slash; one ConfigError line for anything malformed."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("--base-url is empty: give an http(s) URL such as http://localhost:8000/v1")
    u = url.strip().rstrip("/")
    try:
        parts = urlparse(u)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ConfigError(f"--base-url {u!r} is malformed ({exc}); e.g. http://localhost:8000/v1") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {u!r} is not an http(s) URL with a host (e.g. http://localhost:8000/v1)")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in u):
        raise ConfigError(f"--base-url {u!r} contains spaces or control characters")
    return u
