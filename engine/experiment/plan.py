"""An experiment's plan: which runs it needs and in what order (docs/ARCHITECTURE.md, "Experiments").

    WS/experiments/<id>/plan.json    data root, pretraining files, seeds, training settings
    WS/experiments/<id>/state.json   job key -> run id (written by the runner)

Arms: `baseline` (the official train split), and for each pretraining file `pretrain:<label>`
(that file alone) and `finetune:<label>` (the official train split from the pretrain run's
best.pt). One job per arm and seed; a finetune waits for its pretrain run.

The id is a hash of what decides the runs' results apart from the seed (data root, pretraining
sources, settings), so the same command finds the same folder again and reuses its runs; more
seeds later add runs to the same experiment.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.ego4d.layout import ANNOTATIONS, annotations_dir
from engine.errors import ConfigError
from engine.workspace import Workspace, atomic_write_json

PLAN_VERSION = 1
# `nlq-tui experiment` flags passed to every stage (None: not set, the stage's own default);
# pretrain_lr and finetune_lr replace lr for those stages (a finetune never takes lr itself).
SETTING_KEYS = (
    "epochs",
    "lr",
    "pretrain_lr",
    "finetune_lr",
    "batch_size",
    "device",
    "features",
    "text_encoder",
    "text_path",
    "eval_every",
    "model",
    "dim",
    "drop_rate",
)


@dataclass
class Source:
    """One pretraining file: given as a path, or exported from a variant's accepted candidates."""

    label: str
    spec: str  # what the user typed
    file: str  # the NLQ file the pretrain runs read
    variant: str | None = None
    sha256: str | None = None


@dataclass
class Job:
    key: str  # "finetune/<label>/s3"
    stage: str
    arm: str  # "baseline" | "pretrain:<label>" | "finetune:<label>"
    seed: int
    source: str | None = None  # the Source label (pretrain, finetune)
    after: str | None = None  # key of the job whose run this one starts from


@dataclass
class Plan:
    id: str
    data_root: str
    seeds: list[int]
    sources: list[Source]
    settings: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    version: int = PLAN_VERSION

    def jobs(self) -> list[Job]:
        """Every job, baseline first, then each source's pretrain before its finetune, seed by seed."""
        out = []
        for seed in self.seeds:
            out.append(Job(f"baseline/s{seed}", "baseline", "baseline", seed))
            for s in self.sources:
                pre = Job(f"pretrain/{s.label}/s{seed}", "pretrain", f"pretrain:{s.label}", seed, s.label)
                fine = Job(f"finetune/{s.label}/s{seed}", "finetune", f"finetune:{s.label}", seed, s.label, pre.key)
                out += [pre, fine]
        return out

    def arms(self) -> list[str]:
        return ["baseline"] + [f"{kind}:{s.label}" for s in self.sources for kind in ("pretrain", "finetune")]

    def source(self, label: str) -> Source:
        return next(s for s in self.sources if s.label == label)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Plan:
        return cls(
            id=str(d["id"]),
            data_root=str(d["data_root"]),
            seeds=[int(s) for s in d["seeds"]],
            sources=[Source(**s) for s in d["sources"]],
            settings=dict(d.get("settings") or {}),
            created=float(d.get("created") or 0.0),
            version=int(d.get("version") or PLAN_VERSION),
        )


def experiments_dir(ws: Workspace) -> Path:
    return ws.path / "experiments"


def experiment_dir(ws: Workspace, exp_id: str) -> Path:
    return experiments_dir(ws) / exp_id


def experiment_id(data_root: str, specs: list[str], settings: dict) -> str:
    key = json.dumps({"data": data_root, "pretrain": specs, "settings": settings}, sort_keys=True)
    return "exp-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def clean_settings(settings: dict | None) -> dict:
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown:
        raise ConfigError(f"unknown experiment setting(s) {', '.join(unknown)}; use {', '.join(SETTING_KEYS)}")
    return settings


def _label(text: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() or c in "._-" else "-" for c in text)[:40].strip("-.") or "pretrain"
    label, n = base, 2
    while label in taken:
        label, n = f"{base}-{n}", n + 1
    taken.add(label)
    return label


def _variant_names(ws: Workspace) -> list[str]:
    try:
        from engine.store import CandidateStore

        store = CandidateStore(ws).load()
        try:
            return [v.name for v in store.variants()]
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - a workspace without candidates has no variants; the error below says so
        return []


