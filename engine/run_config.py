"""What a new training run trains: user settings -> config.json (docs/ARCHITECTURE.md, "Runs").

Shared by `nlq-tui train` and the Train screen, so both start the same run from the same
settings. No torch here: TrainConfig is a plain dataclass.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.runs import Run, create_run, find_run, launch
from engine.workspace import Workspace, disk_error

TRAIN_STAGES = ("baseline", "pretrain", "finetune")
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def latest_export(workspace: Workspace) -> Path | None:
    """The newest NLQ-format JSON in WS/exports (manifests aside), for a pretrain run."""
    try:
        files = [
            p for p in workspace.exports_dir.rglob("*.json") if "manifest" not in p.name and not p.name.startswith(".")
        ]
    except OSError:
        return None
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def training_config(workspace: Workspace, values: Mapping[str, Any], *, nproc: int = 1) -> dict:
    """config.json of a new run from user values ({setting name: value or None}, plus "from_run"):
    checked paths, the pretrain export, a finetune's source run; every setting goes through
    `TrainConfig.from_user` (ranges, choices, the finetune's inherited settings, what the
    schedule rule is left to pick)."""
    from engine.ego4d.layout import ANNOTATIONS, annotations_dir, feature_dir
    from engine.training.config import TrainConfig

    values = {k: v for k, v in values.items() if v is not None and not (isinstance(v, str) and not v.strip())}
    from_run = values.pop("from_run", None)
    stage = values.setdefault("stage", "baseline")
    if stage not in TRAIN_STAGES:
        raise ConfigError(f"stage {stage!r}: use one of {', '.join(TRAIN_STAGES)} (--stage / the preset)")
    if not values.get("data_root"):
        raise ConfigError("no data root: give --data ROOT or choose an Ego4D folder on the Data screen (1)")
    root = Path(values["data_root"]).expanduser().resolve()
    if not annotations_dir(root).is_dir():
        raise ConfigError(
            f"{root}: not an Ego4D root (no {ANNOTATIONS}); give --data ROOT or choose the folder on the Data screen"
        )
    values["data_root"] = str(root)
    source, src, ckpt = None, None, None
    if stage == "finetune":
        if not from_run:
            raise ConfigError(
                "finetune needs a run to start from: give --from RUN / the from run field (a pretrain run with a checkpoint)"
            )
        source = find_run(workspace, str(from_run))
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
    elif from_run:
        raise ConfigError(f"a run to start from (--from / the from run field) is for finetune only (this is {stage})")
    elif not values.get("features") and workspace.get("features"):
        values["features"] = workspace.get("features")  # a finetune keeps its pretrain run's features instead
    if stage == "pretrain" and not values.get("train_file"):
        chosen = latest_export(workspace)
        if chosen is None:
            raise ConfigError(
                f"pretrain needs a training file: export the reviewed questions first or give --train-file FILE / "
                f"the train file field (an NLQ-format file); {workspace.exports_dir} has no export yet"
            )
        values["train_file"] = str(chosen)
    if values.get("train_file"):
        path = Path(values["train_file"]).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{path}: no such training file (--train-file / the train file field)")
        values["train_file"] = str(path)
    cfg = TrainConfig.from_user(values, source=src)
    if ckpt is not None:
        cfg.init_from = str(ckpt)
    features = feature_dir(root, cfg.features)
    if not features.is_dir():
        raise ConfigError(
            f"{features}: no such feature folder; give --features NAME / the features field (a folder under {features.parent})"
        )
    return {
        "stage": stage,
        "from_run": source.id if source else None,
        "nproc": int(nproc),
        "train": cfg.to_dict(),
    }


# the keyword names `new_run_config` took before settings were declared once, and their setting
_LEGACY = {"eval_every": "eval_every_steps", "unfreeze_text": "freeze_text"}


def user_values(settings: Mapping[str, Any]) -> dict[str, Any]:
    """{setting name: value} from keyword settings; the older names still work (unfreeze_text=True,
    eval_every=N), and False for a switch means "not set" as a flag left out does."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "unfreeze_text":
            out["freeze_text"] = False if value else None
        elif key == "naq_jitter":
            out["naq_jitter"] = True if value else None
        else:
            out[_LEGACY.get(key, key)] = value
    return out


def new_run_config(
    workspace: Workspace, values: Mapping[str, Any] | None = None, *, nproc: int = 1, **settings: Any
) -> dict:
    """config.json of a new run from what a user set (`nlq-tui train` flags, the Train screen's
    form): `values` {setting name: value or None} and/or keyword settings; None, "" or a False
    switch means "not set": the stage's default, the schedule rule's choice, or for a finetune its
    pretrain run's value. The one place where user settings become a run's configuration."""
    merged = {**user_values(settings), **dict(values or {})}
    return training_config(workspace, merged, nproc=nproc)


def start_run(
    workspace: Workspace,
    *,
    detach: bool = True,
    values: Mapping[str, Any] | None = None,
    nproc: int | None = None,
    **settings: Any,
) -> Run:
    """A new run from user settings (as `new_run_config`): checked, its folder created and, with
    `detach`, launched in the background (`run.process`). Both `nlq-tui train` and the Train
    screen start runs here, so they start the same run.
    A setting that does not check out raises ConfigError before any folder exists."""
    nproc = max(1, int(nproc or 1))
    config = new_run_config(workspace, values, nproc=nproc, **settings)
    run = create_run(workspace, config)
    if detach:
        try:
            run.process = launch(run, resume=False, nproc=nproc, secret_env=secret_env_names(workspace))
        except BaseException as exc:  # a full disk under status.json or train.log: no orphan run folder
            shutil.rmtree(run.path, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
                raise disk_error(run.path, "the new run's status.json or train.log", exc) from None
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


# what the schedule rule will choose, before a run exists (the Train form's preview)
_QUERY_COUNTS: dict[tuple[str, int, int], int] = {}


def count_train_queries(path: str | Path) -> int:
    """Queries with text in an NLQ-format file, as a run of it would train on (missing features
    aside); remembered per file version, since the form asks again at every preset change."""
    from engine.ego4d.nlq import NLQQuery, iter_nlq

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _QUERY_COUNTS:
        n = 0
        for item in iter_nlq(p, missing="check --data / --train-file"):
            if isinstance(item, NLQQuery) and item.problem is None and item.query and item.query.strip(" ?"):
                n += 1
        _QUERY_COUNTS[key] = n
    return _QUERY_COUNTS[key]


def schedule_preview(
    workspace: Workspace, *, data_root: str | Path | None, stage: str, train_file: str | None = None
) -> dict[str, Any]:
    """{"n": training queries, "file": the file counted, "chosen": what the rule picks for the
    settings left unset} for a run of `stage`; raises one line when there is nothing to count."""
    from engine.ego4d.layout import nlq_file
    from engine.training.config import auto_schedule

    if stage == "pretrain" and not train_file:
        found = latest_export(workspace)
        if found is None:
            raise ConfigError(f"pretrain needs a training file: {workspace.exports_dir} has no export yet")
        path = found
    elif train_file and stage != "finetune":
        path = Path(train_file).expanduser()
    else:
        if not data_root:
            raise ConfigError("no data root: choose an Ego4D folder on the Data screen (1)")
        path = nlq_file(Path(data_root).expanduser(), "train")
    if not path.is_file():
        raise ConfigError(f"{path}: no such training file (--train-file / the train file field)")
    n = count_train_queries(path)
    return {"n": n, "file": str(path), "chosen": auto_schedule(n, stage)}
