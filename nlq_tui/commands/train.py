"""`nlq-tui train` (baseline / pretrain / finetune runs) and `nlq-tui eval` (a run's checkpoint)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

STAGES = ("baseline", "pretrain", "finetune")


def _common(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: `nlq-tui --workspace WS train` and `nlq-tui train --workspace WS` both work
    p.add_argument(
        "--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder (default ./nlq-workspace)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train VSLNet: baseline, pretrain on an export, finetune from a pretrain run",
        description="Train VSLNet on pre-extracted features. A run lives in WS/runs/<id>/ (config.json, "
        "status.json, metrics.jsonl, train.log, checkpoints/, predictions/). Without --detach the command "
        "waits for the run and prints its best val figures; Ctrl-C (or SIGTERM) saves last.pt and stops it.",
    )
    _common(p)
    p.add_argument(
        "--data",
        metavar="ROOT",
        default=argparse.SUPPRESS,
        help="Ego4D root (default: the workspace's, else sample_data/)",
    )
    p.add_argument(
        "--stage",
        choices=STAGES,
        default="baseline",
        help="baseline: the official train split; pretrain: an exported NLQ file (--train-file, "
        "default the newest in WS/exports); finetune: the official train split from --from RUN's best.pt",
    )
    p.add_argument("--train-file", metavar="FILE", help="an NLQ-format training file (pretrain)")
    p.add_argument("--from", dest="from_run", metavar="RUN", help="the run whose best.pt a finetune starts from")
    p.add_argument("--resume", metavar="RUN", help="continue a stopped or failed run from its last.pt")
    p.add_argument("--epochs", type=int, help="epochs (default 10; finetune: the pretrain run's)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4; finetune: half the pretrain run's)")
    p.add_argument("--batch-size", type=int, help="batch size (default 32)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (default auto: the GPU if any)")
    p.add_argument("--seed", type=int, help="random seed (default 12345)")
    p.add_argument(
        "--text-encoder", choices=("minilm", "bert", "glove"), help="query features (default minilm, offline)"
    )
    p.add_argument("--text-path", metavar="P", help="bert: a model folder or cached hub id; glove: the vectors .txt")
    p.add_argument("--unfreeze-text", action="store_true", help="train the text encoder too (bert/minilm)")
    p.add_argument(
        "--features", metavar="NAME", help="feature folder under ROOT/v1 (default: the workspace's, else egovlp_fp16)"
    )
    p.add_argument("--model", choices=("vslnet", "vslbase"), help="VSLNet (default) or VSLBase (no highlighting)")
    p.add_argument("--dim", type=int, help="model width (default 128)")
    p.add_argument("--drop-rate", type=float, help="dropout (default 0.2)")
    p.add_argument("--eval-every", type=int, metavar="STEPS", help="evaluate every STEPS steps (default: every epoch)")
    p.add_argument(
        "--naq-jitter", action="store_true", help="NaQ-style random widening/shifting of answer windows (pretrain)"
    )
    p.add_argument("--nproc", type=int, default=1, help="GPUs to train on with torchrun/DDP (with --detach)")
    p.add_argument("--detach", action="store_true", help="start the run in the background and print its id")
    p.set_defaults(func=run_train)

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

    data = getattr(args, "data", None)
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

    return {k: best[k] for k in FIGURE_KEYS if best and k in best}


def run_train(args: argparse.Namespace) -> int:
    from engine.errors import ConfigError
    from engine.run_config import secret_env_names, start_run
    from engine.runs import check_resumable, find_run, launch

    ws = _workspace(args)
    nproc = max(1, int(getattr(args, "nproc", 1) or 1))
    if nproc > 1 and not args.detach:  # checked before a run folder exists
        raise ConfigError("--nproc > 1 runs under torchrun: add --detach (and follow it with `nlq-tui runs`)")
    if args.resume:
        run = find_run(ws, args.resume)
        check_resumable(run)  # the Train screen's check too: not running, not done, has last.pt
        resume = True
    else:
        run = start_run(
            ws,
            detach=args.detach,
            stage=args.stage,
            data_root=_data_root(args, ws),
            train_file=args.train_file,
            from_run=args.from_run,
            features=args.features,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
            text_encoder=args.text_encoder,
            text_path=args.text_path,
            unfreeze_text=args.unfreeze_text,
            eval_every=args.eval_every,
            naq_jitter=args.naq_jitter,
            model=args.model,
            dim=args.dim,
            drop_rate=args.drop_rate,
            nproc=args.nproc,
        )
        resume = False
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
    state = run_training(run, resume=resume, echo=not args.json)
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


def _print_result(run_id: str, state: str, summary: dict) -> None:
    best = summary.get("best")
    print(f"run {run_id}: {state}" + (f" ({summary['error']})" if summary.get("error") else ""))
    if best:
        figs = _figures(best)
        print(f"best val (step {best.get('step')}): " + "  ".join(f"{k} {v:.2f}" for k, v in figs.items()))


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
    print(f"run {run.id}, {result['checkpoint']} on {args.split}: {result['queries']} queries")
    if figs:
        print("  " + "  ".join(f"{k} {v:.2f}" for k, v in figs.items()))
    else:
        print("  no ground truth in this split: predictions only")
    print(f"predictions: {result['predictions']}")
    return 0
