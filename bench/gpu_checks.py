"""The GPU checks, in one short run: training epoch, HF backend tokens/s, MiniLM checks' rate.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu_checks.py [--device cuda] [--quick]

Prepared so that a session lent a GPU runs every GPU figure of the README's table in one call
(a few minutes on one GPU; the machine's time is scarce). Printed, nothing asserted:

1. One full-size training epoch: 11.3K queries of 256-d features (the official train split's
   size), bf16 autocast, batch 32, at the schedule rule's width (bench_train_throughput's
   `epoch_figure`). DDP with 2 processes needs 2 GPUs; with one, that line says so.
2. The HF backend's completion tokens/s at batch 1, 8 and 32, with a small Llama built from a
   config (random weights, offline: no model hub), through the backend's own `complete`.
3. The quality checks' MiniLM embedding rate (questions/s) on the device, at the checks'
   own batch size.

`--device cpu --quick` runs the same code small on a CPU, to check the script before a GPU run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import torch  # noqa: E402


def tiny_llama(path: Path, hidden: int, layers: int) -> Path:
    """A small random Llama and a byte-level BPE tokenizer with a chat template, saved to `path`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    from engine.generation.prompt import DEFAULT_PROMPT

    hf_logging.disable_progress_bar()
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [DEFAULT_PROMPT.system, DEFAULT_PROMPT.user, "#C C picks up the knife from the table"] * 4
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tok.save_pretrained(path)
    torch.manual_seed(0)
    heads = max(2, hidden // 64)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def hf_tokens_per_s(device: str, batches: list[int], new_tokens: int, hidden: int, layers: int) -> list[str]:
    from engine.generation.base import Request
    from engine.generation.hf_backend import HFBackend
    from engine.generation.prompt import DEFAULT_PROMPT

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_llama(Path(tmp), hidden, layers)
        texts = ["#C C picks up the knife from the table", "#C C opens the fridge", "#C C washes a cup"] * 3
        msgs = DEFAULT_PROMPT.messages(texts)
        for bs in batches:
            backend = HFBackend(str(model), batch_size=bs, max_new_tokens=new_tokens, device=device, temperature=0.0)
            reqs = [Request(f"g{i}", msgs, texts, []) for i in range(bs)]
            asyncio.run(backend.complete(reqs[:1]))  # warm-up: load, kernels
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            replies = asyncio.run(backend.complete(reqs))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            tokens = sum(r.completion_tokens for r in replies)
            lines.append(
                f"HF backend ({device}, Llama {layers} x {hidden} from a config, random weights), batch {bs}: "
                f"{tokens / dt:,.0f} completion tokens/s ({tokens} tokens in {dt:.2f} s, prompt "
                f"{replies[0].prompt_tokens} tokens)"
            )
    return lines


def checks_rate(device: str, n: int) -> str:
    from engine.generation.quality import QualityChecker

    checker = QualityChecker(embeddings=True, device=device)
    texts = [f"where did I put the {w} number {i}?" for i, w in zip(range(n), ["knife", "cup", "phone", "keys"] * n)]
    checker.embed(texts[:64])  # warm-up: load the encoder
    t0 = time.perf_counter()
    checker.embed(texts)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return f"checks' MiniLM embeddings on {device}: {n / dt:,.0f} questions/s ({n} questions in {dt:.2f} s)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="small sizes: a check of the script on a CPU")
    args = ap.parse_args()
    dev = args.device
    print(f"device {dev}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if dev.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}")
        from bench_train_throughput import epoch_figure

        print(epoch_figure(dev))
        if torch.cuda.device_count() < 2:
            print("DDP with 2 processes: not run (one GPU)")
        else:
            print("DDP with 2 processes: run `torchrun --nproc_per_node 2 -m nlq_tui.cli train ...` (see README)")
    else:
        print("training epoch: needs CUDA (bf16 autocast on a GPU); bench_train_throughput.py has the CPU figure")
    quick = args.quick
    batches = [1, 8] if quick else [1, 8, 32]
    for line in hf_tokens_per_s(dev, batches, 16 if quick else 128, 64 if quick else 512, 1 if quick else 8):
        print(line)
    print(checks_rate(dev, 256 if quick else 20_000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