def export_variant(ws: Workspace, data_root: str, name: str, out: Path) -> str:
    """Export `name`'s accepted and edited candidates to `out`; its sha256."""
    from engine.export import DEFAULT_STATUSES, export

    out.parent.mkdir(parents=True, exist_ok=True)
    result = export(ws, out, statuses=DEFAULT_STATUSES, data_root=data_root, variants=frozenset({name}))
    if not result.exported:
        raise ConfigError(
            f"--pretrain {name}: the variant has no accepted or edited candidates yet; review some on the Review screen"
        )
    return result.sha256


def resolve_sources(ws: Workspace, data_root: str, specs: list[str], exp_dir: Path) -> list[Source]:
    """Each --pretrain value as a file (exported first when it names a variant)."""
    from engine.training.provenance import sha256_file

    if not specs:
        raise ConfigError("give at least one --pretrain FILE_OR_VARIANT (an exported NLQ file or a variant name)")
    taken: set[str] = set()
    out = []
    variants: list[str] | None = None
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            path = path.resolve()
            out.append(Source(_label(path.stem, taken), spec, str(path), None, sha256_file(path)))
            continue
        variants = _variant_names(ws) if variants is None else variants
        if spec not in variants:
            known = f"variants: {', '.join(variants)}" if variants else "it has no variants yet"
            raise ConfigError(f"--pretrain {spec}: neither a file nor a variant of {ws.path} ({known})")
        label = _label(spec, taken)
        target = exp_dir / "pretrain" / f"{label}.json"
        digest = export_variant(ws, data_root, spec, target)
        out.append(Source(label, spec, str(target), spec, digest))
    return out


def make_plan(
    ws: Workspace,
    *,
    data_root: str | Path,
    pretrain: list[str],
    seeds: list[int],
    settings: dict | None = None,
    exp_id: str | None = None,
) -> Plan:
    """The experiment's plan: read back when the folder exists (its runs are reused), else made
    and written; a variant is exported once, on first making, so a rerun trains on the same file."""
    root = Path(data_root).expanduser().resolve()
    if not annotations_dir(root).is_dir():
        raise ConfigError(f"{root}: not an Ego4D root (no {ANNOTATIONS}); give --data ROOT")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: give one or more distinct seeds, e.g. --seeds 1 2 3")
    settings = clean_settings(settings)
    specs = [str(Path(s).expanduser().resolve()) if Path(s).expanduser().is_file() else s for s in pretrain]
    exp_id = exp_id or experiment_id(str(root), specs, settings)
    if not exp_id or "".join(c for c in exp_id if c.isalnum() or c in "._-") != exp_id:
        raise ConfigError(f"--id {exp_id!r}: use letters, digits, '.', '_' or '-'")
    folder = experiment_dir(ws, exp_id)
    existing = load_plan(folder)
    if existing is not None:
        if existing.data_root != str(root) or [s.spec for s in existing.sources] != specs:
            raise ConfigError(f"{folder}: experiment {exp_id} has other data or pretraining files; choose another --id")
        if existing.settings != settings:
            raise ConfigError(f"{folder}: experiment {exp_id} was planned with other settings; choose another --id")
        existing.seeds = list(seeds)
        atomic_write_json(folder / "plan.json", existing.to_json())
        return existing
    if not specs:
        raise ConfigError("give at least one --pretrain FILE_OR_VARIANT (an exported NLQ file or a variant name)")
    new = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        sources = resolve_sources(ws, str(root), specs, folder)
    except BaseException:
        if new:  # a refused plan leaves no half-made experiment behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    plan = Plan(exp_id, str(root), list(seeds), sources, settings, time.time())
    atomic_write_json(folder / "plan.json", plan.to_json())
    return plan


def load_plan(folder: Path) -> Plan | None:
    from engine.runs import read_json

    data = read_json(Path(folder) / "plan.json")
    if data is None:
        return None
    try:
        return Plan.from_json(data)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{folder / 'plan.json'}: not an experiment plan; delete the folder to start over") from None


def list_experiments(ws: Workspace) -> list[Plan]:
    """Every experiment of the workspace, oldest first."""
    try:
        folders = sorted(p for p in experiments_dir(ws).iterdir() if p.is_dir())
    except OSError:
        return []
    plans = []
    for f in folders:
        try:
            plan = load_plan(f)
        except ConfigError:
            continue
        if plan is not None:
            plans.append(plan)
    return sorted(plans, key=lambda p: p.created)
