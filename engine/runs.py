"""Training runs as folders that outlive the process (and the TUI) that started them.

    WS/runs/<run_id>/
        config.json      what to train (written once, before launch)
        status.json      state (running/done/failed/stopped), pid, heartbeat, error; rewritten atomically
        metrics.jsonl    one JSON object per line: training rows and evaluation rows
        train.log        the process's log and anything it printed (tracebacks included)
        checkpoints/     best.pt (by val R1@0.3) and last.pt (every epoch and on SIGTERM)
        predictions/     challenge-format prediction files

The folder is the source of truth. A run process writes `status.json` every few seconds
(the heartbeat); a reader that finds "running" with a dead pid or a stale heartbeat shows the
run as failed, so a `kill -9`, an OOM kill or a machine reboot never leaves a run that looks alive.

Readers never break on what a live writer leaves behind: `RunTail` reads only the bytes added
to `metrics.jsonl` since its last call, keeps a half-written last line for the next call, and
survives a missing or corrupt `status.json` and a run folder deleted underneath it.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, WorkspaceError
from engine.workspace import Workspace, atomic_write_json

STATES = ("running", "done", "failed", "stopped")
HEARTBEAT_S = 2.0
# A live run rewrites its heartbeat every HEARTBEAT_S; this much silence means it is gone
# (or wedged so badly that nobody can reach it), which is what `failed` tells the user.
STALE_AFTER_S = 30.0
FIGURE_KEYS = ("R1@0.3", "R1@0.5", "R3@0.3", "R3@0.5", "R5@0.3", "R5@0.5", "R1@0.01", "R5@0.01", "mIoU")
BEST_KEY = "R1@0.3"


def new_run_id(stage: str, now: float | None = None) -> str:
    """`20261128-101500-baseline-ab12`: sortable by time, readable, unique enough to never collide."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    safe = "".join(c if c.isalnum() else "-" for c in stage.lower()) or "run"
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def as_int(x: Any) -> int | None:
    """`x` if it is a whole number (not a bool), else None: a damaged status.json field reads as missing."""
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def as_number(x: Any) -> float | None:
    """`x` if it is a finite number (not a bool), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return x


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists on this machine and is not a zombie."""
    pid = as_int(pid)
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    try:
        # An exited child that its parent has not reaped yet still answers kill(0).
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def effective_status(status: dict | None, now: float | None = None) -> dict:
    """The status a reader should show: a "running" run whose process is gone becomes failed.

    Fields of the wrong type (a string pid, a garbage heartbeat) count as missing, so a damaged
    status.json shows as a failed run instead of breaking the reader.
    """
    now = time.time() if now is None else now
    if not isinstance(status, dict):
        return {"state": "failed", "error": "status.json is missing or unreadable", "pid": None}
    out = dict(status)
    damaged = []
    for key, check in (
        ("pid", as_int),
        ("pgid", as_int),
        ("heartbeat", as_number),
        ("started", as_number),
        ("ended", as_number),
    ):
        if out.get(key) is not None and check(out[key]) is None:
            damaged.append(key)
            out[key] = None
    if out.get("error") is not None and not isinstance(out["error"], str):
        out["error"] = None
    if not isinstance(out.get("state"), str) or out["state"] not in STATES:
        out["state"] = "failed"
        out["error"] = f"status.json has an unknown state {status.get('state')!r}"
        return out
    if out["state"] != "running":
        return out
    pid = out.get("pid")
    same_host = out.get("host") in (None, socket.gethostname())
    heartbeat = out.get("heartbeat")
    age = now - heartbeat if heartbeat is not None else None
    note = f"; status.json has an unreadable {', '.join(damaged)}" if damaged else ""
    if pid and same_host and not pid_alive(pid):
        out["state"] = "failed"
        out["error"] = f"the run process (pid {pid}) ended without a final status{note}; see train.log"
    elif age is None or age > STALE_AFTER_S:
        out["state"] = "failed"
        shown = "never" if age is None else f"{age:.0f} s ago"
        out["error"] = f"no heartbeat from the run process (last {shown}){note}; see train.log"
    return out


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing, empty, torn or not an object."""
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def parse_metric_lines(data: bytes) -> tuple[list[dict], int]:
    """Rows from complete JSONL bytes; lines that are not JSON objects are skipped and counted."""
    rows: list[dict] = []
    bad = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def is_eval_row(row: dict) -> bool:
    return "split" in row and BEST_KEY in row


def best_eval(rows: list[dict], split: str = "val") -> dict | None:
    """The evaluation row with the highest R1@0.3 on `split` (the earliest wins ties)."""
    best = None
    for row in rows:
        if is_eval_row(row) and row.get("split") == split:
            if best is None or float(row[BEST_KEY]) > float(best[BEST_KEY]):
                best = row
    return best


class Run:
    """One run folder. Cheap to create; touches the disk only when asked."""

    # the process `start_run` launched for this run, when this object started it (None otherwise)
    process: subprocess.Popen | None = None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.id = self.path.name

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    predictions_dir = property(lambda self: self.path / "predictions")
    best_path = property(lambda self: self.path / "checkpoints" / "best.pt")
    last_path = property(lambda self: self.path / "checkpoints" / "last.pt")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_dir()

    def config(self) -> dict:
        """config.json, or a WorkspaceError naming the file."""
        data = read_json(self.config_path)
        if data is None:
            raise WorkspaceError(
                f"{self.config_path}: missing or not a JSON object; this run cannot be started or evaluated"
            )
        return data

    def raw_status(self) -> dict | None:
        return read_json(self.status_path)

    def status(self, now: float | None = None) -> dict:
        """The effective status (a dead "running" run shows as failed)."""
        raw = self.raw_status()
        if raw is None:
            # created a moment ago and its process is still importing torch: starting, not failed
            created = (read_json(self.config_path) or {}).get("created")
            now_ = time.time() if now is None else now
            if isinstance(created, (int, float)) and now_ - created < STALE_AFTER_S and not self.status_path.exists():
                return {"state": "running", "pid": None, "starting": True, "heartbeat": created}
        return effective_status(raw, now)

    def metrics(self) -> list[dict]:
        """Every complete row of metrics.jsonl (tolerates a torn last line)."""
        try:
            data = self.metrics_path.read_bytes()
        except OSError:
            return []
        cut = data.rfind(b"\n")
        return parse_metric_lines(data[: cut + 1])[0]

    def append_metrics(self, row: dict) -> None:
        """One line per row in one write, so a reader sees whole lines or a torn tail, never a mix."""
        line = (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def log_tail(self, max_bytes: int = 16384) -> list[str]:
        """The last lines of train.log (at most `max_bytes` read from the end)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").splitlines()
        return lines[1:] if size > max_bytes and lines else lines

    def summary(self, now: float | None = None) -> dict:
        """What a runs list shows: id, stage, state, progress, best R1@0.3, elapsed, error."""
        now = time.time() if now is None else now
        cfg = read_json(self.config_path) or {}
        st = self.status(now)
        raw = self.raw_status() or {}
        # every field is type-checked: a damaged file shows as blanks, never as a crash
        started = as_number(raw.get("started")) or as_number(cfg.get("created"))
        ended = as_number(raw.get("ended"))
        end = ended if ended else (as_number(raw.get("heartbeat")) if st["state"] != "running" else now)
        elapsed = max(0.0, end - started) if started is not None and end is not None else None
        best = raw.get("best") if isinstance(raw.get("best"), dict) else None
        stage = cfg.get("stage")
        return {
            "id": self.id,
            "path": str(self.path),
            "stage": stage if isinstance(stage, str) else "?",
            "state": st["state"],
            "error": st.get("error") if isinstance(st.get("error"), str) else None,
            "pid": as_int(raw.get("pid")),
            "step": as_int(raw.get("step")),
            "total_steps": as_int(raw.get("total_steps")),
            "epoch": as_int(raw.get("epoch")),
            "epochs": as_int(raw.get("epochs")),
            "best": best,
            "best_R1@0.3": as_number(best.get(BEST_KEY)) if best else None,
            "elapsed_s": elapsed,
            "created": as_number(cfg.get("created")),
        }


