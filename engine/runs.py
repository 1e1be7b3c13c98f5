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
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, WorkspaceError
from engine.proc import (
    boot_id,
    child_env,
    pid_alive,
    pid_reused,
    process_group,
    process_start_time,
    same_process,
    this_host,
)
from engine.workspace import DEFAULT_WORKSPACE, Workspace, atomic_write_json, disk_error

STATES = ("running", "done", "failed", "stopped")
HEARTBEAT_S = 2.0
# A live run rewrites its heartbeat every HEARTBEAT_S; this much silence means it is gone
# (or wedged so badly that nobody can reach it), which is what `failed` tells the user.
STALE_AFTER_S = 30.0
# A heartbeat later than now is no sign of life (a forged file, or another host's clock far
# ahead); a little slack lets a teammate's box whose clock runs slightly fast still count.
FUTURE_SLACK_S = 5.0
# status.json is a few hundred bytes; anything much bigger is damage, not a status
STATUS_MAX_BYTES = 1 << 20
FIGURE_KEYS = ("R1@0.3", "R1@0.5", "R3@0.3", "R3@0.5", "R5@0.3", "R5@0.5", "R1@0.01", "R3@0.01", "R5@0.01", "mIoU")
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
        state = status.get("state")
        shown = repr(state)[:40] if isinstance(state, str) else f"of type {type(state).__name__}"
        out["state"] = "failed"
        out["error"] = f"status.json has an unknown state {shown}"
        return out
    if out["state"] != "running":
        return out
    pid = out.get("pid")
    same_host = out.get("host") in (None, this_host())
    heartbeat = out.get("heartbeat")
    age = now - heartbeat if heartbeat is not None else None
    note = f"; status.json has an unreadable {', '.join(damaged)}" if damaged else ""
    if pid and same_host and not pid_alive(pid):
        out["state"] = "failed"
        out["error"] = f"the run process (pid {pid}) ended without a final status{note}; see train.log"
    elif pid and same_host and pid_reused(out):
        out["state"] = "failed"
        out["error"] = f"the run process (pid {pid}) ended without a final status; its pid is another process's now"
    elif age is None or age > STALE_AFTER_S:
        out["state"] = "failed"
        shown = "never" if age is None else f"{age:.0f} s ago"
        out["error"] = f"no heartbeat from the run process (last {shown}){note}; see train.log"
    elif age < -FUTURE_SLACK_S:
        out["state"] = "failed"
        out["error"] = f"status.json has a heartbeat {-age:.0f} s in the future, so it proves no live process{note}"
    return out


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing, empty, torn, nested too deeply,
    over STATUS_MAX_BYTES or not an object (a folder in its place included)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(STATUS_MAX_BYTES + 1)
        if len(raw) > STATUS_MAX_BYTES:
            return None
        data = json.loads(raw)
    except (OSError, ValueError, RecursionError):
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
        except (ValueError, RecursionError):
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
        """What a runs list shows: id, stage, state, progress, best R1@0.3, elapsed, error, and
        whether a checkpoint exists (a finetune can start from it)."""
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
            "has_checkpoint": self.best_path.is_file() or self.last_path.is_file(),
        }


# ---------------------------------------------------------------------------------------------
# creating, finding, launching and stopping runs


def runs_dir(workspace: Workspace | str | Path | None) -> Path:
    """WS/runs; a path is not opened as a workspace (reading must not create one)."""
    if isinstance(workspace, Workspace):
        return workspace.runs_dir
    return Path(workspace or DEFAULT_WORKSPACE).expanduser().resolve() / "runs"


def runs_problem(workspace: Workspace | str | Path | None) -> str | None:
    """Why WS/runs cannot hold runs (a file where the folder should be), or None."""
    root = runs_dir(workspace)
    if root.parent.exists() and not root.parent.is_dir():
        return f"{root.parent}: is a file, not a workspace folder; choose another --workspace"
    if root.exists() and not root.is_dir():
        return f"{root}: is a file, not the runs folder; move it aside and runs can be listed and started again"
    return None


