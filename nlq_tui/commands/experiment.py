"""`nlq-tui experiment`: baseline vs pretrain -> finetune over seeds, with a report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SETTING_FLAGS = (
    ("--epochs", int, "epochs of every stage (default: each stage's own)"),
    ("--lr", float, "learning rate of baseline and pretrain (default: the stage's)"),
    ("--pretrain-lr", float, "learning rate of the pretrain runs (default: --lr, else the stage's)"),
    ("--finetune-lr", float, "learning rate of the finetunes (default: the stage's)"),
    ("--batch-size", int, "batch size"),
    ("--device", str, "auto | cpu | cuda | cuda:N (default auto)"),
    ("--features", str, "feature folder under ROOT/v1"),
    ("--text-encoder", str, "minilm | bert | glove"),
    ("--text-path", str, "bert: model folder; glove: the vectors .txt"),
    ("--eval-every", int, "evaluate every STEPS steps"),
    ("--model", str, "vslnet | vslbase"),
    ("--dim", int, "model width"),
    ("--drop-rate", float, "dropout"),
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="baseline vs pretrain -> finetune over seeds, ending in a report",
        description="Train the baseline and, for each --pretrain file (an exported NLQ file, or a variant "
        "whose accepted questions are exported first), pretrain -> finetune, once per seed; runs go side by "
        "side where cores or GPUs allow, each a normal run that the Train screen shows. Rerunning the same "
        "command reuses finished runs and resumes stopped ones. Writes WS/experiments/<id>/report.md, "
        "results.csv and plots (with matplotlib).",
    )
    p.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument("--data", metavar="ROOT", default=argparse.SUPPRESS, help="Ego4D root (default: the workspace's)")
    p.add_argument(
        "--pretrain",
        metavar="EXPORT_OR_VARIANT",
        action="append",
        default=[],
        help="an exported NLQ file or a variant name; repeat for several",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], metavar="SEED", help="seeds (default 1 2 3)")
    p.add_argument(
        "--id", dest="exp_id", metavar="ID", help="experiment id (default: derived from data, files, settings)"
    )
    p.add_argument("--parallel", type=int, metavar="N", help="runs at once (default: one per core, or per GPU)")
    p.add_argument("--detach", action="store_true", help="run in the background and print the experiment id")
    p.add_argument("--status", action="store_true", help="show the experiment's table (--id, else the newest)")
    p.add_argument("--report", action="store_true", help="write the report from the runs finished so far")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    for flag, kind, text in SETTING_FLAGS:
        p.add_argument(flag, type=kind, default=None, help=text)
    p.set_defaults(func=run)


def _settings(args) -> dict:
    return {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in SETTING_FLAGS}


def _pick(ws, exp_id: str | None):
    from engine.errors import ConfigError
    from engine.experiment.plan import experiment_dir, list_experiments, load_plan

    if exp_id:
        plan = load_plan(experiment_dir(ws, exp_id))
        if plan is None:
            raise ConfigError(f"{experiment_dir(ws, exp_id)}: no such experiment; `nlq-tui experiment --status` lists")
        return plan
    plans = list_experiments(ws)
    if not plans:
        raise ConfigError(f"{ws.path / 'experiments'}: no experiment yet; start one with --pretrain FILE_OR_VARIANT")
    return plans[-1]


def _print_table(plan, rows) -> None:
    print(f"experiment {plan.id}: seeds {' '.join(map(str, plan.seeds))}")
    print(f"{'JOB':<32} {'STATE':<8} {'PROGRESS':>11} {'R1@0.3':>7} {'R1@0.5':>7} {'mIoU':>7}  RUN")
    for r in rows:
        b = r["best"] or {}
        prog = f"{r['step'] or 0}/{r['total_steps']}" if r.get("total_steps") else "-"
        figs = " ".join(f"{b[k]:>7.2f}" if k in b else f"{'-':>7}" for k in ("R1@0.3", "R1@0.5", "mIoU"))
        print(f"{r['key'][:32]:<32} {r['state']:<8} {prog:>11} {figs}  {r['run_id'] or '-'}")


def _print_result(out: dict) -> None:
    print(f"report {out['report']} ({out['runs_done']} of {out['runs']} runs done)")
    for arm, g in out["gain"].items():
        r1 = g["R1@0.3"]
        if r1["mean"] is None:
            continue
        ci = f" [{r1['lo']:+.2f}, {r1['hi']:+.2f}]" if r1["lo"] is not None else ""
        seeds = ", ".join(f"{x:+.2f}" for x in r1["gains"])
        print(f"  {arm}: val R1@0.3 gain over baseline {r1['mean']:+.2f}{ci} (per seed {seeds})")


def _data_root(args, ws) -> Path:
    from engine.errors import ConfigError

    data = getattr(args, "data", None) or ws.get("data_root")
    if data:
        return Path(data).expanduser().resolve()
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    if (sample / "v1").is_dir():
        return sample
    raise ConfigError("no data root: pass --data ROOT (an Ego4D folder) or set one on the Data screen")


def run(args: argparse.Namespace) -> int:
    from engine.experiment.plan import make_plan
    from engine.experiment.report import experiment_table, write_report
    from engine.experiment.runner import Runner, launch_runner
    from engine.textsafe import one_line
    from engine.workspace import Workspace

    ws = Workspace(getattr(args, "workspace", None))
    if args.status or (args.report and not args.pretrain):
        plan = _pick(ws, args.exp_id)
        if args.report:
            out = write_report(ws, plan)
            print(json.dumps(out)) if args.json else _print_result(out)
            return 0
        rows = experiment_table(ws, plan)
        print(json.dumps({"id": plan.id, "rows": rows})) if args.json else _print_table(plan, rows)
        return 0
    plan = make_plan(
        ws,
        data_root=_data_root(args, ws),
        pretrain=list(args.pretrain),
        seeds=list(args.seeds),
        settings=_settings(args),
        exp_id=args.exp_id,
    )
    if args.detach:
        proc = launch_runner(ws, plan)
        if args.json:
            print(json.dumps({"id": plan.id, "pid": proc.pid, "dir": str(ws.path / "experiments" / plan.id)}))
        else:
            print(plan.id)
        return 0
    t0 = time.time()

    def say(text: str) -> None:
        if not args.json:
            print(f"[{time.time() - t0:6.0f} s] {one_line(text, 1000)}", file=sys.stderr, flush=True)

    say(f"experiment {plan.id} in {Path(ws.path) / 'experiments' / plan.id}")
    runner = Runner(ws, plan, slots=args.parallel, on_event=say)
    say(f"{len(runner.jobs)} runs, up to {runner.slots} at once")
    try:
        state = runner.run()
    except KeyboardInterrupt:
        print(
            f"nlq-tui: experiment {plan.id} stopped; its runs saved last.pt: run the same command to go on",
            file=sys.stderr,
        )
        return 130
    out = write_report(ws, plan)
    out.update(state=state, wall_s=round(time.time() - t0, 1))
    if args.json:
        print(json.dumps(out))
    else:
        _print_result(out)
    return 0 if state == "done" else 1