# ---------------------------------------------------------------------------------------------
# creating, finding, launching and stopping runs


def runs_dir(workspace: Workspace | str | Path) -> Path:
    if isinstance(workspace, Workspace):
        return workspace.runs_dir
    return Workspace(workspace).runs_dir


def create_run(workspace: Workspace, config: dict, *, run_id: str | None = None) -> Run:
    """A new run folder with config.json; records the run in the workspace "runs" table."""
    stage = str(config.get("stage", "run"))
    root = workspace.runs_dir
    for _ in range(10):
        rid = run_id or new_run_id(stage)
        path = root / rid
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            if run_id:
                raise WorkspaceError(f"{path}: a run with this id exists already; choose another id") from None
    else:  # pragma: no cover - 10 collisions of 16 random bits in the same second
        raise WorkspaceError(f"{root}: could not pick a free run id; try again")
    run = Run(path)
    run.checkpoints_dir.mkdir()
    run.predictions_dir.mkdir()
    config = dict(config, id=run.id, created=config.get("created") or time.time())
    atomic_write_json(run.config_path, config)
    try:
        with workspace.transaction():
            workspace.table("runs").insert({"id": run.id, "stage": stage, "created": config["created"]})
    except WorkspaceError:
        pass  # the folder is the source of truth; the table is only an index
    return run


