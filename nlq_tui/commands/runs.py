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
    sub = p.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    tb = sub.add_parser(
        "export-tb",
        help="write TensorBoard event files from runs' metrics.jsonl",
        description="Convert metrics.jsonl (and config.json as hparams) of one run, or all, into event files "
        "in DIR/<run id>/; then `tensorboard --logdir DIR`. Runs also write their own as they train.",
    )
    tb.add_argument("run", metavar="RUN|all", help="run id (a unique part is enough), folder, or all")
    tb.add_argument("out", metavar="DIR", help="folder for the event files")
    tb.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    tb.add_argument("--json", action="store_true")
    tb.set_defaults(func=run_export_tb)

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
    from engine.errors import WorkspaceError
    from engine.runs import list_runs, runs_dir, runs_problem, summary_or_failed
    from engine.textsafe import one_line

    # a read-only command: it opens the folder as it is and creates no workspace
    where = getattr(args, "workspace", None)
    problem = runs_problem(where)
    if problem:
        raise WorkspaceError(problem)
    rows = [s for s in (summary_or_failed(r) for r in list_runs(where)) if s is not None]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(one_line(f"no runs in {runs_dir(where)}; start one with `nlq-tui train`", None))
        return 0
    head = f"{'RUN':<34} {'STAGE':<9} {'STATE':<8} {'PROGRESS':>11} {'R1@0.3':>7} {'ELAPSED':>8}"
    print(head)
    for r in rows:
        progress = f"{r.get('step') or 0}/{r['total_steps']}" if r.get("total_steps") else "-"
        best = f"{r['best_R1@0.3']:.2f}" if r.get("best_R1@0.3") is not None else "-"
        rid, stage = one_line(r["id"], 60), one_line(r["stage"], 20)
        print(f"{rid:<34} {stage:<9} {r['state']:<8} {progress:>11} {best:>7} {_elapsed(r.get('elapsed_s')):>8}")
        if r["state"] == "failed" and r.get("error"):
            print(f"    {one_line(r['error'])}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from engine.runs import find_run, stop_run, wait_for_state
    from engine.textsafe import one_line

    run = find_run(getattr(args, "workspace", None), args.run)
    pid = stop_run(run)
    state = "stopping"
    if args.wait > 0:
        state = wait_for_state(run, timeout=args.wait)["state"]
    if args.json:
        print(json.dumps({"run_id": run.id, "signalled": pid, "state": state}))
    else:
        print(
            one_line(f"run {run.id}: SIGTERM sent to {pid}", None)
            + (f"; now {state}" if args.wait > 0 else "; it saves last.pt and stops")
        )
    return 0


def run_export_tb(args: argparse.Namespace) -> int:
    from engine.training.tb import export_runs
    from engine.workspace import Workspace

    folders = export_runs(Workspace.existing(getattr(args, "workspace", None)), args.run, args.out)
    if args.json:
        print(json.dumps({"exported": [str(f) for f in folders]}))
    else:
        print(f"{len(folders)} runs exported to {args.out}; view them with `tensorboard --logdir {args.out}`")
    return 0
