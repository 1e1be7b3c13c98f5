"""A tiny, fast training set-up for the loop, runs and CLI tests.

A small `nlq-tui sample` tree (real Ego4D layout and features) and a GloVe file covering its
queries' words (random 16-d vectors), so tests train a dim-16 VSLNet without loading MiniLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

GLOVE_DIM = 16
# Tiny models on a shared 2-core box: one torch thread is ~10x faster than two fighting.
THREADS_ENV = {"NLQ_TORCH_THREADS": "1"}
TINY_MODEL = {"dim": 16, "num_heads": 2, "conv_layers": 2}


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """In-process training on one torch thread (THREADS_ENV), the count restored afterwards.

    Autouse in the modules that import it: `from training_fixtures import one_torch_thread`.
    """
    import torch

    for k, v in THREADS_ENV.items():
        monkeypatch.setenv(k, v)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def make_sample(root: Path, videos: int = 8) -> Path:
    from engine.sample import write_sample

    write_sample(root, videos=videos)
    return root


def make_glove(root: Path, out: Path) -> Path:
    """A GloVe text file with a vector for every word of the tree's queries."""
    from engine.training.text import glove_tokens

    words: set[str] = set()
    for name in ("nlq_train.json", "nlq_val.json", "nlq_test_unannotated.json"):
        data = json.loads((root / "v1" / "annotations" / name).read_text())
        for v in data["videos"]:
            for c in v["clips"]:
                for a in c["annotations"]:
                    for q in a["language_queries"]:
                        words.update(glove_tokens(q.get("query") or ""))
    rng = np.random.default_rng(0)
    lines = [w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=GLOVE_DIM)) for w in sorted(words)]
    out.write_text("\n".join(lines) + "\n")
    return out


def tiny_config(root: Path, glove: Path, **kw):
    """A TrainConfig that trains in about a second on a CPU."""
    from engine.training.config import ModelConfig, TrainConfig

    model = ModelConfig(**{**TINY_MODEL, **kw.pop("model", {})})
    base = dict(
        data_root=str(root),
        text_encoder="glove",
        text_path=str(glove),
        epochs=2,
        batch_size=8,
        device="cpu",
        seed=7,
        model=model,
    )
    base.update(kw)
    return TrainConfig(**base)


def tiny_cli_args(root: Path, glove: Path) -> list[str]:
    return [
        "--data",
        str(root),
        "--text-encoder",
        "glove",
        "--text-path",
        str(glove),
        "--dim",
        "16",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ]