def list_runs(workspace: Workspace | str | Path) -> list[Run]:
    """Every run folder of the workspace, oldest first (ids sort by creation time)."""
    root = runs_dir(workspace)
    try:
        entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [Run(p) for p in entries]


def find_run(workspace: Workspace | str | Path, ref: str) -> Run:
    """A run by id, a unique part of its id (e.g. "finetune", "5455") or its folder path;
    "latest" is the newest run."""
    path = Path(ref)
    if path.is_dir() and (path / "config.json").exists():
        return Run(path.resolve())
    runs = list_runs(workspace)
    if ref == "latest" and runs:
        return runs[-1]
    exact = [r for r in runs if r.id == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if ref and ref in r.id]
    if len(matches) == 1:
        return matches[0]
    where = runs_dir(workspace)
    if not matches:
        raise WorkspaceError(f"{where}: no run {ref!r}; `nlq-tui runs` lists them")
    raise WorkspaceError(
        f"{where}: {ref!r} matches {len(matches)} runs ({', '.join(r.id for r in matches[:3])}...); give more of the id"
    )


def entry_command(run: Run, *, resume: bool = False, nproc: int = 1) -> list[str]:
    """The command that trains `run`: the module entry, or torchrun for several GPUs."""
    args = [str(run.path)] + (["--resume"] if resume else [])
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "engine.training",
            *args,
        ]
    return [sys.executable, "-m", "engine.training", *args]


def launch(run: Run, *, resume: bool = False, nproc: int = 1, env: dict | None = None) -> subprocess.Popen:
    """Start the run in its own process session (it survives the terminal closing).

    stdout and stderr go to train.log, so a crash before logging is set up is still on record.
    status.json says "running" before the process starts; the process takes it over, and a
    process that never starts shows as failed once the heartbeat goes stale.
    """
    if resume and not run.last_path.exists():
        raise ConfigError(f"{run.last_path}: no checkpoint to resume from; start a new run instead")
    st = run.status()
    if st["state"] == "running" and not st.get("starting"):  # "starting": a new run, never launched yet
        raise WorkspaceError(f"{run.path}: the run is already running (pid {st.get('pid')}); stop it first")
    raw = run.raw_status() or {}
    now = time.time()
    atomic_write_json(
        run.status_path,
        {k: v for k, v in raw.items() if k in ("best", "started") and resume}
        | {"state": "running", "pid": None, "host": socket.gethostname(), "heartbeat": now, "launched": now},
    )
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env.setdefault("HF_HUB_OFFLINE", "1")
    child_env["NLQ_RUN_DETACHED"] = "1"
    with open(run.log_path, "ab") as log:
        return subprocess.Popen(
            entry_command(run, resume=resume, nproc=nproc),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env,
            close_fds=True,
        )


def stop_run(run: Run, sig: int = signal.SIGTERM) -> int:
    """SIGTERM the run's process group (the run saves last.pt and ends `stopped`); the pid signalled."""
    st = run.status()
    if st["state"] != "running":
        raise WorkspaceError(f"{run.path}: the run is not running (state {st['state']}); nothing to stop")
    raw = run.raw_status() or {}
    pid, pgid = as_int(raw.get("pid")), as_int(raw.get("pgid"))
    if not pid:
        raise WorkspaceError(f"{run.path}: the run is still starting (no pid yet); try again in a few seconds")
    try:
        if pgid and pgid != os.getpgrp():
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        raise WorkspaceError(f"{run.path}: the run process (pid {pid}) is gone already") from None
    except PermissionError:
        raise WorkspaceError(f"{run.path}: not allowed to signal pid {pid} (another user's run?)") from None
    return pgid or pid


