"""`nlq-tui train` (baseline / pretrain / finetune runs) and `nlq-tui eval` (a run's checkpoint)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

GROUP_TITLES = {
    "run": "run",
    "data": "data",
    "text": "query features",
    "model": "model",
    "schedule": "optimisation",
    "eval": "evaluation",
}


def _common(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: `nlq-tui --workspace WS train` and `nlq-tui train --workspace WS` both work
    p.add_argument(
        "--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder (default ./nlq-workspace)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def add_setting_flags(p: argparse.ArgumentParser) -> list[str]:
    """One flag per training setting, generated from its declaration (engine/training/config.py);
    the setting names, so `run_train` passes them on as they are. Values stay text here: the
    engine parses and checks them, with errors naming the flag and the Train form's field."""
    from engine.training.config import settings

    groups: dict[str, argparse._ArgumentGroup] = {}
    names = []
    for info in settings():
        s = info.setting
        group = groups.get(s.group)
        if group is None:
            group = groups[s.group] = p.add_argument_group(GROUP_TITLES.get(s.group, s.group))
        if s.auto:
            default = "chosen from the train set size, see --settings"
        elif info.type is bool:
            default = None
        else:
            default = f"{info.default!r}" if info.default not in ("", None) else None
        text = s.help + (f" (default: {default})" if default else "")
        text = text.replace("%", "%%")
        if info.type is bool:
            group.add_argument(info.flag, dest=info.name, action="store_const", const=not s.invert, help=text)
        else:
            metavar = s.metavar or ("{" + ",".join(map(str, s.choices)) + "}" if s.choices else info.name.upper())
            group.add_argument(info.flag, dest=info.name, metavar=metavar, help=text)
        names.append(info.name)
    return names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train VSLNet: baseline, pretrain on an export, finetune from a pretrain run",
        description="Train VSLNet on pre-extracted features. A run lives in WS/runs/<id>/ (config.json, "
        "status.json, metrics.jsonl, train.log, checkpoints/, predictions/). Without --detach the command "
        "waits for the run and prints its best val figures; Ctrl-C (or SIGTERM) saves last.pt and stops it. "
        "Settings left unset that the schedule rule picks (width, lr, dropout, epochs, evaluations per epoch) "
        "follow the training set's size; --settings lists every setting.",
    )
    _common(p)
    p.add_argument("--from", dest="from_run", metavar="RUN", help="the run whose best.pt a finetune starts from")
    p.add_argument("--resume", metavar="RUN", help="continue a stopped or failed run from its last.pt")
    p.add_argument("--nproc", type=int, default=1, help="GPUs to train on with torchrun/DDP (with --detach)")
    p.add_argument("--detach", action="store_true", help="start the run in the background and print its id")
    p.add_argument("--settings", action="store_true", help="print the table of settings and the schedule rule")
    p.set_defaults(func=run_train, setting_names=add_setting_flags(p))
    _register_eval(subparsers)


def _register_eval(subparsers) -> None:
    e = subparsers.add_parser(
        "eval",
        help="evaluate a run's checkpoint on val, or write test predictions",
        description="Evaluate a run's best.pt (or --checkpoint last) with the official NLQ figures on val, or write "
        "challenge-format predictions for the unannotated test split. Writes RUN/predictions/<split>-<checkpoint>.json.",
    )
    _common(e)
    e.add_argument("--run", required=True, metavar="RUN", help="run id (a unique part is enough) or folder")
    e.add_argument("--split", choices=("val", "test"), default="val")
    e.add_argument("--checkpoint", default="best", help="best (default), last, or a .pt path")
    e.set_defaults(func=run_eval)


def _workspace(args):
    from engine.workspace import Workspace

    return Workspace(getattr(args, "workspace", None))


def _data_root(args, ws) -> Path:
    from engine.errors import ConfigError

    data = getattr(args, "data_root", None) or getattr(args, "data", None)  # `nlq-tui --data ROOT train` too
    if data:
        return Path(data).expanduser().resolve()
    if ws.get("data_root"):
        return Path(ws.get("data_root"))
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    if (sample / "v1").is_dir():
        return sample
    raise ConfigError("no data root: pass --data ROOT (an Ego4D folder) or set one on the Data screen")


def _figures(best: dict | None) -> dict:
    from engine.runs import FIGURE_KEYS
    from engine.training.metrics import METRIC_KEYS

    keys = dict.fromkeys((*FIGURE_KEYS, *METRIC_KEYS))  # the official table's nine recalls and mIoU
    return {k: best[k] for k in keys if best and k in best}


