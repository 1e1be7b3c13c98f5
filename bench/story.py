"""The sample_data story, measured: does pre-training on generated questions pay off?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/story.py [--seeds 1 2 3] [--root sample_data]

Everything goes through the real commands, as a user would type them:

1. `nlq-tui generate --backend template` over every narration group of the train videos, then
   `nlq-tui export --status all` (every candidate accepted);
2. per seed: `nlq-tui train --stage baseline` (the official sample train split),
   `nlq-tui train --stage pretrain --train-file <export>`, and
   `nlq-tui train --stage finetune --from <pretrain run>` (the official train split again);
3. a table of the best val figures of each run (R1@0.3 picks the checkpoint, as in training),
   the finetune's gain over the baseline per seed, and the mean and spread over seeds.

CPU only, one torch thread per run (NLQ_TORCH_THREADS=1: on a shared box several threads
fight and run slower). Prints; asserts nothing.

Measured 2026-11-28 on the 2-core shared dev box (`nlq-tui sample` default tree = sample_data,
285 usable train / 162 val queries; 1466 template questions; defaults below: dim 64, no dropout,
batch 32, lr 3e-3 (finetune 1.5e-3), 30 / 8 / 30 epochs; `--parallel`, 34 min in all):

    R1@0.3  baseline 12.14 +- 0.36   finetune 25.51 +- 0.71   gain +13.37 (+13.58, +12.96, +13.58)
    R1@0.5  baseline  4.94 +- 2.23   finetune 15.43 +- 1.85   gain +10.49
    mIoU    baseline  8.46 +- 1.29   finetune 16.95 +- 0.89   gain  +8.49

With `--min-window 4` (generated windows as long as the sample's actions, ~4.4 s, instead of
1 s) the pretrain run alone reaches 21.8 R1@0.3 on val (1 s windows: 6.2) and the finetune 26.54.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEYS = ("R1@0.3", "R1@0.5", "R5@0.3", "mIoU")


def nlq(*args: str, env: dict) -> dict:
    """Run `nlq-tui ARGS --json`; the parsed last stdout line. A failure stops the story loudly."""
    cmd = [sys.executable, "-m", "nlq_tui", *args, "--json"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f"story: `nlq-tui {' '.join(args)}` failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if isinstance(out, dict):
        out["_seconds"] = time.time() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="Ego4D root (default sample_data/, else a fresh `nlq-tui sample`)")
    ap.add_argument("--workspace", default=None, help="workspace folder (default: a temporary one)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs-baseline", type=int, default=30)
    ap.add_argument("--epochs-pretrain", type=int, default=8)
    ap.add_argument("--epochs-finetune", type=int, default=30)
    ap.add_argument("--lr", type=float, default=3e-3, help="baseline and pretrain lr (finetune: --lr-finetune)")
    ap.add_argument("--lr-finetune", type=float, default=1.5e-3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--drop-rate", type=float, default=0.0)
    ap.add_argument(
        "--min-window",
        type=float,
        default=None,
        help="passed to `nlq-tui generate --min-window` (default: the generator's, 1.0 s)",
    )
    ap.add_argument(
        "--baselines-from",
        metavar="WS",
        default=None,
        help="reuse the finished baseline runs of these seeds from another story workspace "
        "(same data and settings give the same baseline: training is deterministic on CPU)",
    )
    ap.add_argument("--parallel", action="store_true", help="run the seeds side by side (one process each)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", default="1", help="torch threads per run (NLQ_TORCH_THREADS)")
    args = ap.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NLQ_TORCH_THREADS": args.threads}
    tmp = Path(tempfile.mkdtemp(prefix="nlq-story-"))
    ws = Path(args.workspace) if args.workspace else tmp / "ws"
    if args.root:
        root = Path(args.root)
    elif (REPO / "sample_data" / "v1").is_dir():
        root = REPO / "sample_data"
    else:
        root = tmp / "sample"
        nlq("sample", str(root), env=env)
    print(f"data {root}, workspace {ws}, seeds {args.seeds}", flush=True)

    t0 = time.time()
    window = ["--min-window", str(args.min_window)] if args.min_window is not None else []
    gen = nlq(
        "generate",
        "--data",
        str(root),
        "--workspace",
        str(ws),
        "--backend",
        "template",
        "--checks",
        "fast",
        *window,
        env=env,
    )
    export_file = ws / "exports" / "story-template.json"
    exp = nlq(
        "export", "--workspace", str(ws), "--data", str(root), "--out", str(export_file), "--status", "all", env=env
    )
    print(
        f"generate: {gen.get('questions_valid')} questions from {gen.get('groups_done')} groups "
        f"({gen['_seconds']:.0f} s); export: {exp.get('exported')} queries -> {export_file}",
        flush=True,
    )

    common = [
        "--data",
        str(root),
        "--workspace",
        str(ws),
        "--device",
        "cpu",
        "--dim",
        str(args.dim),
        "--batch-size",
        str(args.batch_size),
        "--drop-rate",
        str(args.drop_rate),
    ]

    def reused_baseline(seed: int) -> dict:
        from engine.runs import list_runs

        for run in list_runs(args.baselines_from):
            cfg = run.config()
            t = cfg.get("train", {})
            if (
                cfg.get("stage") == "baseline"
                and t.get("seed") == seed
                and t.get("epochs") == args.epochs_baseline
                and t.get("lr") == args.lr
                and t.get("model", {}).get("dim") == args.dim
            ):
                summary = run.summary()
                if summary["state"] == "done" and summary["best"]:
                    return {"run_id": run.id, "state": "done", **summary["best"], "_seconds": summary["elapsed_s"]}
        sys.exit(f"story: no finished baseline run for seed {seed} with these settings in {args.baselines_from}")

    def one_seed(seed: int) -> dict:
        s = ["--seed", str(seed)]
        base = (
            reused_baseline(seed)
            if args.baselines_from
            else nlq(
                "train",
                *common,
                *s,
                "--stage",
                "baseline",
                "--epochs",
                str(args.epochs_baseline),
                "--lr",
                str(args.lr),
                env=env,
            )
        )
        pre = nlq(
            "train",
            *common,
            *s,
            "--stage",
            "pretrain",
            "--train-file",
            str(export_file),
            "--epochs",
            str(args.epochs_pretrain),
            "--lr",
            str(args.lr),
            env=env,
        )
        fine = nlq(
            "train",
            "--data",
            str(root),
            "--workspace",
            str(ws),
            *s,
            "--stage",
            "finetune",
            "--from",
            pre["run_id"],
            "--epochs",
            str(args.epochs_finetune),
            "--lr",
            str(args.lr_finetune),
            env=env,
        )
        for r in (base, pre, fine):
            if r["state"] != "done":
                sys.exit(f"story: run {r['run_id']} ended {r['state']}: {r.get('error')}")
        row = {"seed": seed, "baseline": base, "pretrain": pre, "finetune": fine}
        print(
            f"seed {seed}: baseline {base['R1@0.3']:.2f} ({base['_seconds']:.0f} s), "
            f"pretrain {pre['R1@0.3']:.2f} ({pre['_seconds']:.0f} s), "
            f"finetune {fine['R1@0.3']:.2f} ({fine['_seconds']:.0f} s)",
            flush=True,
        )
        return row

    if args.parallel:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(args.seeds)) as pool:
            rows = list(pool.map(one_seed, args.seeds))
    else:
        rows = [one_seed(seed) for seed in args.seeds]

    print()
    print("best val figures (percent; the checkpoint with the best R1@0.3 of each run)")
    head = f"{'seed':>4}  {'stage':<9}" + "".join(f"{k:>9}" for k in KEYS) + f"{'run':>34}"
    print(head)
    for row in rows:
        for stage in ("baseline", "pretrain", "finetune"):
            r = row[stage]
            print(f"{row['seed']:>4}  {stage:<9}" + "".join(f"{r[k]:>9.2f}" for k in KEYS) + f"{r['run_id']:>34}")
    print()
    for k in KEYS:
        gains = [row["finetune"][k] - row["baseline"][k] for row in rows]
        base = [row["baseline"][k] for row in rows]
        fine = [row["finetune"][k] for row in rows]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        print(
            f"{k:>7}: baseline {statistics.mean(base):6.2f} ± {sd(base):5.2f}   finetune {statistics.mean(fine):6.2f} "
            f"± {sd(fine):5.2f}   gain {statistics.mean(gains):+6.2f} (per seed: "
            + ", ".join(f"{g:+.2f}" for g in gains)
            + ")"
        )
    print(f"\ntotal {time.time() - t0:.0f} s; workspace {ws}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
