"""The training and evaluation loops, in plain sight.

`Trainer.from_run(run)` reads the run's config.json, loads the data and builds the model;
`Trainer.fit(resume, should_stop)` trains, evaluating on val every epoch (or every
`eval_every_steps`), writing a metrics row per logged step and per evaluation, `best.pt` when
val R1@0.3 improves and `last.pt` at every epoch end and when asked to stop.

Exact resume: the order of the training queries in epoch e is a permutation drawn from a
generator seeded with (seed, e), so a run resumed at (epoch e, batch b) replays the same order
and skips the b batches it already took; `last.pt` also holds the model, optimizer, scheduler,
step and the torch / numpy / python RNG states (dropout, NaQ jitter), so two epochs straight
and one epoch + resume + one epoch end with the same weights.

Checkpoints hold only tensors, plain dicts, lists, strings and numbers, and are read with
`torch.load(..., weights_only=True)`: a checkpoint from elsewhere can never run code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ConfigError, DataError
from engine.runs import BEST_KEY, FIGURE_KEYS, Run
from engine.training.config import TrainConfig, describe_schedule, resolve_schedule
from engine.training.device import DistInfo, pick_threads, resolve_device
from engine.training.model import VSLNet, param_groups
from engine.workspace import atomic_write_json

LOG_EVERY_STEPS = 10  # a training row every this many steps (and at every epoch end)
PROGRESS_EVERY_S = 10.0  # a plain progress line in train.log (and a foreground run's stderr)
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# RNG state and checkpoints (tensors and plain values only, for weights_only loading)


def rng_state(device: torch.device | None = None) -> dict:
    np_state: tuple = np.random.get_state(legacy=True)  # type: ignore[assignment]  # the legacy tuple form
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64), "gauss": py_gauss},
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def save_checkpoint(path: Path, payload: dict) -> None:
    """torch.save to a temp file, fsync, rename: a kill mid-save leaves the old checkpoint whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint written by this module, loaded without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise DataError(
            f"{path}: not a checkpoint this program can read safely ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise DataError(f"{path}: not an nlq-tui checkpoint (no model weights); pass a best.pt or last.pt of a run")
    return ckpt


def linear_schedule(total_steps: int, warmup_proportion: float) -> Callable[[int], float]:
    """The reference's linear schedule: warm up over the first proportion, then decay to 0."""
    warmup = int(total_steps * warmup_proportion)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _figures(figs: dict) -> dict:
    from engine.training.metrics import METRIC_KEYS

    return {k: round(float(figs[k]), 4) for k in (*FIGURE_KEYS, *METRIC_KEYS) if k in figs}


# ---------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """One run's training state: data, text features, model, optimizer, schedule, position."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        run: Run | None = None,
        dist: DistInfo | None = None,
        log: logging.Logger | None = None,
        status=None,
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.run = run
        self.dist = dist or DistInfo()
        self.log = log or logging.getLogger("nlq.train")
        self.status = status
        self.is_writer = self.dist.rank == 0
        self.device = resolve_device(cfg.device, self.dist)
        if self.device.type == "cpu":
            torch.set_num_threads(pick_threads(cfg.threads))
        self.amp = cfg.bf16 and self.device.type == "cuda"
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: dict | None = None
        self.history: list[dict] = []  # evaluation rows of this process (for callers and tests)
        self.window: dict = {"loss": 0.0, "n": 0, "parts": {}}
        self.tb: Any = None  # the run's TensorBoard event writer (engine/training/tb.py), rank 0 only

    @classmethod
    def from_run(cls, run: Run, **kw) -> Trainer:
        cfg = run.config()
        try:
            train_cfg = TrainConfig.from_dict(cfg["train"])
        except KeyError:
            raise ConfigError(f'{run.config_path}: no "train" section; recreate the run with `nlq-tui train`') from None
        return cls(train_cfg, run=run, **kw)

    # data ------------------------------------------------------------------------------------
    def paths(self) -> dict[str, Path]:
        """The NLQ files and the feature folder this run reads (config values, else the root's official files)."""
        from engine.training.data import annotation_file, feature_folder

        cfg = self.cfg
        if not cfg.data_root:
            raise ConfigError("data_root is not set: pass --data ROOT (an Ego4D root or sample_data)")
        root = Path(cfg.data_root)
        return {
            "train": Path(cfg.train_file) if cfg.train_file else annotation_file(root, "train"),
            "val": Path(cfg.val_file) if cfg.val_file else annotation_file(root, "val"),
            "test": Path(cfg.test_file) if cfg.test_file else annotation_file(root, "test"),
            "features": feature_folder(root, cfg.features),
        }

    def load_split(self, which: str):
        from engine.training.data import load_split

        paths = self.paths()
        if not paths["features"].is_dir():
            raise DataError(f"{paths['features']}: no such feature folder; check --data and --features")
        split = load_split(
            paths[which],
            paths["features"],
            max_pos_len=self.cfg.model.max_pos_len,
            keep_empty=which != "train" or not self.cfg.drop_empty_windows,  # val: every query counts
            naq_jitter=self.cfg.naq_jitter and which == "train",
            require_times=which != "test",
        )
        self.log.info("%s: %s", which, split.summary())
        return split

    def loader(self, split, *, train: bool):
        """Batches of `split` on this run's device (the tables move there once)."""
        from engine.training.data import Loader
        from engine.training.text import TextTable

        per_step = self.text.trainable_module() is not None or (train and self.cfg.text_mode == "live")
        table = None if per_step else TextTable.build(self.text, split.queries)
        return Loader(
            split,
            table,
            batch_size=self.cfg.batch_size if train else max(self.cfg.batch_size, 64),
            extend=self.cfg.model.extend,
            shuffle=train,
            seed=self.cfg.seed,
            rank=self.dist.rank if train else 0,
            world_size=self.dist.world if train else 1,
            naq_jitter=self.cfg.naq_jitter if train else False,
        ).to(self.device)

    def build(self, *, splits: tuple[str, ...] = ("train", "val")) -> None:
        """Load the splits, encode their queries once, build the model, optimizer and schedule."""
        from engine.training.text import build_text_encoder

        cfg = self.cfg
        t0 = time.time()
        self.text = build_text_encoder(
            cfg.text_encoder,
            cfg.text_path,
            device=str(self.device),
            freeze=cfg.freeze_text,
            max_tokens=min(128, cfg.model.max_pos_len),
        )
        cfg.model.text_dim = int(self.text.dim)
        self.splits = {}
        for which in splits:
            if which == "val" and not self.paths()["val"].is_file():
                self.log.info("val: %s is missing; no evaluation during training", self.paths()["val"])
                continue
            self.splits[which] = self.load_split(which)
        if "train" in self.splits and len(self.splits["train"]) == 0:
            raise DataError(
                f"{self.paths()['train']}: no usable training queries ({self.splits['train'].summary()}); "
                "check the file and --features"
            )
        ref = next((s for s in self.splits.values() if len(s)), None)
        if ref is not None:
            cfg.model.video_dim = ref.video_dim
        if "train" in self.splits and cfg.auto:
            self._resolve_schedule(len(self.splits["train"]))
        self.loaders = {w: self.loader(s, train=(w == "train")) for w, s in self.splits.items()}

        torch.manual_seed(cfg.seed)
        self.model = VSLNet(cfg.model).to(self.device)
        if cfg.init_from:
            self._init_from(cfg.init_from)
        self.net: torch.nn.Module = self.model
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
        groups = param_groups(self.model, cfg.weight_decay)
        text_module = self.text.trainable_module()
        if text_module is not None:
            for g in param_groups(text_module, cfg.weight_decay):
                g["lr"] = cfg.lr * cfg.text_lr_mult
                groups.append(g)
        for g in groups:
            g.setdefault("lr", cfg.lr)
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=cfg.adam_eps)
        self._params = [p for g in groups for p in g["params"]]
        self.steps_per_epoch = len(self.loaders["train"]) if "train" in self.loaders else 0
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(max(1, self.total_steps), cfg.warmup_proportion)
        )
        if "train" in self.loaders:
            self.log.info("%s", describe_schedule(cfg, self.steps_per_epoch))
        self.log.info(
            "model %s dim %d, %d parameters; %d steps (%d epochs x %d) on %s%s; setup %.1f s",
            cfg.model.model,
            cfg.model.dim,
            sum(p.numel() for p in self.model.parameters()),
            self.total_steps,
            cfg.epochs,
            self.steps_per_epoch,
            self.device,
            " bf16" if self.amp else "",
            time.time() - t0,
        )

    def _resolve_schedule(self, n: int) -> None:
        """The schedule rule for the settings the user left unset, recorded in config.json."""
        record = resolve_schedule(self.cfg, n)
        self.log.info("%s", record["rule"])
        if self.run is not None and self.is_writer:
            config = self.run.config()
            config["train"] = self.cfg.to_dict()
            atomic_write_json(self.run.config_path, config)

    def _init_from(self, path: str) -> None:
        ckpt = load_checkpoint(path)
        want = self.model.state_dict()
        got = ckpt["model"]
        bad = [k for k in want if k not in got or got[k].shape != want[k].shape]
        if bad:
            raise ConfigError(
                f"{path}: its model does not fit this run's ({len(bad)} tensors differ, e.g. {bad[0]}); "
                "finetune with the same --features, --text-encoder and model size as the pretrain run"
            )
        self.model.load_state_dict(got)
        if ckpt.get("text") is not None and self.text.trainable_module() is not None:
            self.text.trainable_module().load_state_dict(ckpt["text"])
        self.log.info(
            "initialised from %s (step %s, val R1@0.3 %s)",
            path,
            ckpt.get("step"),
            (ckpt.get("figures") or {}).get(BEST_KEY),
        )

    # checkpoints -----------------------------------------------------------------------------
    def _payload(self, full: bool) -> dict:
        text_module = self.text.trainable_module()
        payload = {
            "version": CHECKPOINT_VERSION,
            "model": self.model.state_dict(),
            "text": text_module.state_dict() if text_module is not None else None,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "figures": dict(self.best) if self.best else None,
        }
        if full:
            payload["optimizer"] = self.optimizer.state_dict()
            payload["scheduler"] = self.scheduler.state_dict()
            payload["rng"] = rng_state(self.device)
            payload["history"] = list(self.history)
            payload["window"] = {
                "loss": self.window["loss"],
                "n": self.window["n"],
                "parts": dict(self.window["parts"]),
            }
        return payload

    def save_last(self) -> None:
        if self.is_writer and self.run is not None:
            save_checkpoint(self.run.last_path, self._payload(full=True))

    def resume_from(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        self.model.load_state_dict(ckpt["model"])
        if ckpt.get("text") is not None and self.text.trainable_module() is not None:
            self.text.trainable_module().load_state_dict(ckpt["text"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.epoch, self.batch_in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        self.best = ckpt.get("figures")
        self.history = list(ckpt.get("history") or [])
        self.window = ckpt.get("window") or {"loss": 0.0, "n": 0, "parts": {}}
        set_rng_state(ckpt["rng"], self.device)
        if self.run is not None and self.is_writer:
            self._truncate_metrics()
        self.log.info(
            "resumed from %s at epoch %d, batch %d (step %d)", path, self.epoch + 1, self.batch_in_epoch, self.step
        )

    def _truncate_metrics(self) -> None:
        """Drop rows logged after last.pt was written (a crash between saves), so curves do not double back."""
        assert self.run is not None
        rows = self.run.metrics()
        keep = [r for r in rows if int(r.get("step", 0)) <= self.step]
        if len(keep) != len(rows):
            from engine.workspace import atomic_write_bytes

            atomic_write_bytes(self.run.metrics_path, "".join(json.dumps(r) + "\n" for r in keep).encode())

    # rows ------------------------------------------------------------------------------------
    def _emit(self, row: dict) -> None:
        if self.is_writer and self.run is not None:
            self.run.append_metrics(row)
            if self.tb is not None:
                self.tb.row(row)

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # training --------------------------------------------------------------------------------
    def fit(self, *, resume: bool = False, should_stop: Callable[[], bool] = lambda: False) -> str:
        """Train to the end ("done") or until `should_stop()` ("stopped", after saving last.pt)."""
        seed_everything(self.cfg.seed)
        self.build()
        if resume:
            if self.run is None or not self.run.last_path.exists():
                raise ConfigError("nothing to resume: the run has no checkpoints/last.pt")
            self.resume_from(self.run.last_path)
        if self.run is not None and self.is_writer:
            from engine.training.provenance import record

            record(self.run, self.cfg, self.device, self.paths(), resume=resume, log=self.log)
            from engine.training.tb import open_run_writer

            self.tb = open_run_writer(self.run.path, self.cfg.to_dict(), purge_step=self.step if resume else None)
        cfg = self.cfg
        if self.status is not None:
            self.status.update(total_steps=self.total_steps, epochs=cfg.epochs, step=self.step, epoch=self.epoch)
        loader = self.loaders["train"]
        self._window_t = self._progress_t = time.perf_counter()
        self._window_samples = 0
        self._progress = {"step": self.step, "samples": 0, "loss": 0.0, "n": 0}
        while self.epoch < cfg.epochs:
            self.model.train()
            for batch in loader.batches(self.epoch, start=self.batch_in_epoch):
                if self.dist.any(should_stop(), self.device):
                    self.save_last()
                    if self.status is not None:
                        self.status.update(step=self.step, epoch=self.epoch)
                    self.log.info(
                        "stopped at epoch %d, batch %d (step %d); last.pt saved",
                        self.epoch + 1,
                        self.batch_in_epoch,
                        self.step,
                    )
                    return "stopped"
                self._step(batch)
                if self._eval_inside_epoch():
                    self._evaluate_and_keep()
            self.epoch += 1
            self.batch_in_epoch = 0
            if not cfg.eval_every_steps or self.epoch == cfg.epochs or self.step % cfg.eval_every_steps == 0:
                self._evaluate_and_keep()
            self.save_last()
            if self.status is not None:
                self.status.update(step=self.step, epoch=self.epoch)
        return "done"

    def _eval_inside_epoch(self) -> bool:
        """An evaluation before the epoch's end: every `eval_every_steps`, or every 1/k epoch as the
        reference (its global step modulo steps_per_epoch // k); the epoch's end is evaluated anyway."""
        cfg = self.cfg
        if self.batch_in_epoch == self.steps_per_epoch:
            return False
        if cfg.eval_every_steps:
            return self.step % cfg.eval_every_steps == 0
        period = self.steps_per_epoch // cfg.evals_per_epoch if cfg.evals_per_epoch > 1 else 0
        return period > 0 and self.step % period == 0

    def _step(self, batch) -> None:
        """One optimisation step, its share of the next metrics row and of the progress line."""
        loss, parts = self._train_step(batch)
        self.step += 1
        self.batch_in_epoch += 1
        w, p = self.window, self._progress  # w is in last.pt, so a resume logs the same rows
        w["loss"] += loss
        w["n"] += 1
        p["loss"] += loss
        p["n"] += 1
        samples = len(batch) * self.dist.world
        self._window_samples += samples
        p["samples"] += samples
        for k, v in parts.items():
            w["parts"][k] = w["parts"].get(k, 0.0) + v
        if self.step % LOG_EVERY_STEPS == 0 or self.batch_in_epoch == self.steps_per_epoch:
            now = time.perf_counter()
            row = {
                "step": self.step,
                "epoch": round(self.epoch + self.batch_in_epoch / max(1, self.steps_per_epoch), 4),
                "loss": round(w["loss"] / w["n"], 6),
                "lr": self.scheduler.get_last_lr()[0],
                "samples_per_s": round(self._window_samples / max(1e-9, now - self._window_t), 2),
                **{k: round(v / w["n"], 6) for k, v in w["parts"].items()},
            }
            self._emit(row)
            if self.status is not None:
                self.status.update(step=self.step, epoch=self.epoch)
            w["loss"], w["n"], w["parts"] = 0.0, 0, {}
            self._window_samples, self._window_t = 0, now
        if time.perf_counter() - self._progress_t >= PROGRESS_EVERY_S:
            self._log_progress()

    def _log_progress(self) -> None:
        """One plain line (train.log, and stderr of a foreground run): step, epoch, loss, rate, ETA."""
        p, now = self._progress, time.perf_counter()
        dt = max(1e-9, now - self._progress_t)
        steps = max(1, self.step - p["step"])
        eta = (self.total_steps - self.step) * dt / steps
        self.log.info(
            "step %d/%d (%d%%), epoch %d/%d, loss %.4f, %.1f samples/s, ETA %s",
            self.step,
            self.total_steps,
            100 * self.step // max(1, self.total_steps),
            self.epoch + 1,
            self.cfg.epochs,
            p["loss"] / max(1, p["n"]),
            p["samples"] / dt,
            _duration(eta),
        )
        self._progress = {"step": self.step, "samples": 0, "loss": 0.0, "n": 0}
        self._progress_t = now

    def _train_step(self, batch) -> tuple[float, dict]:
        cfg = self.cfg
        query, query_mask = self._query(batch)
        with self._autocast():
            outputs = self.net(batch.video, batch.video_mask, query, query_mask)
        loss, parts = self.model.compute_loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self._params, cfg.clip_norm, foreach=True)
        self.optimizer.step()
        self.scheduler.step()
        # one sync for the loss and its parts together
        values = torch.stack([loss.detach().float(), *(v.float() for v in parts.values())]).tolist()
        value = values[0]
        if not math.isfinite(value):
            raise FloatingPointError(
                f"loss is {value} at step {self.step + 1}; lower --lr or check the features for NaN"
            )
        return value, dict(zip(parts, values[1:]))

    def _query(self, batch):
        if batch.query is not None:
            return batch.query, batch.query_mask
        if self.text.trainable_module() is not None:  # an unfrozen text encoder: features with grad
            return self.text.encode_batch(batch.query_text, self.device)
        return self.text.encode_live(batch.query_text, self.device)  # frozen, train mode: the reference's BERT

    # evaluation ------------------------------------------------------------------------------
    def _evaluate_and_keep(self) -> dict | None:
        """Evaluate on val (rank 0), append the row, save best.pt when R1@0.3 improves."""
        figs = None
        if self.is_writer and "val" in self.loaders and len(self.splits["val"]):
            t0 = time.time()
            figs, results = self.evaluate("val")
            assert figs is not None  # val has answers
            split = self.splits["val"]
            total = len(split) + sum(split.skipped.values())
            row = {
                "split": "val",
                "step": self.step,
                "epoch": self.epoch,
                **figs,
                "queries": len(results),
                "queries_total": total,
                "eval_s": round(time.time() - t0, 2),
            }
            self.history.append(row)
            self._emit(row)
            best = self.best[BEST_KEY] if self.best else None
            improved = (
                best is None or figs[BEST_KEY] > best or (self.cfg.best_ties == "last" and figs[BEST_KEY] == best)
            )
            self.log.info(
                "eval step %d: R1@0.3 %.2f R1@0.5 %.2f R3@0.01 %.2f R5@0.3 %.2f mIoU %.2f over %d of %d queries%s",
                self.step,
                figs["R1@0.3"],
                figs["R1@0.5"],
                figs["R3@0.01"],
                figs["R5@0.3"],
                figs["mIoU"],
                len(results),
                total,
                " (best)" if improved else "",
            )
            if improved:
                self.best = {
                    **figs,
                    "step": self.step,
                    "epoch": self.epoch,
                    "queries": len(results),
                    "queries_total": total,
                }
                if self.run is not None:
                    save_checkpoint(self.run.best_path, self._payload(full=False))
                    write_predictions(self.run.predictions_dir / "val-best.json", results)
                if self.status is not None:
                    self.status.update(best=self.best)
        self.dist.barrier()
        return figs

    def evaluate(self, which: str) -> tuple[dict | None, list[dict]]:
        """(figures in percent, or None for an unannotated split; challenge results) of the model now."""
        from engine.training.metrics import evaluate_loader

        figs, results = evaluate_loader(
            self.model,
            self.loaders[which],
            topk=5,
            device=self.device,
            autocast_dtype=torch.bfloat16 if self.amp else None,
            text_encoder=self.text if self.text.trainable_module() is not None else None,
        )
        return (_figures(figs) if figs is not None else None), results


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def write_predictions(path: Path, results: list[dict]) -> None:
    from engine.training.metrics import challenge_json

    atomic_write_json(path, challenge_json(results))


def evaluate_run(run: Run, *, split: str = "val", checkpoint: str = "best", log: logging.Logger | None = None) -> dict:
    """Evaluate a run's checkpoint on val (figures) or test (predictions only); writes the predictions.

    Returns {"split", "checkpoint", "predictions" (path), "figures" (None for test), "queries" (predicted),
    "queries_total" (in the file; the official evaluator's denominator)}.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"split {split!r}: use val or test")
    path = run.best_path if checkpoint == "best" else run.last_path if checkpoint == "last" else Path(checkpoint)
    if checkpoint == "best" and not path.exists() and run.last_path.exists():
        path = run.last_path  # a run stopped before its first evaluation
    ckpt = load_checkpoint(path)
    cfg = TrainConfig.from_dict(ckpt["config"])
    cfg.init_from = None
    trainer = Trainer(cfg, run=None, log=log)
    seed_everything(cfg.seed)
    trainer.build(splits=(split,))
    trainer.model.load_state_dict(ckpt["model"])
    if ckpt.get("text") is not None and trainer.text.trainable_module() is not None:
        trainer.text.trainable_module().load_state_dict(ckpt["text"])
    figs, results = trainer.evaluate(split)
    loaded = trainer.splits[split]
    tag = path.stem if path.parent == run.checkpoints_dir else "checkpoint"
    out = run.predictions_dir / f"{split}-{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, results)
    return {
        "split": split,
        "checkpoint": str(path),
        "predictions": str(out),
        "figures": figs,
        "queries": len(results),
        "queries_total": len(loaded) + sum(loaded.skipped.values()),
    }