def run_train(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError
    from engine.run_config import secret_env_names, start_run
    from engine.runs import check_resumable, find_run, launch

    if args.settings:
        from engine.training.config import settings_markdown

        print(settings_markdown(), end="")
        return 0
    ws = _workspace(args)
    nproc = max(1, int(getattr(args, "nproc", 1) or 1))
    if nproc > 1 and not args.detach:  # checked before a run folder exists
        raise ConfigError("--nproc > 1 runs under torchrun: add --detach (and follow it with `nlq-tui runs`)")
    if args.resume:
        run = find_run(ws, args.resume)
        check_resumable(run)  # the Train screen's check too: not running, not done, has last.pt
        resume = True
    else:
        values = {name: getattr(args, name, None) for name in args.setting_names}
        values["data_root"] = str(_data_root(args, ws))
        values["from_run"] = args.from_run
        run = start_run(ws, detach=args.detach, values=values, nproc=nproc)
        resume = False
    if args.detach and not resume and not args.json:
        print(_schedule_preview(run), file=sys.stderr)
    if args.detach:
        proc = launch(run, resume=True, nproc=nproc, secret_env=secret_env_names(ws)) if resume else run.process
        if args.json:
            print(json.dumps({"run_id": run.id, "state": "running", "pid": proc.pid, "run_dir": str(run.path)}))
        else:
            print(run.id)
        return 0

    from engine.training.__main__ import run_training
    from engine.workspace import atomic_write_json

    if not resume:  # readers see a starting run, not a folder without status, while torch imports
        now = time.time()
        atomic_write_json(run.status_path, {"state": "running", "pid": os.getpid(), "heartbeat": now, "launched": now})

    if not args.json:
        print(f"run {run.id} ({run.path})", file=sys.stderr)
    state = run_training(run, resume=resume, echo=True)  # stderr: the schedule, progress lines, evaluations
    summary = run.summary()
    best = summary.get("best")
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": run.id,
                    "state": state,
                    "run_dir": str(run.path),
                    "error": summary.get("error"),
                    "best": best,
                    **_figures(best),
                }
            )
        )
    else:
        _print_result(run.id, state, summary)
    return 0 if state in ("done", "stopped") else 1


def _schedule_preview(run) -> str:
    """What the rule will pick for a detached run (the run itself logs and records the exact choice)."""
    from engine.ego4d import layout
    from engine.errors import UserError
    from engine.run_config import count_train_queries
    from engine.training.config import TrainConfig, describe_schedule, resolve_schedule

    cfg = TrainConfig.from_dict(run.config()["train"])
    if not cfg.auto:
        return describe_schedule(cfg)
    try:
        n = count_train_queries(cfg.train_file or layout.nlq_file(cfg.data_root, "train"))
    except (UserError, OSError):
        return "schedule: chosen by the run from its train set (see train.log)"
    resolve_schedule(cfg, n)
    return describe_schedule(cfg) + " (preview; the run records its choice in config.json)"


def _print_result(run_id: str, state: str, summary: dict) -> None:
    best = summary.get("best")
    print(f"run {run_id}: {state}" + (f" ({summary['error']})" if summary.get("error") else ""))
    if best:
        figs = _figures(best)
        over = f", over {best['queries']} of {best['queries_total']} queries" if "queries_total" in best else ""
        print(f"best val (step {best.get('step')}{over}): " + "  ".join(f"{k} {v:.2f}" for k, v in figs.items()))


def run_eval(args: argparse.Namespace) -> int:
    from engine.runs import find_run
    from engine.training.loop import evaluate_run

    ws = _workspace(args)
    run = find_run(ws, args.run)
    result = evaluate_run(run, split=args.split, checkpoint=args.checkpoint)
    figs = result["figures"]
    if args.json:
        print(json.dumps({"run_id": run.id, **result, **(figs or {})}))
        return 0
    print(
        f"run {run.id}, {result['checkpoint']} on {args.split}: over {result['queries']} of "
        f"{result.get('queries_total', result['queries'])} queries"
    )
    if figs:
        print("  " + "  ".join(f"{k} {v:.2f}" for k, v in figs.items()))
    else:
        print("  no ground truth in this split: predictions only")
    print(f"predictions: {result['predictions']}")
    return 0
