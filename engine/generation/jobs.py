"""A generation job as its own process, so that it outlives the terminal and the app that started it.

    WS/generation/
        job.json       what to generate (a JobSpec: settings only, never the API key), written before launch
        status.json    state, pid, pgid, host, start_time, boot_id, heartbeat, step, stats, error; rewritten atomically
        generate.log   the process's stdout and stderr (a progress line every few seconds, tracebacks)
        feed.jsonl     a bounded sample of its events (stored groups, failed requests, steps) for the app
        pause          present while the user wants the job paused; the process polls it

The same path builds a job for `nlq-tui generate` in the foreground, for `--detach` and for the
Generate screen (`build_job` from a `JobSpec`), so the three cannot drift apart. Runs of
training work the same way (see docs/ARCHITECTURE.md, "Runs"): the folder is the truth, a
"running" status whose process is gone, whose process is another one with the same pid, or whose
heartbeat is stale (or in the future) reads as failed.

The detached process gets the API key variable its backend needs (from the environment of the
command that started it) and no other LLM key; nothing it writes holds the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import proc
from engine.errors import ConfigError, UserError, WorkspaceError
from engine.generation.settings import bound_text
from engine.workspace import Workspace, atomic_write_json

JOB_DIR = "generation"
LIVE_STATES = ("starting", "running", "paused")
END_STATES = ("done", "cancelled", "failed")
HEARTBEAT_S = 1.0
STALE_AFTER_S = 30.0
FUTURE_SLACK_S = 5.0  # a heartbeat further ahead than this is a clock we cannot trust: stale
PROGRESS_LOG_S = 10.0  # a plain progress line this often where nobody sees a live one
FEED_GROUPS_PER_S = 5  # stored groups written to feed.jsonl per second (a person reads a sample)
FEED_MAX_BYTES = 8 << 20
STATUS_MAX_BYTES = 1 << 20


# ---------------------------------------------------------------------------------------------
# what to generate


@dataclass
class JobSpec:
    """Every setting of a generation job, as the CLI flags name them (see `nlq-tui generate -h`)."""

    data: str = "sample_data"
    features: str | None = None
    backend: str = "template"
    model: str | None = None
    base_urls: list[str] | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int | None = None
    batch_size: int | None = None
    timeout: float = 120.0
    max_retries: int = 5
    max_tokens: int = 1024
    temperature: float = 0.7
    structured: bool = True
    price_in: float | None = None  # USD per 1M prompt tokens
    price_out: float | None = None  # USD per 1M completion tokens
    max_response_bytes: int | None = None
    device: str | None = None
    k: int = 5
    alpha: float = 4.9
    min_window: float = 1.0
    narration_pass: str = "1"
    stride: int | None = None
    groups: int | None = None
    seed: int = 0
    per_video: int | None = None
    checks: str = "full"
    prompt_version: int | None = None
    name: str | None = None  # the variant's name (default: from backend, model and prompt version)
    flag_reasons: list[str] | None = None  # validation reasons this variant keeps as flags, not rejections
    no_cache: bool = False
    extra: dict = field(default_factory=dict)  # settings a newer version wrote; kept, not used

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str = "job.json") -> JobSpec:
        if not isinstance(d, dict):
            raise WorkspaceError(f"{where}: not a JSON object; start the job again")
        names = {f.name for f in dataclasses.fields(cls)}
        spec = cls(**{k: v for k, v in d.items() if k in names and k != "extra"})
        spec.extra = {k: v for k, v in d.items() if k not in names}
        try:
            check_spec(spec)
        except ConfigError as exc:
            raise WorkspaceError(f"{where}: {exc}") from None
        return spec


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# The job's own numbers (the backend's are GenerationSettings'): flag, attribute, whole?, low, high, open low?
_RANGES: tuple[tuple[str, str, bool, float, float, bool], ...] = (
    ("--k", "k", True, 1, 100, False),
    ("--alpha", "alpha", False, 0.0, 1e6, True),
    ("--min-window", "min_window", False, 0.0, 1e6, False),
    ("--stride", "stride", True, 1, 1_000_000, False),
    ("--groups", "groups", True, 1, 1 << 40, False),
    ("--seed", "seed", True, 0, 1 << 63, False),
    ("--per-video", "per_video", True, 1, 1 << 40, False),
    ("--prompt-version", "prompt_version", True, 1, 1 << 31, False),
)


def check_number(flag: str, value: Any, whole: bool, low: float, high: float, open_low: bool = False) -> None:
    """One-line ConfigError unless `value` is a finite number (or whole number) within the range."""
    ok = _is_int(value) if whole else _is_num(value)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        lo = f"> {bound_text(low)}" if open_low else f">= {bound_text(low)}"
        noun = "a whole number" if whole else "a number"
        raise ConfigError(f"{flag} must be {noun} {lo} and <= {bound_text(high)}, got {value!r}")


def generation_settings(spec: JobSpec):
    """The backend half of the spec as GenerationSettings (unset numbers keep their defaults)."""
    from engine.generation.settings import GenerationSettings

    if spec.base_urls is not None and not isinstance(spec.base_urls, list):
        raise ConfigError("--base-url must be a list of URLs")
    kw: dict[str, Any] = {"backend": spec.backend, "model": spec.model, "base_urls": tuple(spec.base_urls or ()),
                          "api_key_env": spec.api_key_env, "structured": bool(spec.structured),
                          "device": spec.device}  # fmt: skip
    for name in ("concurrency", "timeout", "max_retries", "max_tokens", "temperature", "price_in", "price_out",
                 "batch_size", "max_response_bytes"):  # fmt: skip
        value = getattr(spec, name)
        if value is not None:
            kw[name] = value
    return GenerationSettings(**kw).validated()


def _check_variant(spec: JobSpec) -> None:
    from engine.candidate import safe_name
    from engine.generation.validate import REASONS

    if spec.name is not None and safe_name(spec.name) != spec.name:
        hint = safe_name(spec.name) or "v2"
        raise ConfigError(f"--name {spec.name[:60]!r}: use letters, digits, '.', '_' or '-' (e.g. {hint})")
    if spec.flag_reasons is not None:
        if not isinstance(spec.flag_reasons, list):
            raise ConfigError("--flag-reason must be a list of validation reasons")
        for reason in spec.flag_reasons:
            if reason not in REASONS:
                raise ConfigError(
                    f"--flag-reason {str(reason)[:40]!r} is not a validation reason: {', '.join(REASONS)}"
                )


def check_spec(spec: JobSpec) -> JobSpec:
    """Every number in range and every choice known, or a one-line ConfigError naming the flag."""
    for flag, attr, whole, low, high, open_low in _RANGES:
        value = getattr(spec, attr)
        if value is not None:
            check_number(flag, value, whole, low, high, open_low)
    choices = (("--checks", "checks", ("full", "fast")), ("--pass", "narration_pass", ("1", "2", "both")))
    for flag, attr, allowed in choices:
        if getattr(spec, attr) not in allowed:
            raise ConfigError(f"{flag} must be one of {', '.join(allowed)}, got {str(getattr(spec, attr))[:40]!r}")
    for flag, attr in (("--model", "model"), ("--features", "features"), ("--name", "name"), ("--device", "device")):
        value = getattr(spec, attr)
        if value is not None and (not isinstance(value, str) or len(value) > 500):
            raise ConfigError(f"{flag} must be a short text, got {str(value)[:40]!r}")
    if not isinstance(spec.api_key_env, str) or not spec.api_key_env.replace("_", "").isalnum():
        raise ConfigError(f"--api-key-env must name an environment variable, got {str(spec.api_key_env)[:40]!r}")
    if not isinstance(spec.data, str) or not spec.data:
        raise ConfigError("--data must name a folder")
    _check_variant(spec)
    settings = generation_settings(spec)
    spec.base_urls = list(settings.base_urls) or None
    return spec


def window_params(spec: JobSpec):
    from engine.windows import WindowParams

    p = spec.narration_pass
    return WindowParams(k=spec.k, alpha=spec.alpha, min_window=spec.min_window,
                        narration_pass=p if p == "both" else int(p)).validated()  # fmt: skip


def make_spec_backend(spec: JobSpec):
    from engine.generation.factory import backend_from

    return backend_from(generation_settings(spec))


def build_job(spec: JobSpec, ws: Workspace, *, index=None, result=None, on_event=None, progress_every: float = 0.25):
    """A GenerationJob for the spec (loads the index unless given). Raises UserError for bad settings."""
    from engine.generation.pipeline import GenerationJob
    from engine.generation.prompt import get_prompt, pin_current_prompt

    check_spec(spec)
    backend = make_spec_backend(spec)
    params = window_params(spec)
    prompt = get_prompt(ws, spec.prompt_version) if spec.prompt_version else pin_current_prompt(ws)
    if index is None:
        from engine.ego4d import load_index

        # a detached job runs a heartbeat thread: a cold open may build in a helper process,
        # which must not get the key this job holds (--api-key-env)
        secrets = [spec.api_key_env]  # child_env ignores an empty name
        if spec.features:
            index = load_index(spec.data, features=spec.features, use_cache=not spec.no_cache, secret_names=secrets)
        else:
            index = load_index(spec.data, use_cache=not spec.no_cache, secret_names=secrets)
    return GenerationJob(
        index, ws, backend, params=params, stride=spec.stride, groups=spec.groups, seed=spec.seed,
        per_video=spec.per_video, checks=spec.checks, prompt=prompt, result=result, on_event=on_event,
        progress_every=progress_every, variant=spec.name, policy=dict.fromkeys(spec.flag_reasons or (), "flag"),
    )  # fmt: skip


def remember_data(ws: Workspace, spec: JobSpec) -> None:
    """Remember the root and features as the app does, so that export and train find them."""
    ws.set("data_root", str(Path(spec.data).resolve()))
    if spec.features:
        ws.set("features", spec.features)


def check_lock_free(ws: Workspace) -> None:
    """WorkspaceError naming the holder when another process writes candidates; changes nothing."""
    from engine.store import GENERATION_LOCK

    if not (ws.path / "locks").is_dir():
        return
    ws.acquire(GENERATION_LOCK, "generation check").release()


# ---------------------------------------------------------------------------------------------
# progress as a line of text


def fmt_eta(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def progress_parts(st: dict, eta: float | None) -> dict[str, str]:
    """The figures of a progress line, each as short text (the screen lays them out by width)."""
    done = st["groups_done"] + st["groups_failed"]
    todo = max(0, st["groups_total"] - st["groups_skipped"])
    finished = st.get("state") == "done"
    pct = 100.0 if finished or todo == 0 else 100.0 * done / todo
    rej = sum(st.get("questions_rejected", {}).values())
    cost = st.get("cost")
    return {
        "groups": f"{done:,}/{todo:,} groups",
        "pct": f"{pct:.0f}%",
        "rate": f"{st.get('groups_per_second', 0.0):.1f}/s",
        "eta": f"ETA {fmt_eta(None if finished else eta)}",
        "valid": f"valid {st['questions_valid']:,}",
        "rejected": f"rejected {rej:,}",
        "failed": f"failed {st['failed_requests']:,}",
        "tokens": f"tokens {st['tokens']:,}",
        "cost": "" if cost is None else f"${cost:.4f}",
    }


def progress_line(st: dict, eta: float | None) -> str:
    p = progress_parts(st, eta)
    return "  ".join(v for v in (p["groups"], p["pct"], p["rate"], p["eta"], p["valid"], p["rejected"],
                                 p["failed"], p["tokens"], p["cost"]) if v)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the job folder and its status


def job_dir(ws: Workspace | str | Path) -> Path:
    root = ws.path if isinstance(ws, Workspace) else Path(ws)
    return root / JOB_DIR


def _read_status_file(path: Path) -> dict | None:
    try:
        data = path.read_bytes()[:STATUS_MAX_BYTES]
        d = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def effective_status(status: dict | None, now: float | None = None) -> dict | None:
    """The status as a reader should show it: a live state whose process is gone reads as failed."""
    if status is None:
        return None
    now = time.time() if now is None else now
    out = dict(status)
    if out.get("state") not in LIVE_STATES + END_STATES:
        return {**out, "state": "failed", "error": f"status.json has an unknown state {str(out.get('state'))[:40]!r}"}
    if not isinstance(out.get("stats"), dict):
        out["stats"] = None
    if out["state"] not in LIVE_STATES:
        return out
    beat = out.get("heartbeat")
    age = now - beat if isinstance(beat, (int, float)) and _is_num(beat) else None
    here = out.get("host") in (None, proc.this_host())
    alive, why = proc.same_process(out) if here and _is_int(out.get("pid")) else (True, "")
    why = why.replace("the run process", "the process")
    if not alive:
        out.update(state="failed", error=f"the generation process ended without a final status ({why}); "
                                         "see generation/generate.log, then start it again to resume")  # fmt: skip
    elif age is None or age > STALE_AFTER_S or age < -FUTURE_SLACK_S:
        shown = "never" if age is None else ("in the future" if age < 0 else f"{age:.0f} s ago")
        out.update(state="failed", error=f"no heartbeat from the generation process (last {shown}); "
                                         "see generation/generate.log")  # fmt: skip
    return out


def read_status(ws: Workspace | str | Path, now: float | None = None) -> dict | None:
    """The workspace's generation job status (effective), or None when no job was ever detached."""
    return effective_status(_read_status_file(job_dir(ws) / "status.json"), now)


