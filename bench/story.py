"""The sample_data story, measured: does pre-training on generated questions pay off?

    HF_HUB_OFFLINE=1 .venv/bin/python bench/story.py [--seeds 1 2 3] [--root sample_data] [--parallel N]
        [--experiment-args "--lr 3e-3 --finetune-lr 1.5e-3"]

A thin wrapper over the real commands, as a user would type them:

1. `nlq-tui generate --backend template` over every narration group of the train videos, then
   `nlq-tui export --status all` (every valid candidate, as if all were accepted);
2. `nlq-tui experiment --pretrain <export> --seeds ...` with the training defaults (no tuning
   flags): baseline and pretrain -> finetune per seed, then its report.md / results.csv.

Prints each figure beside its goal (finetune beats the baseline on val R1@0.3 for every seed;
the paired 95% interval of the gain excludes 0; wall time of the experiment <= 15 min) and
the load average (the CPU may be shared). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_WALL_S = 15 * 60


def nlq(*args: str, env: dict) -> dict:
    """Run `nlq-tui ARGS --json`; the parsed last stdout line. A failure stops the story loudly."""
    cmd = [sys.executable, "-m", "nlq_tui", *args, "--json"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode not in (0, 1) or not p.stdout.strip():
        sys.exit(f"story: `nlq-tui {' '.join(args)}` failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["_seconds"] = time.time() - t0
    out["_rc"] = p.returncode
    return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="Ego4D root (default sample_data/, else a fresh `nlq-tui sample`)")
    ap.add_argument("--workspace", default=None, help="workspace folder (default: a temporary one)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--parallel", type=int, default=None, help="runs at once (default: the experiment's choice)")
    ap.add_argument("--min-window", type=float, default=None, help="passed to `nlq-tui generate --min-window`")
    ap.add_argument(
        "--experiment-args",
        default="",
        metavar="FLAGS",
        help='training flags for `nlq-tui experiment`, e.g. "--lr 3e-3 --finetune-lr 1.5e-3" (default: none, the defaults)',
    )
    args = ap.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="nlq-story-"))
    ws = Path(args.workspace) if args.workspace else tmp / "ws"
    if args.root:
        root = Path(args.root)
    elif (REPO / "sample_data" / "v1").is_dir():
        root = REPO / "sample_data"
    else:
        root = tmp / "sample"
        nlq("sample", str(root), env=env)
    print(f"data {root}, workspace {ws}, seeds {args.seeds}; load average {load()} (1/5/15 min)", flush=True)

    window = ["--min-window", str(args.min_window)] if args.min_window is not None else []
    common = ["--data", str(root), "--workspace", str(ws)]
    gen = nlq("generate", *common, "--backend", "template", "--checks", "fast", *window, env=env)
    export_file = ws / "exports" / "story-template.json"
    exp = nlq("export", *common, "--out", str(export_file), "--status", "all", env=env)
    print(
        f"generate: {gen.get('questions_valid')} questions ({gen['_seconds']:.0f} s); "
        f"export: {exp.get('exported')} queries -> {export_file}",
        flush=True,
    )

    parallel = ["--parallel", str(args.parallel)] if args.parallel else []
    seeds = [str(s) for s in args.seeds]
    extra = shlex.split(args.experiment_args)
    print(f"experiment flags: {' '.join(extra) or 'none (the defaults)'}", flush=True)
    out = nlq("experiment", *common, "--pretrain", str(export_file), "--seeds", *seeds, *parallel, *extra, env=env)
    print(f"\nexperiment {out['id']}: {out['state']}, {out['runs_done']} of {out['runs']} runs; report {out['report']}")
    for arm, figs in out["arms"].items():
        print(f"  {arm:<28} " + "  ".join(f"{k} {v:6.2f}" for k, v in figs.items() if v is not None))
    for arm, g in out["gain"].items():
        r1 = g["R1@0.3"]
        if r1["mean"] is None:
            print(f"{arm}: no finished seed pairs")
            continue
        every = all(x > 0 for x in r1["gains"])
        excl = r1["lo"] is not None and (r1["lo"] > 0 or r1["hi"] < 0)
        interval = f"[{r1['lo']:+.2f}, {r1['hi']:+.2f}]" if r1["lo"] is not None else "(one seed: no interval)"
        print(f"\n{arm} gain over baseline, val R1@0.3: {r1['mean']:+.2f} {interval}")
        print(f"  per seed: {', '.join(f'{x:+.2f}' for x in r1['gains'])}")
        print(f"  finetune beats baseline on every seed: {'yes' if every else 'no'}  (goal: yes)")
        print(f"  paired 95% interval excludes 0:        {'yes' if excl else 'no'}  (goal: yes)")
    wall = out.get("wall_s", out["_seconds"])
    print(f"\nexperiment wall time {wall / 60:.1f} min  (goal: <= {GOAL_WALL_S // 60} min)")
    print(f"load average at the end {load()} (1/5/15 min; this box's CPU is shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
