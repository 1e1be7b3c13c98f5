"""`nlq-tui variants` on a workspace with several variants over the same groups (default 3 x 1,500).

    .venv/bin/python bench/bench_variants.py [--variants 3] [--groups 1500] [--reviewed 0.3]

Prints, beside each goal and with the load average: the engine's `variant_table` on an open
store, by a full read and from the summary it keeps (unchanged, right after a new group, and
rebuilt from nothing), and the whole command (`nlq-tui variants --json` as a process: Python
start, imports, the summary, the table). A share of each variant's candidates is decided, some by a
second reviewer too, so the accept rate and kappa columns have work to do.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from review_fixtures import make_group  # noqa: E402

from engine.candidate import Candidate, candidate_id  # noqa: E402
from engine.store import CandidateStore  # noqa: E402
from engine.variant_cache import SUMMARY, TABLE  # noqa: E402
from engine.variants import Variant, variant_table  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

GOAL = "goal < 0.5 s"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"[load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} CPUs]"


def build(ws: Workspace, variants: int, groups: int, reviewed: float) -> None:
    rng = random.Random(0)
    s = CandidateStore(ws, reviewer="ann")
    base = [
        make_group(f"video-{g % 200:04d}", f"clip-{g % 200:04d}-0", 0.0, 480.0, 5.0 + g // 200, number0=5 * g, rng=rng)
        for g in range(groups)
    ]
    for i in range(variants):
        v = Variant(f"v{i}", "openai", f"model-{i}", 1, temperature=0.2 * i)
        results = []
        for gk, cands, rej, meta in base:
            typed = []
            for c in cands:
                c = dict(c, model=v.model, id=candidate_id(gk, c["narration"]["number"], v.name))
                typed.append(Candidate.from_json(c))
            results.append((gk, typed, rej, dict(meta, prompt_tokens=180, completion_tokens=95, seconds=1.2)))
        for j in range(0, len(results), 256):
            s.add_group_results(results[j : j + 256], variant=v)
    ids = [r.id for r in s.rows]
    picked = rng.sample(ids, int(len(ids) * reviewed))
    half = len(picked) // 2
    s.bulk(picked[:half], "accept", rule="bench")
    s.bulk(picked[half:], "reject", reason="ambiguous", rule="bench")
    s.close()
    bob = CandidateStore(ws, reviewer="bob")
    for cid in picked[: len(picked) // 10]:
        bob.decide(cid, rng.choice(["accept", "reject"]), second=True)
    bob.close()


CPU: list[float] = []  # CPU seconds of each table_s call: steadier than wall time on a busy machine


def table_s(ws: Workspace, summary: bool) -> float:
    t, c = time.perf_counter(), time.process_time()
    store = CandidateStore(ws)
    variant_table(store, summary=summary)
    store.close()
    CPU.append(time.process_time() - c)
    return time.perf_counter() - t


def cpu(n: int) -> str:
    return f"CPU median {statistics.median(CPU[-n:]):.3f} s"


def command_s(ws: Workspace) -> tuple[float, float]:
    """(wall, CPU) seconds of `nlq-tui variants --json` as a new process."""
    t, before = time.perf_counter(), os.times()
    out = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "variants", "--workspace", str(ws.path), "--json"],
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    wall, after = time.perf_counter() - t, os.times()
    if out.returncode:
        print(out.stderr.decode(errors="replace"))
    return wall, after.children_user + after.children_system - before.children_user - before.children_system


def add_group(ws: Workspace, i: int) -> None:
    """One more group of v0, stored as a running job stores it."""
    gk, cands, rej, meta = make_group("video-new", f"clip-new-{i}", 0.0, 480.0, 5.0, rng=random.Random(i))
    typed = [
        Candidate.from_json(dict(c, model="model-0", id=candidate_id(gk, c["narration"]["number"], "v0")))
        for c in cands
    ]
    store = CandidateStore(ws)
    store.add_group_results([(gk, typed, rej, meta)], variant="v0")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--groups", type=int, default=1500)
    ap.add_argument("--reviewed", type=float, default=0.3, help="share of candidates decided")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-variants-"))
    try:
        ws = Workspace(tmp / "ws")
        t = time.perf_counter()
        build(ws, args.variants, args.groups, args.reviewed)
        n = args.variants * args.groups * 5
        print(
            f"built {args.variants} variants x {args.groups:,} groups ({n:,} candidates) in {time.perf_counter() - t:.1f} s"
        )
        for summary, what in ((False, "a full read of the store"), (True, "from its caches, files unchanged")):
            times = [table_s(ws, summary) for _ in range(3)]
            print(f"variant_table (open the store + the table), {what}, 3 runs: median {statistics.median(times):.3f} s, "
                  f"{cpu(3)} ({GOAL}) {load()}")  # fmt: skip
        times = []
        for i in range(3):
            add_group(ws, i)
            times.append(table_s(ws, True))
        print(f"variant_table right after a new group was stored (folded in), 3 runs: median {statistics.median(times):.3f} s, "
              f"{cpu(3)} ({GOAL}) {load()}")  # fmt: skip
        times = []
        for i in range(3):
            reviewer = CandidateStore(ws, reviewer="ann").load()
            reviewer.decide(reviewer.rows[i].id, "reject", reason="trivial")
            reviewer.close()
            times.append(table_s(ws, True))
        print(f"variant_table right after a decision (the decisions replayed), 3 runs: median {statistics.median(times):.3f} s, "
              f"{cpu(3)} ({GOAL}) {load()}")  # fmt: skip
        for name in (SUMMARY, TABLE):
            (ws.candidates_dir / name).unlink()
        print(f"variant_table with its caches removed (rebuilt): {table_s(ws, True):.3f} s, {cpu(1)} ({GOAL}) {load()}")
        for what, grow in (("files unchanged", False), ("right after a new group was stored", True)):
            cmd_s, cmd_cpu = [], []
            for i in range(3):
                if grow:
                    add_group(ws, 100 + i)
                wall, used = command_s(ws)
                cmd_s.append(wall)
                cmd_cpu.append(used)
            print(
                f"nlq-tui variants --json as a process, {what}, 3 runs: median {statistics.median(cmd_s):.3f} s, "
                f"CPU median {statistics.median(cmd_cpu):.3f} s ({GOAL}) {load()}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
