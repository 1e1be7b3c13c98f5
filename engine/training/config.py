"""Training configuration: two dataclasses whose fields each declare one setting (docs/ARCHITECTURE.md, "Runs").

Every field carries a `Setting` in its metadata: one-line help, the form field's label, the
flag (`--lr`), choices, range, the stages it applies to, and whether the schedule rule picks it
when the user leaves it unset (`auto`). The `nlq-tui train` flags, the Train form's fields and
the settings table (`settings_markdown()`, `python -m engine.training.config`) are generated
from it, and `TrainConfig.from_user(values)` turns what a user typed into a checked config.

`TrainConfig.to_dict()` is JSON-able and `TrainConfig.from_dict(d)` reads it back (the run's
`config.json`). Unknown keys are a `ConfigError`, so a typo in a hand-edited config is reported.

The schedule rule (`auto_schedule(n, stage)`): with no tuning flags the width, learning rate,
dropout, epochs and evaluations per epoch follow the training set's size n. At n <= 300 (the
bundled sample) they are settings that learn there (width 64, no dropout, lr 6e-3,
30 epochs, chosen by a sweep on sample_data); at n >= 11,000 (the official Ego4D train split) they are the reference's
(EGO4D/episodic-memory NLQ/VSLNet: width 128, dropout 0.2, lr 1e-4, 200 epochs as its README's
training command, evaluation twice per epoch); in between, lr and epochs are geometric and
dropout linear in log n, the width steps from 64 to 128 halfway. A pretrain run makes an
eighth of the epochs at 2.8x the lr and an eighth of the dropout (its file is synthetic and
large; it only has to give the finetune a start) and a finetune a quarter of the lr (it starts from trained weights).

Defaults that differ from the reference, and why (each Setting's `reference` and `why`):
- `text_encoder` minilm (reference: bert-base-uncased): MiniLM ships with the project and runs
  offline; `--text-encoder bert --text-path bert-base-uncased` is the reference's.
- `predictor` rnn: the reference's options.py default; its README's Ego4D command passes
  `--predictor bert`, which selects BERT query features AND the transformer span predictor
  (any value but "rnn" does); `--text-encoder bert --text-mode live --predictor transformer`
  is that command. The LSTMs train about twice as fast on a CPU.
- `text_mode` cached (reference: live): the frozen encoder's eval-mode features of each
  distinct query are computed once; the reference runs BERT in train mode every step (dropout
  on, weights frozen), 10-50x the text cost per step on a CPU. `--text-mode live` does that.
- `best_ties` first (reference: last, `>=`): on a small val set R1@0.3 ties often, and the
  earliest of equal checkpoints has seen the least data; `--best-ties last` is the reference's.
- `drop_empty_windows` off, as the reference (its `--remove_empty_queries_from train` drops
  queries shorter than 1/30 s; ours drops windows empty on the 1.875 rows/s feature grid).
- the settings the rule picks: see above; every flag overrides.
- `epochs` 10 and `evals_per_epoch` 1 are only the defaults of a config built in code
  (`TrainConfig()`); `from_user` leaves them to the rule, which gives the reference's 200 and 2
  on the official split.
- `threads` 0 (pick from the idle cores; the reference leaves torch's default of one per core,
  which on a shared CPU box runs slower than one thread).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.ego4d.layout import DEFAULT_FEATURES
from engine.errors import ConfigError

MODELS = ("vslnet", "vslbase")
PREDICTORS = ("rnn", "transformer")
STAGES = ("baseline", "pretrain", "finetune")
TEXT_ENCODERS = ("minilm", "bert", "glove")
TEXT_MODES = ("cached", "live")
BEST_TIES = ("first", "last")
ALL = STAGES
_SAME = object()  # Setting.reference when ours equals the reference's
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class Setting:
    """How one config field is shown, parsed and checked (the field's `metadata["setting"]`)."""

    help: str
    label: str = ""  # the form field's name; default: the field name with spaces
    flag: str = ""  # default: "--" + the field name with dashes
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # True: the value must be > lo (else >= lo)
    hi_open: bool = False
    stages: tuple[str, ...] = ALL
    group: str = "schedule"  # data | text | model | schedule | eval | run
    auto: bool = False  # left unset, the schedule rule picks it
    cli: bool = True  # False: derived (video_dim), not a flag or form field
    invert: bool = False  # a bool whose flag sets False (--unfreeze-text for freeze_text)
    metavar: str | None = None
    reference: Any = _SAME
    why: str = ""


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A dataclass field with its Setting."""
    meta = {"setting": Setting(**kw)}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    """Shape of the network. `text_dim` is set from the text encoder, `video_dim` from the features."""

    model: str = setting(
        "vslnet", help="VSLNet, or VSLBase (no highlighting layer)", choices=MODELS, group="model", label="model"
    )
    dim: int = setting(128, help="model width", lo=1, group="model", auto=True, label="model width")
    num_heads: int = setting(8, help="attention heads (dim must be a multiple)", lo=1, group="model", label="heads")
    drop_rate: float = setting(0.2, help="dropout", lo=0.0, hi=1.0, hi_open=True, group="model", auto=True)
    max_pos_len: int = setting(
        128, help="clips longer than this many feature rows are mean-pooled to it", lo=1, group="model"
    )
    highlight_lambda: float = setting(5.0, help="weight of the highlighting loss", lo=0.0, group="model")
    extend: float = setting(
        0.1, help="highlight labels extend this fraction of the answer each side", lo=0.0, group="model"
    )
    predictor: str = setting(
        "rnn",
        help="span predictor: two LSTMs (rnn) or the shared transformer encoder (the reference's --predictor "
        "transformer)",
        choices=PREDICTORS,
        group="model",
        reference="transformer",
        why="the README's Ego4D command (--predictor bert) takes the transformer branch; options.py's default is "
        "rnn, which trains about twice as fast on a CPU",
    )
    video_dim: int = setting(256, help="video feature width (from the feature files)", lo=1, cli=False)
    text_dim: int = setting(384, help="query feature width (from the text encoder)", lo=1, cli=False)
    conv_kernel: int = setting(7, help="depthwise convolution kernel", lo=1, group="model")
    conv_layers: int = setting(4, help="convolution layers per encoder", lo=1, group="model")

    def validate(self) -> None:
        check_fields(self)
        if self.dim % self.num_heads:
            raise ConfigError(f"dim ({self.dim}) must be a positive multiple of num_heads ({self.num_heads})")


# fields a finetune takes from its pretrain run: the weights only fit these
MODEL_SHAPE = ("model", "dim", "num_heads", "max_pos_len", "predictor", "conv_kernel", "conv_layers")
INHERITED = ("features", "text_encoder", "text_path", "freeze_text", "batch_size", "seed", "device")


@dataclass
class TrainConfig:
    """One training / evaluation run. Paths are strings so the dict is JSON-able."""

    stage: str = setting(
        "baseline",
        help="baseline: the official train split; pretrain: an exported NLQ file (--train-file, default the newest "
        "in WS/exports); finetune: the official train split from --from RUN's best.pt",
        choices=STAGES,
        group="run",
    )
    data_root: str = setting(
        "", help="Ego4D root (default: the workspace's, else sample_data/)", flag="--data", metavar="ROOT", group="data"
    )
    features: str = setting(
        DEFAULT_FEATURES,
        help="feature folder under ROOT/v1; unset: the workspace's choice, else this default",
        metavar="NAME",
        group="data",
    )
    train_file: str = setting(
        "", help="an NLQ-format training file (default: the root's nlq_train.json)", metavar="FILE", group="data"
    )
    val_file: str = setting("", help="the val file (default: the root's nlq_val.json)", metavar="FILE", group="data")
    test_file: str = setting(
        "", help="the test file (default: the root's nlq_test_unannotated.json)", metavar="FILE", group="data"
    )
    drop_empty_windows: bool = setting(
        False,
        help="leave out training queries whose answer is empty on the feature grid (the reference trains them "
        "towards position 0); val always counts every query",
        group="data",
        label="drop empty windows",
    )
    naq_jitter: bool = setting(
        False, help="NaQ-style random widening/shifting of answer windows", group="data", label="NaQ jitter"
    )
    text_encoder: str = setting(
        "minilm",
        help="query features: minilm (bundled, offline), bert (--text-path: a folder or cached hub id), glove",
        choices=TEXT_ENCODERS,
        group="text",
        reference="bert",
        why="MiniLM ships with the project and runs offline",
    )
    text_path: str = setting(
        "", help="bert: a model folder or cached hub id; glove: the vectors .txt", metavar="P", group="text"
    )
    text_mode: str = setting(
        "cached",
        help="cached: the frozen encoder in eval mode, each distinct query encoded once; live: the frozen encoder "
        "runs every training step in train mode, dropout on (the reference's BERT)",
        choices=TEXT_MODES,
        group="text",
        reference="live",
        why="the same eval-mode features computed again every step cost 10-50x the text time on a CPU",
    )
    freeze_text: bool = setting(
        True, help="train the text encoder too (bert/minilm)", flag="--unfreeze-text", invert=True, group="text"
    )
    text_lr_mult: float = setting(0.1, help="lr of an unfrozen text encoder, relative to lr", lo=0.0, group="text")
    epochs: int = setting(10, help="epochs", lo=0, auto=True)
    batch_size: int = setting(32, help="batch size", lo=1)
    lr: float = setting(1e-4, help="learning rate (AdamW)", lo=0.0, lo_open=True, auto=True, label="learning rate")
    weight_decay: float = setting(0.01, help="AdamW weight decay (never on biases and LayerNorm)", lo=0.0)
    adam_eps: float = setting(1e-6, help="AdamW epsilon (the reference's transformers AdamW)", lo=0.0, lo_open=True)
    warmup_proportion: float = setting(
        0.0, help="linear warm-up over this share of the steps", flag="--warmup", lo=0.0, hi=1.0, hi_open=True
    )
    clip_norm: float = setting(1.0, help="gradient clipping norm (0: off)", lo=0.0)
    seed: int = setting(12345, help="random seed")
    device: str = setting(
        "auto", help="where to train: auto (the GPU if any), cpu, cuda or cuda:N", metavar="DEV", group="run"
    )
    threads: int = setting(
        0,
        help="torch CPU threads (0: as many as cores are idle)",
        lo=0,
        group="run",
        reference="torch's default",
        why="one thread per core runs slower than one on a shared CPU",
    )
    bf16: bool = setting(True, help="no bf16 autocast on the GPU", flag="--no-bf16", invert=True, group="run")
    eval_every_steps: int = setting(
        0, help="evaluate every STEPS steps instead of per epoch (0: per epoch)", flag="--eval-every", lo=0,
        metavar="STEPS", group="eval",
    )  # fmt: skip
    evals_per_epoch: int = setting(
        1,
        help="evaluations per epoch (2: every half epoch and at its end, as the reference)",
        lo=1,
        auto=True,
        group="eval",
    )
    best_ties: str = setting(
        "first",
        help="which of equal val R1@0.3 evaluations best.pt keeps: first (>) or last (>=, the reference)",
        choices=BEST_TIES,
        group="eval",
        reference="last",
        why="on a small val set R1@0.3 ties often; the first of equals has seen the least data",
    )
    init_from: str | None = setting(None, help="checkpoint to start from (finetune / eval)", cli=False)
    auto: list[str] = setting(factory=list, help="settings the schedule rule picks (left unset)", cli=False)
    schedule: dict = setting(factory=dict, help="what the schedule rule chose, and from what", cli=False)
    model: ModelConfig = field(default_factory=ModelConfig)

    def validate(self) -> None:
        check_fields(self)
        if self.text_encoder == "glove" and not self.text_path:
            raise ConfigError("--text-encoder glove needs --text-path: the GloVe .txt file")
        if self.text_encoder == "glove" and not self.freeze_text:
            raise ConfigError("--text-encoder glove has no weights to train: leave out --unfreeze-text")
        if self.text_mode == "live" and self.text_encoder == "glove":
            raise ConfigError("--text-mode live runs a transformer encoder each step: use it with minilm or bert")
        if not DEVICE_RE.match(self.device or ""):
            raise ConfigError(f"--device / the device field: {self.device!r}: use auto, cpu, cuda or cuda:N")
        unknown = sorted(set(self.auto) - set(AUTO_SETTINGS))
        if unknown:
            raise ConfigError(f"auto: {', '.join(unknown)} are not settings the schedule rule picks")
        self.model.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        if "keep_empty_windows" in data:  # config.json of runs made before drop_empty_windows
            data.setdefault("drop_empty_windows", not data.pop("keep_empty_windows"))
        data.pop("num_workers", None)
        model = _build(ModelConfig, data.pop("model", None) or {}, "model.")
        cfg = _build(cls, data, "")
        cfg.model = model
        return cfg

    @classmethod
    def from_user(cls, values: Mapping[str, Any], *, source: TrainConfig | None = None) -> TrainConfig:
        """A checked config from what a user set (flags, form fields): {setting name: value}.

        None and "" mean "not set": the default, or for a setting the schedule rule picks, left to
        the rule (listed in `auto`; the trainer resolves it with the real train set size).
        Strings are parsed by the setting's type (the form sends text). `source` is a finetune's
        pretrain config: its features, text encoder, batch, seed, device and model shape are kept.
        Errors are one ConfigError line naming the flag and the form field.
        """
        infos = {i.name: i for i in settings(include_derived=True)}
        given: dict[str, Any] = {}
        for name, raw in values.items():
            info = infos.get(name)
            if info is None:
                raise ConfigError(f"unknown training setting {name!r}")
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            given[name] = info.parse(raw)
        cfg = cls()
        if source is not None:
            for name in INHERITED:
                setattr(cfg, name, getattr(source, name))
            for name in MODEL_SHAPE + ("video_dim", "text_dim"):
                setattr(cfg.model, name, getattr(source.model, name))
            for name in MODEL_SHAPE:
                if name in given and given[name] != getattr(source.model, name):
                    info = infos[name]
                    raise ConfigError(
                        f"{info.where}: a finetune keeps its pretrain run's model shape "
                        f"({name} {getattr(source.model, name)}); leave it unset"
                    )
        for name, value in given.items():
            info = infos[name]
            target = cfg.model if info.path.startswith("model.") else cfg
            setattr(target, name, value)
        kept = set(MODEL_SHAPE) if source is not None else set()
        cfg.auto = [n for n in AUTO_SETTINGS if n not in given and n not in kept]
        cfg.validate()
        return cfg


def _build(cls, data: dict[str, Any], prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(prefix + k for k in unknown)}")
    return cls(**data)


# ---------------------------------------------------------------------------------------------
# the settings, as data


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "str | None": str, "list[str]": list, "dict": dict}


@dataclass(frozen=True)
class SettingInfo:
    """One setting: its flat `name`, `path` ("model.dim" for ModelConfig fields), type, default and Setting."""

    name: str
    path: str
    type: type
    default: Any
    setting: Setting

    @property
    def flag(self) -> str:
        return self.setting.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.setting.label or self.name.replace("_", " ")

    @property
    def where(self) -> str:
        """How an error names the setting: the flag and the form field."""
        return f"{self.flag} / the {self.label} field"

    def parse(self, raw: Any) -> Any:
        """`raw` (a typed value or the form's text) as this setting's type, range and choices checked."""
        value = _coerce(self, raw)
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        s = self.setting
        if value is None and self.default is None:
            return
        if s.choices is not None and value not in s.choices:
            raise ConfigError(f"{self.where}: {value!r} is not one of {', '.join(map(str, s.choices))}")
        if self.type in (int, float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{self.where}: {value} is not a finite number")
            if s.lo is not None and (value <= s.lo if s.lo_open else value < s.lo):
                raise ConfigError(f"{self.where}: {value} must be {'>' if s.lo_open else '>='} {s.lo:g}")
            if s.hi is not None and (value >= s.hi if s.hi_open else value > s.hi):
                raise ConfigError(f"{self.where}: {value} must be {'<' if s.hi_open else '<='} {s.hi:g}")

    def describe_range(self) -> str:
        s = self.setting
        if s.choices:
            return " | ".join(map(str, s.choices))
        parts = []
        if s.lo is not None:
            parts.append(f"{'>' if s.lo_open else '>='} {s.lo:g}")
        if s.hi is not None:
            parts.append(f"{'<' if s.hi_open else '<='} {s.hi:g}")
        return ", ".join(parts)


def _coerce(info: SettingInfo, raw: Any) -> Any:
    t = info.type
    if t is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on", "y"):
            return True
        if text in ("0", "false", "no", "off", "n"):
            return False
        raise ConfigError(f"{info.where}: {raw!r} is not yes or no")
    if t in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{info.where}: {raw!r} is not a number")
        if isinstance(raw, (int, float)) and (t is float or float(raw).is_integer()):
            return t(raw)
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{info.where}: {str(raw)[:40]!r} is not a number") from None
        if t is int:
            if not value.is_integer():
                raise ConfigError(f"{info.where}: {str(raw)[:40]!r} is not a whole number")
            return int(value)
        return value
    if t is str:
        return str(raw).strip()
    return raw


def settings(*, include_derived: bool = False) -> list[SettingInfo]:
    """Every setting of TrainConfig, then ModelConfig, in declaration order (`cli=False` ones on request)."""
    out = []
    for cls, prefix in ((TrainConfig, ""), (ModelConfig, "model.")):
        defaults = cls()
        for f in dataclasses.fields(cls):
            s = f.metadata.get("setting")
            if s is None or (not s.cli and not include_derived):
                continue
            out.append(SettingInfo(f.name, prefix + f.name, _TYPES[str(f.type)], getattr(defaults, f.name), s))
    return out


def check_fields(obj) -> None:
    """Types, ranges and choices of every field of a config dataclass (a hand-edited config.json too)."""
    prefix = "model." if isinstance(obj, ModelConfig) else ""
    for info in settings(include_derived=True):
        if info.path != prefix + info.name or not hasattr(obj, info.name):
            continue
        value = getattr(obj, info.name)
        ok = value is None and info.default is None
        ok = ok or isinstance(value, info.type) and (info.type is not int or not isinstance(value, bool))
        ok = ok or info.type is float and isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{info.where}: {value!r} is not a {info.type.__name__}")
        info.check(value)


def settings_markdown() -> str:
    """The settings table (flag, form field, default, range, stages, the reference's value where ours differs)."""
    rows = ["| flag | form field | default | range | stages | help |", "|---|---|---|---|---|---|"]
    for info in settings():
        s = info.setting
        default = "rule" if s.auto else repr(info.default)
        help_ = s.help + (f" Reference: {s.reference} ({s.why})." if s.reference is not _SAME else "")
        stages = "all" if s.stages == ALL else ", ".join(s.stages)
        cells = (f"`{info.flag}`", info.label, default, info.describe_range(), stages, help_)
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows) + "\n\n" + describe_rule() + "\n"


# ---------------------------------------------------------------------------------------------
# the schedule rule

AUTO_SETTINGS = ("dim", "drop_rate", "lr", "epochs", "evals_per_epoch")
SMALL_N, FULL_N = 300, 11_000
SMALL = {"dim": 64, "drop_rate": 0.0, "lr": 6e-3, "epochs": 30, "evals_per_epoch": 2}
FULL = {"dim": 128, "drop_rate": 0.2, "lr": 1e-4, "epochs": 200, "evals_per_epoch": 2}
PRETRAIN_EPOCH_SHARE = 0.125
FINETUNE_LR_FACTOR = 0.25


def auto_schedule(n: int, stage: str = "baseline") -> dict[str, Any]:
    """The settings the rule picks for a training set of `n` queries at `stage` (pure; no torch)."""
    n = max(1, int(n))
    t = min(1.0, max(0.0, math.log(n / SMALL_N) / math.log(FULL_N / SMALL_N)))
    lr = SMALL["lr"] * (FULL["lr"] / SMALL["lr"]) ** t
    epochs = SMALL["epochs"] * (FULL["epochs"] / SMALL["epochs"]) ** t
    drop = FULL["drop_rate"] * t
    if stage == "pretrain":
        epochs = max(2.0, epochs * PRETRAIN_EPOCH_SHARE)
        lr *= PRETRAIN_EPOCH_SHARE**-0.5  # fewer epochs, a larger step
        drop *= PRETRAIN_EPOCH_SHARE  # fewer passes over the file, less to regularise
    if stage == "finetune":
        lr *= FINETUNE_LR_FACTOR
    return {
        "dim": SMALL["dim"] if t < 0.5 else FULL["dim"],
        "drop_rate": round(round(drop / 0.05) * 0.05, 2),
        "lr": float(f"{lr:.2g}"),
        "epochs": int(round(epochs)),
        "evals_per_epoch": FULL["evals_per_epoch"],  # the reference's: every half epoch and at its end
    }


def describe_rule() -> str:
    return (
        f"Schedule rule (settings left unset), t = log(n/{SMALL_N}) / log({FULL_N}/{SMALL_N}) clamped to [0, 1], "
        f"n = training queries: lr {SMALL['lr']:g} x ({FULL['lr']:g}/{SMALL['lr']:g})^t, epochs "
        f"{SMALL['epochs']} x ({FULL['epochs']}/{SMALL['epochs']})^t (pretrain: epochs and dropout x "
        f"{PRETRAIN_EPOCH_SHARE:g}, at least 2 epochs, lr x {PRETRAIN_EPOCH_SHARE**-0.5:.2f}), dropout {FULL['drop_rate']:g} x t, width {SMALL['dim']} below t = 0.5 else {FULL['dim']}, "
        f"evaluations per epoch {FULL['evals_per_epoch']} (the reference's); "
        f"finetune: lr x {FINETUNE_LR_FACTOR:g}."
    )


def resolve_schedule(cfg: TrainConfig, n: int) -> dict[str, Any]:
    """Set the settings listed in `cfg.auto` from the rule for `n` training queries; returns the record
    (also kept in `cfg.schedule`, and `cfg.auto` emptied so a resume or eval never re-picks)."""
    if not cfg.auto:
        return cfg.schedule
    chosen = auto_schedule(n, cfg.stage)
    picked = {}
    for name in cfg.auto:
        target = cfg.model if name in ("dim", "drop_rate") else cfg
        setattr(target, name, chosen[name])
        picked[name] = chosen[name]
    if "dim" in picked and cfg.model.dim % cfg.model.num_heads:
        cfg.model.num_heads = math.gcd(cfg.model.dim, cfg.model.num_heads)
    cfg.schedule = {"train_queries": int(n), "stage": cfg.stage, "chosen": picked, "rule": describe_rule()}
    cfg.auto = []
    cfg.validate()
    return cfg.schedule


def describe_schedule(cfg: TrainConfig, steps_per_epoch: int | None = None) -> str:
    """One line: what the run trains with, and which of it the rule chose."""
    picked = set((cfg.schedule or {}).get("chosen", {}))
    n = (cfg.schedule or {}).get("train_queries")

    def mark(name: str, text: str) -> str:
        return text + (" (rule)" if name in picked else "")

    parts = [
        mark("dim", f"width {cfg.model.dim}"),
        mark("lr", f"lr {cfg.lr:g}"),
        mark("drop_rate", f"dropout {cfg.model.drop_rate:g}"),
        mark(
            "epochs", f"{cfg.epochs} epochs" + (f" ({cfg.epochs * steps_per_epoch} steps)" if steps_per_epoch else "")
        ),
        f"eval every {cfg.eval_every_steps} steps"
        if cfg.eval_every_steps
        else mark("evals_per_epoch", f"{cfg.evals_per_epoch} eval(s) per epoch"),
    ]
    head = f"schedule for {n} training queries: " if n is not None else "schedule: "
    return head + ", ".join(parts)


if __name__ == "__main__":
    print(settings_markdown())
