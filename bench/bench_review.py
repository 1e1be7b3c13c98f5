"""Review at scale: open the queue and decide, with N candidates in the store (default 100k).

    .venv/bin/python bench/bench_review.py [--n 100000] [--decisions 300] [--variants 1] [--keep DIR]

With `--variants N` the candidates come from N variants (one model each) and the screen's queue
is filtered to the first variant before the keypresses are timed. Each figure is printed beside
its goal, with the load average of the machine at that moment.

Prints:
  - store open: scanning the shards + replaying the journal, and reading the first candidate;
  - store decide: `CandidateStore.decide` alone (append one line + fdatasync), median / p99;
  - process start -> first card drawn: `nlq-tui --screen review` in a pseudo-terminal;
  - screen open -> first candidate shown: the real app, headless, from constructing it to the
    Review screen having rendered its first card (target < 1 s);
  - the first card again with --journal decisions already made: once replayed from the
    journal (and compacted), once from the snapshot; each with the process CPU to that card
    (both threads), which the machine's other work moves less than the wall time; then as a
    second reviewer asking for a blind second opinion on those decisions; then keypress ->
    durable decision while the session's journal is folded (as every 10,000 entries);
  - keypress -> durable decision: from `pilot.press("a")` being sent to `decide` returning
    (the line is on disk), median / p99 (targets 10 ms / 50 ms); keypress -> next candidate
    painted (the first frame the screen draws after the decision, which holds the new card);
    and keypress -> screen idle again (the whole `pilot.press`, follow-up frames and Textual's
    20 ms idle polling included), next to the same figure for a key bound to nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from review_fixtures import make_group  # noqa: E402

from engine.store import CandidateStore, encode_group_line  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

GOAL_FIRST_CARD = "goal < 1 s"
GOAL_DURABLE = "goals 10 ms median, 50 ms p99"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} CPUs]"


def build(ws: Workspace, n: int, k: int = 5, variants: int = 1) -> float:
    """Write n candidates as one generation shard (one fsync at the end, not one per group)."""
    rng = random.Random(0)
    t = time.perf_counter()
    path = ws.candidates_dir / "groups-0000000000001-1.jsonl"
    with open(path, "wb") as f:
        for g in range((n + k - 1) // k):
            v = g % 2000
            clip = (g // 2000) % 3
            gk, c, r, m = make_group(
                f"video-{v:05d}",
                f"clip-{v:05d}-{clip}",
                480.0 * clip,
                480.0 * clip + 480.0,
                480.0 * clip + 5.0 + (g // 6000) * 20 % 400,
                k,
                rng=rng,
                flagged_every=7,
                number0=g * k,
                model=f"model-{g % variants}" if variants > 1 else "gpt-4o-mini",
            )
            f.write(encode_group_line(gk, c, r, m))
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def bench_store(ws: Workspace, decisions: int) -> None:
    t0 = time.perf_counter()
    s = CandidateStore(ws, reviewer="bench")
    s.scan()
    t1 = time.perf_counter()
    s.load()
    t2 = time.perf_counter()
    s.candidate(s.rows[0].id)
    t3 = time.perf_counter()
    print(
        f"store open: scan {len(s.rows):,} candidates {t1 - t0:.3f} s, decisions {t2 - t1:.3f} s, "
        f"first candidate read {1e3 * (t3 - t2):.2f} ms {load()}"
    )
    s.begin_review()
    lat = []
    ids = [r.id for r in s.rows[-decisions:]]
    for cid in ids:
        t = time.perf_counter()
        s.decide(cid, "accept")
        lat.append(time.perf_counter() - t)
    for _ in ids:
        s.undo()
    s.close()
    print(
        f"store decide (append + fdatasync), {len(lat)} decisions: median {1e3 * statistics.median(lat):.2f} ms, "
        f"p99 {1e3 * pct(lat, 0.99):.2f} ms, max {1e3 * max(lat):.2f} ms ({GOAL_DURABLE}) {load()}"
    )


async def first_card(ws: Workspace, label: str, second_opinion: bool = False) -> None:
    """Open the app on the Review screen and time the first card, then close it; with
    `second_opinion`, as another reviewer asked for a blind second opinion (`--second-opinion`)."""
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    t0, c0 = time.perf_counter(), time.process_time()
    ctx = AppContext(ws, None, "egovlp_fp16", "second" if second_opinion else "bench")
    ctx.second_opinion = second_opinion
    app = NLQApp(ctx, "review", load_on_start=False)
    async with app.run_test(size=(160, 50)):
        screen = app.screen
        while getattr(screen, "first_shown_at", None) is None:
            await asyncio.sleep(0.002)
            screen = app.screen
        cpu = time.process_time() - c0  # both threads: a figure the others' load moves less
        print(
            f"screen open -> first candidate shown, {label}: {screen.first_shown_at - t0:.3f} s "
            f"({GOAL_FIRST_CARD}; CPU {cpu:.3f} s) {load()}"
        )
        if second_opinion:  # the early card is the draw's first; the rest of its groups come next
            while screen.store is None:
                await asyncio.sleep(0.002)
            print(f"  ... its whole blind queue ({len(screen.queue):,}) at {time.perf_counter() - t0:.3f} s (no goal)")
        while screen.reading:
            await asyncio.sleep(0.01)


def add_journal(ws: Workspace, n: int) -> None:
    """Append n decisions to the journal directly (as n keypresses would, minus the fsyncs)."""
    s = CandidateStore(ws).load()
    seq = s.journal.seq
    rows = list(s.rows)
    shard_names = [p.name for p in s.log._shards]
    s.close()
    with open(ws.candidates_dir / "decisions.jsonl", "a") as f:
        for i in range(n):
            seq += 1
            row = rows[i % len(rows)]
            f.write(
                json.dumps(
                    {
                        "seq": seq,
                        "op": "decide",
                        "ids": [row.id],
                        "status": "accepted",
                        "reason": None,
                        "text": None,
                        "reviewer": "bench",
                        "t": time.time(),
                        "at": [shard_names[row.shard], row.offset],
                    },
                    separators=(",", ":"),
                )
                + "\n"
            )


def bench_fold_in_session(ws: Workspace, decisions: int = 600) -> None:
    """Keypress -> durable decision while the session's journal is folded into the snapshot:
    the fold falls due at the middle decision (as every 10,000 entries in a session)."""
    import engine.store.journal as journal

    s = CandidateStore(ws, reviewer="bench").load()
    gc.freeze()  # as the Review screen does once the rows are in: no collector pass over them
    s.begin_review(fold=False)
    due = journal.COMPACT_EVERY
    journal.COMPACT_EVERY = s.journal.entries + decisions // 2
    try:
        lat = []
        for row in s.rows[-decisions:]:
            t = time.perf_counter()
            s.decide(row.id, "accept")
            lat.append(time.perf_counter() - t)
        s.journal.join_fold()
        for _ in range(decisions):
            s.undo()
    finally:
        journal.COMPACT_EVERY = due
        s.close()
        gc.unfreeze()
    print(
        f"store decide with a fold of {len(s.states):,} states due at decision {decisions // 2}: "
        f"median {1e3 * statistics.median(lat):.2f} ms, p99 {1e3 * pct(lat, 0.99):.2f} ms, "
        f"max {1e3 * max(lat):.2f} ms ({GOAL_DURABLE}) {load()}"
    )


async def bench_screen(ws: Workspace, decisions: int, variant: str | None = None) -> None:
    from nlq_tui.app import NLQApp
    from nlq_tui.context import AppContext

    t0 = time.perf_counter()
    app = NLQApp(AppContext(ws, None, "egovlp_fp16", "bench"), "review", load_on_start=False)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        while getattr(screen, "first_shown_at", None) is None:
            await asyncio.sleep(0.002)
            screen = app.screen
        await pilot.pause()
        first = screen.first_shown_at - t0
        print(
            f"screen open -> first candidate shown: {first:.3f} s ({GOAL_FIRST_CARD}) "
            f"({len(screen.store.rows):,} candidates, queue {len(screen.queue):,}) {load()}"
        )

        while screen.reading:
            await asyncio.sleep(0.01)
        print(
            f"screen open -> all candidates in the queue: {time.perf_counter() - t0:.3f} s "
            f"(the first card is usable meanwhile)"
        )
        store = screen.store
        if variant:
            from engine.store import Filter

            screen.set_filter(Filter(variants=frozenset({variant})))
            await pilot.pause()
            print(f"queue filtered to variant {variant}: {len(screen.queue):,} of {len(store.rows):,} candidates")
        real = store.decide
        done: list[float] = []
        painted: list[float] = []

        waiting = [False]

        def timed(*a, **kw):
            step = real(*a, **kw)
            done.append(time.perf_counter())
            waiting[0] = True
            return step

        # The screen updates the card in the same handler, right after decide returns, so the
        # next frame it draws holds the new card. (A private Textual method: it draws a frame.)
        draw = screen._compositor_refresh

        def frame():
            draw()
            if waiting[0]:
                waiting[0] = False
                painted.append(time.perf_counter())

        screen._compositor_refresh = frame
        store.decide = timed
        # pilot.press returns only when Textual's wait_for_idle sees a 20 ms sleep with under
        # 1 ms of CPU in it, so it includes polling: a key bound to nothing shows that floor.
        idle = []
        for _ in range(20):
            t = time.perf_counter()
            await pilot.press("z")
            idle.append(time.perf_counter() - t)
        durable, shown, whole = [], [], []
        for _ in range(decisions):
            t = time.perf_counter()
            await pilot.press("a")
            whole.append(time.perf_counter() - t)
            durable.append(done[-1] - t)
            shown.append(painted[-1] - t)
        print(
            f"keypress -> durable decision, {len(durable)} presses: median {1e3 * statistics.median(durable):.2f} ms, "
            f"p99 {1e3 * pct(durable, 0.99):.2f} ms ({GOAL_DURABLE}) {load()}"
        )
        print(
            f"keypress -> next candidate painted (first frame after the decision): "
            f"median {1e3 * statistics.median(shown):.2f} ms, p90 {1e3 * pct(shown, 0.9):.2f} ms, "
            f"p99 {1e3 * pct(shown, 0.99):.2f} ms"
        )
        print(
            f"keypress -> screen idle again (pilot.press returns): median {1e3 * statistics.median(whole):.2f} ms, "
            f"p99 {1e3 * pct(whole, 0.99):.2f} ms; an unbound key: median {1e3 * statistics.median(idle):.2f} ms "
            f"(Textual's idle polling, the floor of this figure)"
        )
        # The timing wrapper refers to the store through `real`: a cycle of the bench's own,
        # which would keep its million rows for the cyclic collector to walk in a later phase.
        del store.decide


def first_card_in_a_terminal(ws: Workspace, runs: int = 3) -> None:
    """Start `nlq-tui --screen review` in a pseudo-terminal; time until the first card is drawn.

    This is what a user waits for: Python start, imports, the app, the store, the first paint.
    """
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios

    exe = Path(sys.executable).parent / "nlq-tui"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.environ.update(TERM="xterm-256color", HF_HUB_OFFLINE="1")
            os.execv(str(exe), [str(exe), "--workspace", str(ws.path), "--screen", "review"])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 130, 0, 0))
        out = b""
        seen = None
        while time.perf_counter() - t0 < 30:
            r, _, _ = select.select([fd], [], [], 0.01)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
                if b"in queue" in out:
                    seen = time.perf_counter() - t0
                    break
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        times.append(seen)
    shown = ", ".join("—" if t is None else f"{t:.2f}" for t in times)
    print(
        f"process start -> first card drawn in a terminal (nlq-tui --screen review), {runs} runs: {shown} s "
        f"(no goal: Python start and imports included) {load()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--decisions", type=int, default=300)
    ap.add_argument(
        "--journal",
        type=int,
        default=60_000,
        help="then add this many decisions to the journal and time the first card again (0: skip)",
    )
    ap.add_argument("--variants", type=int, default=1, help="candidates from this many variants (one model each)")
    ap.add_argument("--keep", help="build the workspace here and keep it")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-review-"))
    try:
        ws = Workspace(tmp / "ws")
        if not any(ws.candidates_dir.glob("groups-*.jsonl")):
            secs = build(ws, args.n, variants=args.variants)
            size = sum(p.stat().st_size for p in ws.candidates_dir.glob("groups-*.jsonl"))
            print(f"built {args.n:,} candidates ({size / 1e6:.0f} MB of shards) in {secs:.1f} s")
        bench_store(ws, args.decisions)
        first_card_in_a_terminal(ws)
        first_variant = "openai-model-0-v1" if args.variants > 1 else None
        asyncio.run(bench_screen(ws, args.decisions, first_variant))
        if args.journal:
            add_journal(ws, args.journal)
            # Each open below stands for a fresh `nlq-tui`: garbage the bench's earlier phases
            # left (Textual apps are in cycles) is not the next open's cost.
            gc.collect()
            asyncio.run(first_card(ws, f"{args.journal:,} decisions in the journal (replayed, then compacted)"))
            gc.collect()
            asyncio.run(first_card(ws, "the same decisions from the snapshot"))
            gc.collect()
            label = f"second opinion (--second-opinion) on those {args.journal:,} decisions"
            asyncio.run(first_card(ws, label, second_opinion=True))
            bench_fold_in_session(ws)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