def create_run(workspace: Workspace, config: dict, *, run_id: str | None = None) -> Run:
    """A new run folder with config.json. A disk that refuses the write (full, EIO) leaves no
    half-made folder behind and raises one WorkspaceError line."""
    problem = runs_problem(workspace)
    if problem:
        raise WorkspaceError(problem)
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
        except OSError as exc:
            raise disk_error(path, "the run folder", exc) from None
    else:  # pragma: no cover - 10 collisions of 16 random bits in the same second
        raise WorkspaceError(f"{root}: could not pick a free run id; try again")
    run = Run(path)
    config = dict(config, id=run.id, created=config.get("created") or time.time())
    try:
        run.checkpoints_dir.mkdir()
        run.predictions_dir.mkdir()
        atomic_write_json(run.config_path, config)
    except (OSError, WorkspaceError) as exc:  # atomic writes name a full disk themselves
        shutil.rmtree(path, ignore_errors=True)  # a run without its config.json is no run
        if isinstance(exc, WorkspaceError):
            raise
        raise disk_error(path, "the run folder", exc) from None
    return run


def list_runs(workspace: Workspace | str | Path | None) -> list[Run]:
    """Every run folder of the workspace, oldest first (ids sort by creation time)."""
    root = runs_dir(workspace)
    try:
        entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    return [Run(p) for p in entries]


def find_run(workspace: Workspace | str | Path | None, ref: str) -> Run:
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


def check_resumable(run: Run) -> dict:
    """The one resume check (the Train screen's `r`, `nlq-tui train --resume`, `launch`): a
    stopped or failed run with a last.pt. Returns its status; raises one line otherwise."""
    st = run.status()
    if st["state"] == "running":
        raise WorkspaceError(f"{run.path}: the run is running; resume continues a stopped or failed run")
    if st["state"] == "done":
        raise ConfigError(
            f"{run.path}: the run is done; resume continues a stopped or failed run (start a new run, or a finetune from it)"
        )
    if not run.last_path.exists():
        raise ConfigError(f"{run.last_path}: no checkpoint to resume from; start a new run instead")
    return st


def launch(
    run: Run, *, resume: bool = False, nproc: int = 1, env: dict | None = None, secret_env: Iterable[str] = ()
) -> subprocess.Popen:
    """Start the training process detached from this session (it survives the terminal closing).

    stdout and stderr go to train.log, so a crash before logging is set up is still on record.
    status.json says "running" before the process starts; the process takes it over, and a
    process that never starts shows as failed once the heartbeat goes stale. The child gets no
    LLM key variables (`engine.proc.child_env`; `secret_env` names more, e.g. --api-key-env's).
    """
    if resume:
        check_resumable(run)
    st = run.status()
    if st["state"] == "running" and not st.get("starting"):  # "starting": a new run, never launched yet
        raise WorkspaceError(f"{run.path}: the run is already running (pid {st.get('pid')}); stop it first")
    raw = run.raw_status() or {}
    now = time.time()
    atomic_write_json(
        run.status_path,
        {k: v for k, v in raw.items() if k in ("best", "started") and resume}
        | {"state": "running", "pid": None, "host": this_host(), "heartbeat": now, "launched": now},
    )
    child = child_env(env, secret_env)
    child.setdefault("PYTHONUNBUFFERED", "1")
    child.setdefault("HF_HUB_OFFLINE", "1")
    child["NLQ_RUN_DETACHED"] = "1"
    with open(run.log_path, "ab") as log:
        return subprocess.Popen(
            entry_command(run, resume=resume, nproc=nproc),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child,
            close_fds=True,
        )


def resume_run(run: Run, *, secret_env: Iterable[str] = ()) -> subprocess.Popen:
    """Continue a stopped or failed run from its last.pt, detached, with its own nproc."""
    nproc = as_int((read_json(run.config_path) or {}).get("nproc")) or 1
    return launch(run, resume=True, nproc=max(1, nproc), secret_env=secret_env)