def wait_for_state(run: Run, states: tuple[str, ...] = ("done", "failed", "stopped"), timeout: float = 60.0) -> dict:
    """Poll status.json until the effective state is one of `states` (or the timeout passes)."""
    deadline = time.time() + timeout
    while True:
        st = run.status()
        if st["state"] in states or time.time() > deadline:
            return st
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# the writer side: used by the training process (rank 0)


class StatusWriter:
    """Owns status.json for a live run: merges updates and rewrites it atomically; a heartbeat
    thread rewrites it every HEARTBEAT_S so readers can tell a live run from a dead one."""

    def __init__(self, run: Run, *, interval: float = HEARTBEAT_S, keep: dict | None = None) -> None:
        self.run = run
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: dict[str, Any] = dict(keep or {})

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.status.update(fields)
            self.status["heartbeat"] = time.time()
            atomic_write_json(self.run.status_path, self.status)

    def start(self, **fields: Any) -> None:
        now = time.time()
        self.status.setdefault("started", now)
        # Only a detached run owns its process group; a foreground run shares the shell's job
        # group (a pipe into `tee`, say), which `stop` must not signal.
        pgid = os.getpgrp() if os.environ.get("NLQ_RUN_DETACHED") == "1" else None
        self.update(
            state="running", pid=os.getpid(), pgid=pgid, host=socket.gethostname(), error=None, ended=None, **fields
        )
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.update()
            except OSError:
                pass  # a full disk must not kill training; the next beat tries again

    def finish(self, state: str, error: str | None = None, **fields: Any) -> None:
        assert state in STATES
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.update(state=state, error=error, ended=time.time(), **fields)


# ---------------------------------------------------------------------------------------------
# the reader side: used by the TUI and `nlq-tui runs`


@dataclass
class TailUpdate:
    rows: list[dict] = field(default_factory=list)  # new complete rows since the last poll
    reset: bool = False  # metrics.jsonl was replaced or truncated: drop what you had, rows restart
    gone: bool = False  # the run folder does not exist (any more)
    status: dict = field(default_factory=dict)  # the effective status


class RunTail:
    """Follows one run: new metrics rows at constant cost per call, the status, the log tail."""

    def __init__(self, run: Run | str | Path) -> None:
        self.run = run if isinstance(run, Run) else Run(run)
        self._offset = 0
        self._partial = b""
        self._ident: tuple[int, int] | None = None
        self.bad_lines = 0

    def read_new(self) -> tuple[list[dict], bool]:
        """(new rows, reset) from metrics.jsonl; a half-written last line waits for the next call."""
        try:
            f = open(self.run.metrics_path, "rb")
        except OSError:
            reset = self._offset > 0 or bool(self._partial)
            self._offset, self._partial, self._ident = 0, b"", None
            return [], reset
        with f:
            st = os.fstat(f.fileno())
            ident = (st.st_dev, st.st_ino)
            reset = False
            if self._ident is not None and (ident != self._ident or st.st_size < self._offset):
                reset = True
                self._offset, self._partial = 0, b""
            self._ident = ident
            f.seek(self._offset)
            data = f.read(max(0, st.st_size - self._offset))
        self._offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n")
        self._partial = data[cut + 1 :]
        rows, bad = parse_metric_lines(data[: cut + 1])
        self.bad_lines += bad
        return rows, reset

    def poll(self) -> TailUpdate:
        if not self.run.path.is_dir():
            reset = self._offset > 0
            self._offset, self._partial, self._ident = 0, b"", None
            return TailUpdate(reset=reset, gone=True, status={"state": "failed", "error": "the run folder was deleted"})
        rows, reset = self.read_new()
        return TailUpdate(rows=rows, reset=reset, status=self.run.status())

    def log_tail(self, max_bytes: int = 16384) -> list[str]:
        return self.run.log_tail(max_bytes)


# ---------------------------------------------------------------------------------------------
# what a new training run trains (shared by `nlq-tui train` and the Train screen; no torch here)

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
        run.process = launch(run, resume=False, nproc=nproc)
    return run
