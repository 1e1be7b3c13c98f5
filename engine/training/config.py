"""Training configuration as two dataclasses; defaults are the Ego4D VSLNet reference's.

`TrainConfig.to_dict()` is JSON-able and `TrainConfig.from_dict(d)` reads it back (the run's
`config.json`). Unknown keys in a dict are a `ConfigError`, so a typo in a hand-edited config
is reported instead of silently ignored.

Reference values (EGO4D/episodic-memory NLQ/VSLNet `options.py`): dim 128, 8 heads, dropout
0.2, max_pos_len 128, highlight lambda 5.0, label extension 0.1, predictor "rnn", batch 32,
AdamW lr 1e-4 (weight decay 0.01, none on biases/LayerNorm), linear schedule with warmup
proportion 0.0, gradient clipping 1.0, seed 12345.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError

MODELS = ("vslnet", "vslbase")
PREDICTORS = ("rnn", "transformer")
STAGES = ("baseline", "pretrain", "finetune", "eval")
TEXT_ENCODERS = ("minilm", "bert", "glove")


@dataclass
class ModelConfig:
    """Shape of the network. `text_dim` is set from the text encoder (MiniLM: 384)."""

    model: str = "vslnet"  # "vslnet" | "vslbase" (no highlighting layer)
    dim: int = 128
    num_heads: int = 8
    drop_rate: float = 0.2
    max_pos_len: int = 128
    highlight_lambda: float = 5.0
    extend: float = 0.1  # highlight labels extend this fraction of the answer length each side
    predictor: str = "rnn"  # "rnn" (two LSTMs, reference default) | "transformer"
    video_dim: int = 256  # egovlp_fp16 features
    text_dim: int = 384  # MiniLM; set from the encoder
    conv_kernel: int = 7
    conv_layers: int = 4

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"model: {self.model!r} is not one of {', '.join(MODELS)}")
        if self.predictor not in PREDICTORS:
            raise ConfigError(f"predictor: {self.predictor!r} is not one of {', '.join(PREDICTORS)}")
        if self.dim <= 0 or self.num_heads <= 0 or self.dim % self.num_heads:
            raise ConfigError(f"dim ({self.dim}) must be a positive multiple of num_heads ({self.num_heads})")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError(f"drop_rate: {self.drop_rate} must be in [0, 1)")
        if self.max_pos_len < 1 or self.video_dim < 1 or self.text_dim < 1:
            raise ConfigError("max_pos_len, video_dim and text_dim must be positive")
        if self.extend < 0 or self.highlight_lambda < 0:
            raise ConfigError("extend and highlight_lambda must not be negative")


@dataclass
class TrainConfig:
    """One training / evaluation run. Paths are strings so the dict is JSON-able."""

    stage: str = "baseline"  # baseline | pretrain | finetune | eval
    data_root: str = ""
    features: str = "egovlp_fp16"  # folder under ROOT/v1/
    train_file: str = ""  # default: ROOT/v1/annotations/nlq_train.json
    val_file: str = ""  # default: ROOT/v1/annotations/nlq_val.json
    test_file: str = ""  # default: ROOT/v1/annotations/nlq_test_unannotated.json
    text_encoder: str = "minilm"  # minilm | bert | glove
    text_path: str = ""  # bert: model folder or hub id in the HF cache; glove: the .txt file
    freeze_text: bool = True
    text_lr_mult: float = 0.1  # lr of an unfrozen text encoder, relative to lr
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_proportion: float = 0.0
    clip_norm: float = 1.0
    seed: int = 12345
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    eval_every_steps: int = 0  # 0: evaluate at the end of every epoch
    init_from: str | None = None  # checkpoint to start from (finetune / eval)
    keep_empty_windows: bool = False
    naq_jitter: bool = False  # NaQ-style random widening/shifting of answer windows
    bf16: bool = True  # autocast to bfloat16; only used on a GPU
    num_workers: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)

    def validate(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage: {self.stage!r} is not one of {', '.join(STAGES)}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder: {self.text_encoder!r} is not one of {', '.join(TEXT_ENCODERS)}")
        if self.text_encoder == "glove" and not self.text_path:
            raise ConfigError("text_encoder glove needs text_path: the GloVe .txt file")
        if self.text_encoder == "glove" and not self.freeze_text:
            raise ConfigError("text_encoder glove has no weights to train: keep freeze_text on")
        if self.epochs < 0 or self.batch_size < 1:
            raise ConfigError("epochs must be >= 0 and batch_size >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.clip_norm < 0 or self.text_lr_mult < 0:
            raise ConfigError("lr must be > 0; weight_decay, clip_norm, text_lr_mult >= 0")
        if not 0.0 <= self.warmup_proportion < 1.0:
            raise ConfigError(f"warmup_proportion: {self.warmup_proportion} must be in [0, 1)")
        if self.eval_every_steps < 0 or self.num_workers < 0:
            raise ConfigError("eval_every_steps and num_workers must not be negative")
        self.model.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        model = _build(ModelConfig, data.pop("model", None) or {}, "model.")
        cfg = _build(cls, data, "")
        cfg.model = model
        return cfg


def _build(cls, data: dict[str, Any], prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(prefix + k for k in unknown)}")
    return cls(**data)