def stop_run(run: Run, sig: int = signal.SIGTERM) -> int:
    """SIGTERM the run's process group (the run saves last.pt and ends `stopped`); the pid signalled.

    Only the very process status.json names is signalled: on this host, alive, with the start
    time recorded at launch (`engine.proc.same_process`). Anything else raises one line and
    signals nothing: a run on another host, a reused pid, a status without an identity.
    """
    st = run.status()
    raw = run.raw_status() or {}
    host = raw.get("host")
    if st["state"] == "running" and isinstance(host, str) and host and host != this_host():
        raise WorkspaceError(f"{run.path}: the run runs on {host}; stop it there")
    if st["state"] != "running":
        why = f": {st['error']}" if st.get("error") else ""
        raise WorkspaceError(f"{run.path}: the run is not running (state {st['state']}{why}); nothing to stop")
    pid, pgid = as_int(raw.get("pid")), as_int(raw.get("pgid"))
    if not pid:
        raise WorkspaceError(f"{run.path}: the run is still starting (no pid yet); try again in a few seconds")
    ok, why = same_process(raw)
    if not ok:
        raise WorkspaceError(f"{run.path}: {why}; nothing was signalled")
    # the group is the run's only if the verified process is in it
    group = pgid if pgid and pgid != os.getpgrp() and process_group(pid) == pgid else None
    try:
        if group:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        raise WorkspaceError(f"{run.path}: the run process (pid {pid}) is gone already") from None
    except PermissionError:
        raise WorkspaceError(f"{run.path}: not allowed to signal pid {pid} (another user's run?)") from None
    return group or pid


def delete_run(run: Run) -> None:
    """Remove a run folder that no live process writes to; one line when it cannot."""
    st = run.status()
    if st["state"] == "running":
        host = (run.raw_status() or {}).get("host")
        if isinstance(host, str) and host and host != this_host():
            raise WorkspaceError(f"{run.path}: the run runs on {host}; stop it there before deleting it")
        raise WorkspaceError(f"{run.path}: the run is running; stop it before deleting it")
    try:
        shutil.rmtree(run.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise WorkspaceError(f"{run.path}: could not delete ({exc.strerror or exc})") from None


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
        pid = os.getpid()
        # the identity `stop_run` checks before it signals (engine/proc.py)
        ident = {"host": this_host(), "start_time": process_start_time(pid), "boot_id": boot_id()}
        self.update(state="running", pid=pid, pgid=pgid, error=None, ended=None, **ident, **fields)
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
# the reader side: used by the TUI and `nlq-tui runs`; nothing here raises on a damaged folder


def _unreadable(run: Run, exc: BaseException) -> str:
    return f"{run.status_path}: unreadable ({type(exc).__name__})"


def status_or_failed(run: Run) -> dict:
    """`run.status()`, or a failed status naming the problem (the folder went away, a bug in
    reading a damaged file): a reader's poll never raises."""
    try:
        return run.status()
    except OSError:
        return {"state": "failed", "error": "the run folder was deleted"}
    except Exception as exc:  # a damaged file we did not foresee must not stop the poll
        return {"state": "failed", "error": _unreadable(run, exc)}


def summary_or_failed(run: Run) -> dict | None:
    """`run.summary()`, a failed summary naming the problem, or None when the folder is gone."""
    try:
        return run.summary()
    except OSError:
        return None
    except Exception as exc:  # as status_or_failed
        return {
            "id": run.id,
            "path": str(run.path),
            "stage": "?",
            "state": "failed",
            "error": _unreadable(run, exc),
            "elapsed_s": None,
        }


class RunIndex:
    """The runs list, newest first, re-read cheaply: a run that has ended is summarised again
    only when its status.json changes, so a long list costs one stat per ended run."""

    def __init__(self, workspace: Workspace | str | Path | None) -> None:
        self.workspace = workspace
        self._cache: dict[str, tuple[Any, dict]] = {}

    def summaries(self) -> list[dict]:
        out = []
        seen = set()
        for run in reversed(list_runs(self.workspace)):
            seen.add(run.id)
            try:
                st = os.stat(run.status_path)
                stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            hit = self._cache.get(run.id)
            if hit is not None and hit[0] == stamp and stamp is not None and hit[1]["state"] != "running":
                out.append(hit[1])
                continue
            summary = summary_or_failed(run)
            if summary is None:
                continue  # deleted between the listing and the read
            self._cache[run.id] = (stamp, summary)
            out.append(summary)
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        return out


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
        """New rows and the effective status. Never raises: a screen polls this every half
        second, and whatever a damaged folder holds reads as a failed run with its reason."""
        if not self.run.path.is_dir():
            reset = self._offset > 0
            self._offset, self._partial, self._ident = 0, b"", None
            return TailUpdate(reset=reset, gone=True, status={"state": "failed", "error": "the run folder was deleted"})
        rows, reset = self.read_new()
        return TailUpdate(rows=rows, reset=reset, status=status_or_failed(self.run))

    def log_tail(self, max_bytes: int = 16384) -> list[str]:
        return self.run.log_tail(max_bytes)
