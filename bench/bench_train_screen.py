"""What the Train screen costs while it watches a run: prints figures, asserts nothing.

    .venv/bin/python bench/bench_train_screen.py [--rows 50000]

- poll: one `RunTail.poll()` on a metrics.jsonl of N rows after the first read (constant:
  only new bytes are read), and the first read of the whole file;
- plot: drawing the loss plot (raw + smoothed, N points each) at 120x35 and 80x24 sizes;
- latency: in a headless app on the Train screen, seconds from appending a metrics line to the
  loss panel holding it (the screen polls every 0.5 s), over several lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

POLL_S = 0.5  # the Train screen polls twice a second
LATENCY_GOAL_S = 1.0  # the README's target: panels within 1 s


def rows(n: int, start: int = 1) -> list[dict]:
    return [
        {"step": 10 * i, "epoch": i / 350, "loss": 10.0 / (1 + i / 500), "lr": 1e-4, "samples_per_s": 900.0}
        for i in range(start, start + n)
    ]


def write_run(ws, n: int):
    from engine.runs import create_run
    from engine.workspace import atomic_write_json

    run = create_run(ws, {"stage": "baseline", "train": {"batch_size": 32}})
    run.metrics_path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows(n)))
    atomic_write_json(
        run.status_path, {"state": "done", "pid": None, "heartbeat": time.time(), "total_steps": 10 * n, "step": 10 * n}
    )
    return run


def bench_poll(run, n: int) -> None:
    from engine.runs import RunTail

    tail = RunTail(run)
    t0 = time.perf_counter()
    first = tail.poll()
    t_first = time.perf_counter() - t0
    times = []
    for i in range(200):
        run.append_metrics(rows(1, start=n + 1 + i)[0])
        t0 = time.perf_counter()
        upd = tail.poll()
        times.append(time.perf_counter() - t0)
        assert len(upd.rows) == 1
    print(
        f"poll: first read of {len(first.rows):,} rows {t_first * 1000:.1f} ms; "
        f"then per poll (1 new row) median {statistics.median(times) * 1000:.3f} ms, max {max(times) * 1000:.3f} ms "
        f"(goal: constant in the file's size, well under the {POLL_S} s poll)"
    )


def bench_plot(n: int) -> None:
    from nlq_tui.widgets.plot import Series, render_plot
    from nlq_tui.widgets.train_view import ema

    data = rows(n)
    xs = [r["step"] for r in data]
    ys = [r["loss"] for r in data]
    sm = ema(ys, 0.8)[0]
    for w, h in ((66, 14), (40, 8)):
        t0 = time.perf_counter()
        for _ in range(5):
            render_plot([Series("raw", xs, ys), Series("smoothed", xs, sm)], w, h)
        per = (time.perf_counter() - t0) / 5
        print(f"plot: 2 x {n:,} points at {w}x{h} cells: {per * 1000:.1f} ms per draw (goal: < {POLL_S} s, one poll)")
    t0 = time.perf_counter()
    ema(ys, 0.9)
    print(f"smoothing change: EMA over {n:,} losses {(time.perf_counter() - t0) * 1000:.1f} ms")


async def bench_latency(ws_path: Path, lines: int = 8) -> None:
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    args = argparse.Namespace(data=None, workspace=str(ws_path), screen="train", reviewer="bench")
    app = NLQApp(AppContext.from_args(args), "train", load_on_start=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = app.screen
        while not (screen.view and screen.view.losses):
            await pilot.pause(0.05)
        from engine.runs import Run

        run = Run(app.ctx.workspace.runs_dir / screen.selected)
        lat = []
        for i in range(lines):
            have = len(screen.view.losses)
            await pilot.pause(0.137 * (i % 4))  # lines land at different points of the poll cycle
            t0 = time.perf_counter()
            run.append_metrics({"step": 10_000_000 + i, "epoch": 1, "loss": 1.0, "lr": 1e-4})
            while len(screen.view.losses) == have:
                await pilot.pause(0.01)
            lat.append(time.perf_counter() - t0)
        print(
            f"latency: new metrics line -> loss panel, {lines} lines: median {statistics.median(lat):.2f} s, "
            f"max {max(lat):.2f} s (goal: within {LATENCY_GOAL_S:g} s)"
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=50_000)
    args = p.parse_args()
    from engine.workspace import Workspace

    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs (figures are noisier above 1 per CPU)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        run = write_run(ws, args.rows)
        size = run.metrics_path.stat().st_size
        print(f"metrics.jsonl: {args.rows:,} rows, {size / 1e6:.1f} MB")
        bench_poll(run, args.rows)
        bench_plot(args.rows)
        asyncio.run(bench_latency(Path(tmp) / "ws"))


if __name__ == "__main__":
    main()