def live_job(ws: Workspace | str | Path) -> dict | None:
    st = read_status(ws)
    return st if st is not None and st["state"] in LIVE_STATES else None


def set_paused(ws: Workspace | str | Path, paused: bool) -> None:
    """Ask the detached job to pause (requests in flight finish) or to go on."""
    flag = job_dir(ws) / "pause"
    if paused:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text("paused by the user\n")
    else:
        flag.unlink(missing_ok=True)


def stop_job(ws: Workspace | str | Path) -> int:
    """SIGTERM the detached job (it stores the groups in flight and ends `cancelled`); the pid signalled.

    Only a process on this host whose start time matches the one it recorded is signalled.
    """
    st = read_status(ws)
    if st is None or st["state"] not in LIVE_STATES:
        state = "no job" if st is None else f"state {st['state']}"
        why = f": {st['error']}" if st is not None and isinstance(st.get("error"), str) else ""
        raise WorkspaceError(f"{job_dir(ws)}: no generation job is running ({state}{why}); nothing to stop")
    pid = st.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise WorkspaceError(f"{job_dir(ws)}: the job is still starting (no pid yet); try again in a few seconds")
    alive, why = proc.same_process(st)
    if not alive:
        raise WorkspaceError(f"{job_dir(ws)}: not stopped: {why.replace('the run process', 'the job process')}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise WorkspaceError(f"{job_dir(ws)}: the job process (pid {pid}) is gone already") from None
    except PermissionError:
        raise WorkspaceError(f"{job_dir(ws)}: not allowed to signal pid {pid} (another user's job?)") from None
    return pid


def wait_for_end(ws: Workspace | str | Path, timeout: float = 60.0) -> dict | None:
    deadline = time.time() + timeout
    while True:
        st = read_status(ws)
        if (st is not None and st["state"] in END_STATES) or time.time() > deadline:
            return st
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# launching


def child_env(spec: JobSpec, env: dict | None = None) -> dict:
    """The environment for the job process: no LLM key variable except the one its backend reads."""
    src = dict(os.environ if env is None else env)
    out = proc.child_env(src, secret_names=[spec.api_key_env])
    if spec.backend == "openai" and spec.api_key_env in src:
        out[spec.api_key_env] = src[spec.api_key_env]
    out.setdefault("PYTHONUNBUFFERED", "1")
    out.setdefault("HF_HUB_OFFLINE", "1")
    return out


def start_job(ws: Workspace, spec: JobSpec, *, env: dict | None = None) -> subprocess.Popen:
    """Launch the job as its own process session (it survives the terminal closing).

    Refuses (WorkspaceError) while another job of the workspace runs or holds the candidates, before
    anything is written.
    """
    check_spec(spec)
    make_spec_backend(spec)  # a missing API key or model is said here, not in the child's log
    st = live_job(ws)
    if st is not None:
        raise WorkspaceError(
            f"{job_dir(ws)}: a generation job is {st['state']} (pid {st.get('pid')}); "
            "watch it with `nlq-tui generate --status` or stop it first"
        )
    check_lock_free(ws)
    d = job_dir(ws)
    d.mkdir(parents=True, exist_ok=True)
    (d / "pause").unlink(missing_ok=True)
    (d / "feed.jsonl").unlink(missing_ok=True)
    atomic_write_json(d / "job.json", spec.to_json())
    now = time.time()
    atomic_write_json(d / "status.json", {"state": "starting", "pid": None, "host": proc.this_host(),
                                          "heartbeat": now, "launched": now, "step": "starting",
                                          "stats": None, "error": None})  # fmt: skip
    with open(d / "generate.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "engine.generation.jobs", str(ws.path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env(spec, env),
            close_fds=True,
        )


# ---------------------------------------------------------------------------------------------
# the job process


class StatusWriter:
    """Owns status.json in the job process: merges fields, rewrites atomically, beats every second,
    and applies the pause flag the user sets from outside."""

    def __init__(self, folder: Path, keep: dict) -> None:
        self.folder = folder
        self.path = folder / "status.json"
        self.status: dict[str, Any] = dict(keep)
        self.job = None
        self._lock = threading.RLock()  # the SIGTERM handler may finish while the main thread writes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.status.update(fields)
            self.status["heartbeat"] = time.time()
            atomic_write_json(self.path, self.status)

    def start(self, **fields: Any) -> None:
        ident = proc.identity(os.getpid())  # host, pid, start_time, boot_id: what `stop` checks
        self.update(state="running", pgid=os.getpgrp(), started=time.time(), error=None, **ident, **fields)
        self._thread = threading.Thread(target=self._beat, name="generation-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            job = self.job
            if job is not None:
                want = (self.folder / "pause").exists()
                if want != job.paused:
                    job.pause() if want else job.resume()
            try:
                self.update()
            except OSError:
                pass  # a full disk must not kill the job; the next beat tries again

    def finish(self, state: str, error: str | None = None, **fields: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.update(state=state, error=error, ended=time.time(), **fields)


class FeedWriter:
    """Appends the job's feed events (stored groups, failed requests, steps) to feed.jsonl, so that
    an app attached later shows what the job makes. Bounded: a few group events a second and
    FEED_MAX_BYTES in all; the figures are in status.json either way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._window = (0.0, 0)  # (second, group events written in it)

    def add(self, ev: dict) -> None:
        kind = ev.get("type")
        if kind == "group":
            now = int(time.monotonic())
            second, n = self._window
            n = n + 1 if now == second else 1
            self._window = (now, n)
            if n > FEED_GROUPS_PER_S:
                return
        elif kind not in ("failure", "step"):
            return
        line = (json.dumps(ev, ensure_ascii=True, default=str) + "\n").encode()
        if self.written + len(line) > FEED_MAX_BYTES:
            return
        try:
            with open(self.path, "ab") as f:
                f.write(line)
            self.written += len(line)
        except OSError:
            pass  # a full disk must not stop the job; the feed is a courtesy


class FeedTail:
    """Reads the lines added to feed.jsonl since the last call (a torn last line waits for the next);
    starts near the end, so attaching to a long job shows its latest events."""

    def __init__(self, ws: Workspace | str | Path, start_back: int = 64 * 1024) -> None:
        self.path = job_dir(ws) / "feed.jsonl"
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        self.offset = max(0, size - start_back)
        self._skip_partial = self.offset > 0

    def read_new(self, max_bytes: int = 256 * 1024) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(max_bytes)
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        data = data[: end + 1]
        self.offset += len(data)
        lines = data.split(b"\n")[:-1]
        if self._skip_partial:
            lines, self._skip_partial = lines[1:], False
        out = []
        for line in lines:
            try:
                ev = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(ev, dict) and ev.get("type") in ("group", "failure", "step"):
                out.append(ev)
        return out


def _job_events(writer: StatusWriter, job_ref: list, feed: FeedWriter | None = None, log=sys.stderr):
    last = [0.0]

    def on_event(ev: dict) -> None:
        kind = ev.get("type")
        if feed is not None:
            feed.add(ev)
        if kind == "step":
            writer.status["step"] = str(ev.get("text") or "")[:200] or None
            if writer.status["step"]:
                print(writer.status["step"], file=log, flush=True)
            return
        if kind != "progress":
            return
        st = ev["stats"]
        job = job_ref[0]
        eta = job.stats.eta if job is not None else None
        with writer._lock:  # the heartbeat writes it out within a second
            writer.status.update(stats=st, eta=eta)
            if st["state"] in ("running", "paused"):
                writer.status["state"] = st["state"]
        now = time.monotonic()
        if now - last[0] >= PROGRESS_LOG_S or st["state"] in END_STATES:
            last[0] = now
            print(progress_line(st, eta), file=log, flush=True)

    return on_event


def run_detached(ws_path: str) -> int:
    """The job process: read job.json, run it, keep status.json current, end with a final state."""
    ws = Workspace(ws_path)
    folder = job_dir(ws)
    keep = _read_status_file(folder / "status.json") or {}
    writer = StatusWriter(folder, {k: v for k, v in keep.items() if k in ("launched",)})
    writer.start(step="reading job.json", stats=None)
    job_ref: list = [None]
    signal.signal(signal.SIGTERM, lambda *_: job_ref[0].cancel() if job_ref[0] is not None else _exit_early(writer))
    try:
        spec = JobSpec.from_json(_read_status_file(folder / "job.json"), str(folder / "job.json"))
        writer.update(step="loading the index", spec=_public_spec(spec))
        on_event = _job_events(writer, job_ref, FeedWriter(folder / "feed.jsonl"))
        job = build_job(spec, ws, on_event=on_event, progress_every=0.5)
        writer.update(step="selecting groups", backend=job.backend.describe(), prompt_version=job.prompt.version,
                      variant=job.variant.name)  # fmt: skip
        job.prepare()
        remember_data(ws, spec)
        job_ref[0] = job
        writer.job = job
        writer.update(step=None)
        stats = job.run_sync()
    except UserError as exc:
        writer.finish("failed", error=str(exc))
        print(f"nlq-tui: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException as exc:
        import traceback

        traceback.print_exc()
        writer.finish("failed", error=f"{type(exc).__name__}: {exc}"[:500])
        return 1
    final = stats.as_json()
    writer.finish(stats.state if stats.state in END_STATES else "failed", error=stats.error, stats=final)
    print(f"generation {stats.state}: {progress_line(final, None)}", file=sys.stderr, flush=True)
    return 0 if stats.state in ("done", "cancelled") else 1


def _exit_early(writer: StatusWriter) -> None:
    writer.finish("cancelled", error=None)
    os._exit(0)


def _public_spec(spec: JobSpec) -> dict:
    """The spec as status.json shows it (the settings only: the key is never among them)."""
    d = spec.to_json()
    d.pop("extra", None)
    return d


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m engine.generation.jobs WORKSPACE", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(run_detached(sys.argv[1]))
