"""A backend from user settings: the one place the CLI and the Generate screen build one."""

from __future__ import annotations

from engine.errors import ConfigError
from engine.generation.base import Backend
from engine.generation.settings import MB, GenerationSettings


def make_backend(
    name: str,
    *,
    model: str | None = None,
    base_urls: list[str] | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int | None = None,
    timeout: float = 120.0,
    max_retries: int = 5,
    price_per_1k: float | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
    batch_size: int | None = None,
    max_tokens: int = 1024,
    temperature: float | None = 0.7,
    structured: bool = True,
    device: str | None = None,
    max_response_bytes: int = MB,
) -> Backend:
    """A backend by name, from CLI / screen settings. Raises ConfigError naming the bad flag."""
    settings = GenerationSettings.with_price_per_1k(
        price_per_1k,
        backend=name,
        model=model,
        base_urls=tuple(base_urls or ()),
        api_key_env=api_key_env,
        concurrency=8 if concurrency is None else concurrency,
        timeout=timeout,
        max_retries=max_retries,
        max_tokens=max_tokens,
        temperature=temperature,
        structured=structured,
        price_in=price_in,
        price_out=price_out,
        batch_size=batch_size,
        max_response_bytes=max_response_bytes,
        device=device,
    )
    return backend_from(settings)


def backend_from(settings: GenerationSettings) -> Backend:
    s = settings.validated()
    if s.backend == "template":
        from engine.generation.template import TemplateBackend

        return TemplateBackend()
    if s.backend == "openai":
        from engine.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(
            s.model or "",
            list(s.base_urls) or None,
            api_key_env=s.api_key_env,
            concurrency=int(s.concurrency),
            timeout=float(s.timeout),
            max_retries=int(s.max_retries),
            price_in=s.price_in,
            price_out=s.price_out,
            max_tokens=int(s.max_tokens),
            temperature=s.temperature,
            structured=s.structured,
            max_response_bytes=int(s.max_response_bytes),
        )
    if not s.model:
        raise ConfigError("the hf backend needs --model PATH (a local transformers model folder)")
    from engine.generation.hf_backend import HFBackend

    b = HFBackend(s.model, batch_size=int(s.batch_size or 8), max_new_tokens=int(s.max_tokens), device=s.device,
                  temperature=s.temperature)  # fmt: skip
    b.set_prices(s.price_in, s.price_out)
    return b
