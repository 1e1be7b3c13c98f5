"""Running an experiment's jobs as normal detached runs (docs/ARCHITECTURE.md, "Experiments").

Each job is an ordinary run in WS/runs (started by `engine.run_config.start_run` and
`engine.runs.launch`), so the Train screen and `nlq-tui runs` show it like any other; its
config.json carries `"experiment": {"id", "arm", "seed", "job"}`. `state.json` maps job keys to
run ids. A rerun reuses what is there: done runs count, running ones are waited for, a stopped
or failed run is resumed from its last.pt (or started again without one), once per invocation.

Parallelism: one run per GPU (CUDA_VISIBLE_DEVICES) when the runs train on GPUs; otherwise one
run per core with one torch thread each (threads of several runs fighting over a core run
slower than one thread each), capped by `slots`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.errors import UserError, WorkspaceError
from engine.experiment.plan import Job, Plan, experiment_dir
from engine.runs import STALE_AFTER_S, Run, read_json
from engine.workspace import Workspace, atomic_write_json

FINAL = ("done", "failed")
PROGRESS_EVERY_S = 60.0  # a progress line for the log or terminal between job events
# settings a finetune inherits from its pretrain run (the weights only fit those)
INHERITED = ("features", "text_encoder", "text_path", "batch_size", "device", "model", "dim")


def load_state(folder: Path) -> dict:
    state = read_json(Path(folder) / "state.json") or {}
    jobs = state.get("jobs")
    state["jobs"] = {k: v for k, v in jobs.items() if isinstance(v, dict)} if isinstance(jobs, dict) else {}
    return state


def gpu_count(device: str | None) -> int:
    """GPUs the runs should spread over: 0 for CPU runs (or no GPU visible)."""
    if device and device.startswith("cpu"):
        return 0
    if device and ":" in device:
        return 0  # one named GPU: the runs share it, one at a time unless slots say otherwise
    from engine.gpu import GpuMonitor

    return len(GpuMonitor().read().gpus)


def cpu_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def runner_alive(state: dict, now: float | None = None) -> dict | None:
    """The runner record of another live runner process of this experiment, if one is alive."""
    from engine.proc import pid_alive

    rec = state.get("runner")
    if not isinstance(rec, dict) or rec.get("state") != "running" or rec.get("pid") == os.getpid():
        return None
    now = time.time() if now is None else now
    beat = rec.get("heartbeat")
    if not pid_alive(rec.get("pid")) or not isinstance(beat, (int, float)) or now - beat > STALE_AFTER_S:
        return None
    return rec


class Runner:
    """Schedules an experiment's jobs; `step()` is one pass, `run()` loops until all are final."""

    def __init__(
        self,
        ws: Workspace,
        plan: Plan,
        *,
        slots: int | None = None,
        env: dict | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.ws, self.plan = ws, plan
        self.folder = experiment_dir(ws, plan.id)
        self.state = load_state(self.folder)
        self.jobs = plan.jobs()
        self.by_key = {j.key: j for j in self.jobs}
        self.env = dict(os.environ if env is None else env)
        self.on_event = on_event or (lambda text: None)
        self.gpus = gpu_count(plan.settings.get("device"))
        cores = cpu_cores()
        self.slots = max(1, slots or (self.gpus or cores))
        self.threads = max(1, cores // self.slots) if not self.gpus else None
        self.procs: dict[str, subprocess.Popen] = {}
        self.gpu_of: dict[str, int] = {}
        self.restarted: set[str] = set()
        self.final_failed: dict[str, str] = {}
        self.seen: dict[str, str] = {}

    # state ------------------------------------------------------------------------------------
    def run_of(self, key: str) -> Run | None:
        rec = self.state["jobs"].get(key)
        rid = rec.get("run_id") if rec else None
        if not isinstance(rid, str) or not rid or "/" in rid:
            return None
        run = Run(self.ws.runs_dir / rid)
        return run if run.exists() else None

    def job_state(self, key: str) -> str:
        """pending | running | done | stopped | failed (failed: after its one restart, or blocked)."""
        if key in self.final_failed:
            return "failed"
        run = self.run_of(key)
        return run.status()["state"] if run is not None else "pending"

    def save(self, runner_state: str = "running", error: str | None = None) -> None:
        from engine.proc import this_host

        self.state["runner"] = {
            "pid": os.getpid(),
            "host": this_host(),
            "heartbeat": time.time(),
            "state": runner_state,
            "error": error,
            "slots": self.slots,
        }
        self.state["failed"] = dict(self.final_failed)
        atomic_write_json(self.folder / "state.json", self.state)

    # launching --------------------------------------------------------------------------------
    def child_env(self, key: str) -> dict:
        env = dict(self.env)
        if self.gpus:
            used = set(self.gpu_of.values())
            gpu = next((i for i in range(self.gpus) if i not in used), 0)
            self.gpu_of[key] = gpu
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        elif self.threads:
            env.setdefault("NLQ_TORCH_THREADS", str(self.threads))
        return env

    def settings_for(self, job: Job) -> dict:
        s = dict(self.plan.settings)
        finetune_lr = s.pop("finetune_lr", None)
        pretrain_lr = s.pop("pretrain_lr", None)
        kw: dict = {"stage": job.stage, "data_root": self.plan.data_root, "seed": job.seed}
        if job.stage == "pretrain":
            kw["train_file"] = self.plan.source(str(job.source)).file
            if pretrain_lr is not None:
                s["lr"] = pretrain_lr
        if job.stage == "finetune":
            kw["from_run"] = self.state["jobs"][job.after]["run_id"]
            for name in INHERITED:
                s.pop(name, None)
            s.pop("lr", None)
            if finetune_lr is not None:
                s["lr"] = finetune_lr
        return {**kw, **s}

    def start(self, job: Job) -> Run:
        from engine.run_config import start_run
        from engine.runs import launch

        run = start_run(self.ws, detach=False, **self.settings_for(job))
        config = run.config()
        config["experiment"] = {"id": self.plan.id, "arm": job.arm, "seed": job.seed, "job": job.key}
        atomic_write_json(run.config_path, config)
        self.procs[job.key] = launch(run, env=self.child_env(job.key))
        self.state["jobs"][job.key] = {"run_id": run.id, "started": time.time()}
        self.save()
        self.on_event(f"{job.key}: started run {run.id}")
        return run

    def restart(self, job: Job, run: Run, state: str) -> None:
        """A stopped or failed run: resume from last.pt, else a new run; once per invocation."""
        from engine.runs import check_resumable, launch

        self.restarted.add(job.key)
        try:
            check_resumable(run)
        except UserError:
            self.on_event(f"{job.key}: run {run.id} {state} without a checkpoint; starting it again")
            self.start(job)
            return
        self.procs[job.key] = launch(run, resume=True, env=self.child_env(job.key))
        self.on_event(f"{job.key}: resuming run {run.id} ({state}) from its last.pt")

    # scheduling -------------------------------------------------------------------------------
    def reap(self) -> None:
        for key, proc in list(self.procs.items()):
            if proc.poll() is not None:
                del self.procs[key]
                self.gpu_of.pop(key, None)

    def step(self) -> dict[str, int]:
        """One pass: note finished runs, start what may start; counts of job states."""
        self.reap()
        states = {j.key: self.job_state(j.key) for j in self.jobs}
        active = sum(1 for s in states.values() if s == "running")
        for job in self.jobs:
            self.note(job, states[job.key])
        for job in sorted(self.jobs, key=self.priority):
            st = states[job.key]
            if st in ("done", "running") or job.key in self.final_failed:
                continue
            if st in ("stopped", "failed"):
                run = self.run_of(job.key)
                if job.key in self.restarted or run is None:
                    error = (run.status().get("error") if run is not None else None) or st
                    self.final_failed[job.key] = error
                    self.on_event(f"{job.key}: {st} again ({error}); the experiment goes on without it")
                elif active < self.slots:
                    self.restart(job, run, st)
                    active += 1
                continue
            if job.after and states.get(job.after) != "done":
                if job.after in self.final_failed:
                    self.final_failed[job.key] = f"its {job.after} run failed"
                continue
            if active < self.slots:
                self.start(job)
                active += 1
        self.save()
        counts: dict[str, int] = {}
        for j in self.jobs:
            s = self.job_state(j.key)
            counts[s] = counts.get(s, 0) + 1
        return counts

    def priority(self, job: Job) -> tuple[int, int]:
        """Longest chain first: a finetune whose pretrain is done, then pretrains, then baselines,
        so the pretrain -> finetune chains (the critical path) never wait behind a baseline."""
        return ({"finetune": 0, "pretrain": 1}.get(job.stage, 2), self.plan.seeds.index(job.seed))

    def note(self, job: Job, st: str) -> None:
        if self.seen.get(job.key) == st:
            return
        self.seen[job.key] = st
        run = self.run_of(job.key)
        if st == "done" and run is not None:
            best = run.summary().get("best") or {}
            r1 = best.get("R1@0.3")
            self.on_event(f"{job.key}: done" + (f", best val R1@0.3 {r1:.2f}" if r1 is not None else ""))

    def progress_line(self, counts: dict[str, int]) -> str:
        """`4/9 done, 2 running: pretrain/x/s1 120/782, baseline/s2 40/300`."""
        parts = []
        for job in self.jobs:
            run = self.run_of(job.key)
            if run is not None and self.job_state(job.key) == "running":
                s = run.summary()
                parts.append(f"{job.key} {s.get('step') or 0}/{s.get('total_steps') or '?'}")
        head = f"{counts.get('done', 0)}/{len(self.jobs)} done, {len(parts)} running"
        return head + (": " + ", ".join(parts) if parts else "")

    def finished(self) -> bool:
        return all(self.job_state(j.key) in FINAL for j in self.jobs)

    def stop_all(self) -> None:
        from engine.runs import stop_run

        for job in self.jobs:
            run = self.run_of(job.key)
            if run is not None and run.status()["state"] == "running":
                try:
                    stop_run(run)
                except UserError:
                    pass

    def run(self, *, poll: float = 2.0, should_stop: Callable[[], bool] = lambda: False) -> str:
        """Loop until every job is done or failed: "done", "failed" (some job failed) or "stopped"."""
        other = runner_alive(self.state)
        if other is not None:
            raise WorkspaceError(
                f"{self.folder}: this experiment is being run already (pid {other.get('pid')}); "
                "follow it with `nlq-tui experiment --status` or wait for it"
            )
        last_line = time.monotonic()
        try:
            while True:
                counts = self.step()
                if self.finished():
                    break
                if time.monotonic() - last_line >= PROGRESS_EVERY_S:
                    last_line = time.monotonic()
                    self.on_event(self.progress_line(counts))
                if should_stop():
                    self.stop_all()
                    self.save("stopped")
                    return "stopped"
                time.sleep(poll)
        except KeyboardInterrupt:
            self.stop_all()
            self.save("stopped")
            raise
        state = "failed" if self.final_failed or any(self.job_state(j.key) == "failed" for j in self.jobs) else "done"
        self.save(state)
        return state


def launch_runner(ws: Workspace, plan: Plan) -> subprocess.Popen:
    """`python -m engine.experiment WS ID` in its own session, logging to WS/experiments/<id>/experiment.log."""
    from engine.proc import child_env

    folder = experiment_dir(ws, plan.id)
    other = runner_alive(load_state(folder))
    if other is not None:
        raise WorkspaceError(f"{folder}: this experiment is being run already (pid {other.get('pid')})")
    env = child_env(None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with open(folder / "experiment.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "engine.experiment", str(ws.path), plan.id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
