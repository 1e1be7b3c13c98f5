"""Time from launching `nlq-tui` to its first frame, on sample_data/ (target: under 0.8 s).

Each run is a fresh Python process that goes the way the console script does (`nlq_tui.cli`
builds its parser, which imports every subcommand module, then the app opens), with Textual's
headless driver: the screen is composed, laid out and rendered as on a terminal, only not
written out. "First frame" is the first refresh after the opening screen is mounted; the
time is taken from just before the process is spawned, so interpreter start-up and every
import count. Also reported: when the index is loaded and on screen (a worker, after the
first frame), and whether torch / transformers / openai were imported.

    .venv/bin/python bench/bench_tui_startup.py [--runs 7] [--data sample_data] [--screen data]
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

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
from nlq_tui.cli import build_parser
from nlq_tui.app import NLQApp
from nlq_tui.context import AppContext

args = build_parser().parse_args(sys.argv[1:])
marks = {}

class TimedApp(NLQApp):
    def on_mount(self):
        super().on_mount()
        marks["mounted"] = time.time()
        self.call_after_refresh(self._first_frame)

    def _first_frame(self):
        marks["first_frame"] = time.time()
        marks["first_frame_cpu"] = time.process_time()  # CPU of this process: not inflated by a busy machine
        if self.ctx.data_root is None:
            self.exit()

    def on_worker_state_changed(self, event):
        super().on_worker_state_changed(event)
        if event.worker.group == "load" and event.state.name in ("SUCCESS", "ERROR"):
            marks["loaded_state"] = event.state.name
            self.call_after_refresh(self._loaded)

    def _loaded(self):
        marks["index_on_screen"] = time.time()
        self.exit()

app = TimedApp(AppContext.from_args(args), args.screen)
app.run(headless=True, size=(120, 35))
marks["heavy"] = sorted(m for m in ("torch", "transformers", "openai") if m in sys.modules)
print(json.dumps(marks))
"""


def one_run(data: str, workspace: str, screen: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, "--data", data, "--workspace", workspace, "--screen", screen],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "first_frame_s": marks["first_frame"] - t0,
        "first_frame_cpu_s": marks["first_frame_cpu"],
        "mounted_s": marks["mounted"] - t0,
        "index_on_screen_s": marks.get("index_on_screen", float("nan")) - t0,
        "heavy": marks["heavy"],
        "load": marks.get("loaded_state"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--data", default=str(REPO / "sample_data"))
    ap.add_argument("--screen", default="data", choices=["data", "lab"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as ws:
        one_run(a.data, ws, a.screen)  # warm the OS file cache and the index cache
        runs = [one_run(a.data, ws, a.screen) for _ in range(a.runs)]
    ff = [r["first_frame_s"] for r in runs]
    cpu = [r["first_frame_cpu_s"] for r in runs]
    idx = [r["index_on_screen_s"] for r in runs]
    print(f"nlq-tui start-up on {a.data} (screen {a.screen}), {a.runs} runs, headless driver, 120x35")
    print(
        f"  launch -> first frame:        median {statistics.median(ff):.3f} s  (min {min(ff):.3f}, max {max(ff):.3f})  target < 0.8 s"
    )
    print(
        f"  CPU time to first frame:      median {statistics.median(cpu):.3f} s  (the process's own CPU; wall time above includes waiting for a busy CPU)"
    )
    print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"  launch -> index on screen:    median {statistics.median(idx):.3f} s  (min {min(idx):.3f}, max {max(idx):.3f})"
    )
    print(
        f"  load result: {sorted({r['load'] for r in runs})}; heavy modules imported: {sorted({m for r in runs for m in r['heavy']}) or 'none'}"
    )
    print(
        json.dumps(
            {
                "first_frame_median_s": round(statistics.median(ff), 4),
                "first_frame_cpu_median_s": round(statistics.median(cpu), 4),
                "index_on_screen_median_s": round(statistics.median(idx), 4),
                "runs": a.runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
