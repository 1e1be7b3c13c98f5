"""The local backend: a transformers causal LM from a folder (e.g. Llama-3-8B-Instruct).

The chat template of the model's tokenizer turns the messages into a prompt; requests are
generated in batches (left padding) on the GPU when there is one, in 4-bit when bitsandbytes
is installed (as the original notebook ran Llama-3-8B-Instruct), else in bf16 / fp32. A batch
that runs out of GPU memory is split in halves and retried; a single request that still does
not fit fails with reason "oom". Generation runs in a thread so the event loop (and the TUI)
stays responsive.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.generation.base import Backend, Reply, Request


def _fallback_prompt(messages: list[dict]) -> str:
    parts = [f"{m['role'].upper()}:\n{m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nASSISTANT:\n"


class HFBackend(Backend):
    name = "hf"
    concurrency = 1  # one model, one generate() at a time; batching gives the throughput

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = 8,
        max_new_tokens: int = 1024,
        device: str | None = None,
        temperature: float | None = None,
        load_in_4bit: bool | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ConfigError(f"{path}: not a transformers model folder (no config.json); pass --model PATH")
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
        self.path = path
        self.model = path.name
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.temperature = temperature
        self.load_in_4bit = load_in_4bit
        self._tok: Any = None  # transformers objects, loaded on first use
        self._model: Any = None
        self.quantized = False

    def describe(self) -> str:
        return f"hf:{self.path}"

    # loading ----------------------------------------------------------------------------------
    def load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = device
        tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        tok.padding_side = "left"  # decoder-only: new tokens follow the prompt directly
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        kwargs: dict = {"local_files_only": True}
        want_4bit = self.load_in_4bit
        if want_4bit is None:
            want_4bit = device.startswith("cuda") and importlib.util.find_spec("bitsandbytes") is not None
        if want_4bit:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4"
            )
            kwargs["device_map"] = {"": device}
            self.quantized = True
        elif device.startswith("cuda"):
            kwargs["dtype"] = torch.bfloat16
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot load the model ({' '.join(str(exc).split())[:160]})") from None
        if not want_4bit:
            model = model.to(device)
        model.eval()
        self._tok, self._model = tok, model

    def prompt_text(self, messages: list[dict]) -> str:
        tok = self._tok
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return _fallback_prompt(messages)

    # generating -------------------------------------------------------------------------------
    async def complete(self, requests: list[Request]) -> list[Reply]:
        return await asyncio.to_thread(self._generate_all, requests)

    def _generate_all(self, requests: list[Request]) -> list[Reply]:
        self.load()
        out: list[Reply] = []
        for i in range(0, len(requests), self.batch_size):
            out.extend(self._generate(requests[i : i + self.batch_size]))
        return out

    def _generate(self, requests: list[Request]) -> list[Reply]:
        import torch

        t0 = time.monotonic()
        tok, model = self._tok, self._model
        prompts = [self.prompt_text(r.messages) for r in requests]
        try:
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            sample = bool(self.temperature and self.temperature > 0)
            gen_kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=sample, pad_token_id=tok.pad_token_id)
            if sample and self.temperature is not None:
                gen_kwargs["temperature"] = float(self.temperature)
            with torch.inference_mode():
                seq = model.generate(**enc, **gen_kwargs)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(requests) == 1:
                return [Reply(error="oom", error_detail="out of GPU memory for one request; lower --max-tokens")]
            half = len(requests) // 2
            return self._generate(requests[:half]) + self._generate(requests[half:])
        new = seq[:, enc["input_ids"].shape[1] :]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        pad = tok.pad_token_id
        gen_lens = (new != pad).sum(dim=1).tolist() if pad is not None else [new.shape[1]] * len(texts)
        took = (time.monotonic() - t0) / max(1, len(requests))
        return [
            Reply(text=t, prompt_tokens=int(p), completion_tokens=int(g), seconds=took)
            for t, p, g in zip(texts, prompt_lens, gen_lens)
        ]

    async def aclose(self) -> None:
        # The model stays loaded: a TUI dry run followed by a real run should not load it twice.
        return None
