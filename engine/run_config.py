"""What a new training run trains: user settings -> config.json (docs/ARCHITECTURE.md, "Runs").

Shared by `nlq-tui train` and the Train screen, so both start the same run from the same
settings. No torch here: TrainConfig is a plain dataclass.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.runs import DISK_ERRNOS, Run, create_run, disk_error, find_run, launch
from engine.workspace import Workspace

FINETUNE_LR_FACTOR = 0.5  # a finetune starts from trained weights: half the lr unless told otherwise
TRAIN_STAGES = ("baseline", "pretrain", "finetune")


def latest_export(workspace: Workspace) -> Path | None:
    """The newest NLQ-format JSON in WS/exports (manifests aside), for a pretrain run."""
    try:
        files = [
            p for p in workspace.exports_dir.rglob("*.json") if "manifest" not in p.name and not p.name.startswith(".")
        ]
    except OSError:
        return None
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def training_config(
    workspace: Workspace,
    *,
    stage: str,
    data_root: str | Path,
    train_file: str | Path | None = None,
    from_run: str | None = None,
    overrides: dict | None = None,
    model_overrides: dict | None = None,
    nproc: int = 1,
) -> dict:
    """config.json of a new run: checked paths, stage defaults, a finetune's inherited settings.

    `overrides` are TrainConfig fields the user set (epochs, lr, batch_size, device, seed,
    text_encoder, text_path, features, ...); None values are ignored.
    """
    from engine.training.config import ModelConfig, TrainConfig

    if stage not in TRAIN_STAGES:
        raise ConfigError(f"stage {stage!r}: use one of {', '.join(TRAIN_STAGES)} (--stage / the preset)")
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    model_overrides = {k: v for k, v in (model_overrides or {}).items() if v is not None}
    root = Path(data_root).expanduser().resolve()
    if not (root / "v1" / "annotations").is_dir():
        raise ConfigError(
            f"{root}: not an Ego4D root (no v1/annotations); give --data ROOT or choose the folder on the Data screen"
        )
    cfg = TrainConfig(stage=stage, data_root=str(root))
    source = None
    if stage == "finetune":
        if not from_run:
            raise ConfigError(
                "finetune needs a run to start from: give --from RUN / the from run field (a pretrain run with a checkpoint)"
            )
        source = find_run(workspace, from_run)
        ckpt = source.best_path if source.best_path.exists() else source.last_path
        if not ckpt.exists():
            raise ConfigError(
                f"{source.path}: has no checkpoints/best.pt yet; let the run evaluate once, or pick another run (--from / the from run field)"
            )
        try:
            src = TrainConfig.from_dict(source.config()["train"])
        except KeyError:
            raise ConfigError(
                f'{source.config_path}: no "train" section; pick another run (--from / the from run field)'
            ) from None
        # the weights only fit the same features, text encoder and model shape
        for name in ("features", "text_encoder", "text_path", "freeze_text", "batch_size", "seed", "device"):
            setattr(cfg, name, getattr(src, name))
        cfg.model = src.model
        cfg.lr = src.lr * FINETUNE_LR_FACTOR
        cfg.epochs = src.epochs
        cfg.init_from = str(ckpt)
    elif from_run:
        raise ConfigError(f"a run to start from (--from / the from run field) is for finetune only (this is {stage})")
    if stage == "pretrain":
        chosen = Path(train_file).expanduser() if train_file else latest_export(workspace)
        if chosen is None:
            raise ConfigError(
                f"pretrain needs a training file: export the reviewed questions first or give --train-file FILE / "
                f"the train file field (an NLQ-format file); {workspace.exports_dir} has no export yet"
            )
        train_file = chosen
    if train_file:
        path = Path(train_file).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{path}: no such training file (--train-file / the train file field)")
        cfg.train_file = str(path)
    for key, value in overrides.items():
        if not hasattr(cfg, key) or key == "model":
            raise ConfigError(f"unknown training setting {key!r}")
        setattr(cfg, key, value)
    if model_overrides:
        cfg.model = ModelConfig(**{**cfg.model.__dict__, **model_overrides})
    cfg.validate()
    features = root / "v1" / cfg.features
    if not features.is_dir():
        raise ConfigError(
            f"{features}: no such feature folder; give --features NAME / the features field (a folder under {root / 'v1'})"
        )
    return {
        "stage": stage,
        "from_run": source.id if source else None,
        "nproc": int(nproc),
        "train": cfg.to_dict(),
    }


def new_run_config(
    workspace: Workspace,
    *,
    stage: str,
    data_root: str | Path | None,
    train_file: str | Path | None = None,
    from_run: str | None = None,
    features: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    text_encoder: str | None = None,
    text_path: str | None = None,
    unfreeze_text: bool = False,
    eval_every: int | None = None,
    naq_jitter: bool = False,
    model: str | None = None,
    dim: int | None = None,
    drop_rate: float | None = None,
    nproc: int = 1,
) -> dict:
    """config.json of a new run from the settings a user gave (`nlq-tui train` flags, the Train
    screen's form); None or False means "not set": the stage's default, or for a finetune its
    pretrain run's value. The one place where user settings become a run's configuration."""
    if data_root is None:
        raise ConfigError("no data root: give --data ROOT or choose an Ego4D folder on the Data screen (1)")
    features = features or None  # a blank field or flag is not a setting
    if features is None and stage != "finetune":
        # a finetune keeps its pretrain run's features (the weights only fit those) unless told
        features = workspace.get("features")
    overrides = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "device": device,
        "seed": seed,
        "text_encoder": text_encoder,
        "text_path": text_path,
        "features": features,
        "eval_every_steps": eval_every,
        "naq_jitter": True if naq_jitter else None,
        "freeze_text": False if unfreeze_text else None,
    }
    return training_config(
        workspace,
        stage=stage,
        data_root=data_root,
        train_file=train_file or None,
        from_run=from_run or None,
        overrides=overrides,
        model_overrides={"model": model, "dim": dim, "drop_rate": drop_rate},
        nproc=nproc,
    )


def start_run(workspace: Workspace, *, detach: bool = True, **settings: Any) -> Run:
    """A new run from user settings (the keyword arguments of `new_run_config`): checked, its
    folder created and, with `detach`, launched in the background (`run.process`). Both
    `nlq-tui train` and the Train screen start runs here, so they start the same run.
    A setting that does not check out raises ConfigError before any folder exists."""
    nproc = max(1, int(settings.get("nproc") or 1))
    config = new_run_config(workspace, **settings)
    run = create_run(workspace, config)
    if detach:
        try:
            run.process = launch(run, resume=False, nproc=nproc, secret_env=secret_env_names(workspace))
        except BaseException as exc:  # a full disk under status.json or train.log: no orphan run folder
            shutil.rmtree(run.path, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                raise disk_error(run.path, exc) from None
            raise
    return run


def secret_env_names(workspace: Workspace) -> list[str]:
    """Key variables to keep from a detached child besides *_API_KEY: the one the user named
    for generation (--api-key-env, the Generate screen's field), as saved in the workspace."""
    try:
        saved = workspace.get("generation")
    except Exception:  # a damaged workspace.json must not stop a run; *_API_KEY still goes
        return []
    name = saved.get("api_key_env") if isinstance(saved, dict) else None
    return [name] if isinstance(name, str) and name else []
