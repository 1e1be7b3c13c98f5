"""`nlq-tui runs` (the workspace's training runs) and `nlq-tui stop RUN`."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "runs",
        help="list training runs: state, stage, best val R1@0.3, elapsed",
        description="List the workspace's training runs. A run whose process died shows as failed "
        "(its heartbeat went stale or its pid is gone).",
    )
    p.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run_runs)

    s = subparsers.add_parser(
        "stop",
        help="stop a running training run (it saves last.pt and ends `stopped`)",
        description="Send SIGTERM to a run's process group; the run saves checkpoints/last.pt and ends "
        "with state `stopped`. Resume it with `nlq-tui train --resume RUN`.",
    )
    s.add_argument("run", metavar="RUN", help="run id (a unique part is enough) or folder")
    s.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    s.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for the run to end")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_stop)


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_runs(args: argparse.Namespace) -> int:
    from engine.runs import list_runs
    from engine.workspace import Workspace

    ws = Workspace(getattr(args, "workspace", None))
    rows = [r.summary() for r in list_runs(ws)]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no runs in {ws.runs_dir}; start one with `nlq-tui train`")
        return 0
    head = f"{'RUN':<34} {'STAGE':<9} {'STATE':<8} {'PROGRESS':>11} {'R1@0.3':>7} {'ELAPSED':>8}"
    print(head)
    for r in rows:
        progress = f"{r['step'] or 0}/{r['total_steps']}" if r.get("total_steps") else "-"
        best = f"{r['best_R1@0.3']:.2f}" if r.get("best_R1@0.3") is not None else "-"
        print(f"{r['id']:<34} {r['stage']:<9} {r['state']:<8} {progress:>11} {best:>7} {_elapsed(r['elapsed_s']):>8}")
        if r["state"] == "failed" and r.get("error"):
            print(f"    {r['error']}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from engine.runs import find_run, stop_run, wait_for_state
    from engine.workspace import Workspace

    ws = Workspace(getattr(args, "workspace", None))
    run = find_run(ws, args.run)
    pid = stop_run(run)
    state = "stopping"
    if args.wait > 0:
        state = wait_for_state(run, timeout=args.wait)["state"]
    if args.json:
        print(json.dumps({"run_id": run.id, "signalled": pid, "state": state}))
    else:
        print(
            f"run {run.id}: SIGTERM sent to {pid}"
            + (f"; now {state}" if args.wait > 0 else "; it saves last.pt and stops")
        )
    return 0
