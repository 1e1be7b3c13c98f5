"""Benchmark: generation throughput, printed, nothing asserted.

    .venv/bin/python bench/bench_generation.py [ROOT] [--requests N] [--concurrency 32] [--delay 0.2]
                                               [--skip-http] [--skip-template] [--json]

ROOT defaults to $NLQ_BENCH_SCALE, else `.scale/` (gitignored); without ego4d.json there, an
Ego4D-scale tree is written first (`nlq-tui sample ROOT --videos 9600 --no-features`).

1. HTTP: the OpenAI-compatible backend against tests/fake_llm_server.py in its own process,
   answering every request after `--delay` seconds (200 ms). With `--concurrency 32` the
   endpoint's limit is 32 / 0.2 s = 160 requests/s; the target is >= 80% of it. The whole job
   runs (prompt, HTTP via the openai package, parsing, validation, text checks, store with
   one fdatasync per batch); `--checks fast`, since the MiniLM checks run off the request path
   and compete for the same CPU cores here.
2. Template: every group of ROOT, two ways.
   a. the backend: questions for all groups, stride 1 (the lab's ~1.5M groups) and tiled
      (stride k, the generation default), each group read from the index, answered, validated.
   b. the whole job into a fresh workspace store for a sample of tiled groups (candidates
      with full provenance, JSON lines, fdatasync per batch), extrapolated to all tiled groups.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def ensure_tree(root: Path) -> None:
    if (root / "ego4d.json").is_file():
        return
    print(f"writing an Ego4D-scale tree into {root} (9600 videos, no features) ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "nlq_tui", "sample", str(root), "--videos", "9600", "--no-features"], check=True
    )


def start_server(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "fake_llm_server.py"), "--port", "0", "--delay", str(delay)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    return proc, line.strip().rsplit(" ", 1)[-1]


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def bench_http(index, result, n: int, concurrency: int, delay: float) -> dict:
    from engine.generation.openai_backend import OpenAIBackend
    from engine.generation.pipeline import GenerationJob
    from engine.workspace import Workspace

    proc, url = start_server(delay)
    tmp = Path(tempfile.mkdtemp(prefix="nlq-bench-gen-"))
    try:
        backend = OpenAIBackend("fake", [url], concurrency=concurrency, timeout=30)
        job = GenerationJob(index, Workspace(tmp / "ws"), backend, groups=n, seed=7, checks="fast", result=result)
        job.prepare()
        import resource

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        st = job.run_sync()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        server_cpu = _proc_cpu(proc.pid)
        limit = concurrency / delay
        rps = st.requests / st.seconds
        return {
            "requests": st.requests,
            "failed_requests": st.failed_requests,
            "seconds": round(st.seconds, 3),
            "requests_per_second": round(rps, 1),
            "endpoint_limit": round(limit, 1),
            "fraction_of_limit": round(rps / limit, 3),
            "target_fraction": 0.8,
            "questions_valid": st.questions_valid,
            "tokens": st.tokens,
            "client_cpu_seconds": round(cpu, 2),
            "client_cpu_ms_per_request": round(1000 * cpu / max(1, st.requests), 2),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, st.requests), 2) if server_cpu else None,
            "load_average": os.getloadavg()[0],
        }
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_template_backend(result, stride: int | None) -> dict:
    """Questions for every group: group keys and narration texts from the index, the template
    backend's answer, validation. No candidates or store (that is `bench_template_job`)."""
    from engine.generation.pipeline import GroupReader, select_groups
    from engine.generation.template import items_for_group
    from engine.generation.validate import validate_items

    t0 = time.perf_counter()
    groups = select_groups(result, stride=stride)
    reader = GroupReader(result)
    valid = rejected = 0
    chunk = 100_000
    for i in range(0, len(groups), chunk):
        part = groups[i : i + chunk]
        keys = reader.keys(part)
        texts, flags = reader.texts(part)
        for key, tx, fl in zip(keys, texts, flags):
            v = validate_items(key, tx, fl, items_for_group(tx, key))
            valid += len(v.accepted)
            rejected += len(v.rejected)
    secs = time.perf_counter() - t0
    return {
        "stride": stride or result.k,
        "groups": int(len(groups)),
        "questions_valid": valid,
        "questions_rejected": rejected,
        "seconds": round(secs, 2),
        "groups_per_second": round(len(groups) / secs, 1),
        "target_seconds_for_1_5M_groups": 120,
        "projected_seconds_for_1_5M_groups": round(1.5e6 / (len(groups) / secs), 1),
        "load_average": os.getloadavg()[0],
    }


def bench_template_job(index, result, n: int) -> dict:
    from engine.generation.pipeline import GenerationJob, select_groups
    from engine.generation.template import TemplateBackend
    from engine.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="nlq-bench-gen-"))
    try:
        job = GenerationJob(
            index, Workspace(tmp / "ws"), TemplateBackend(), groups=n, seed=11, checks="fast", result=result
        )
        job.prepare()
        st = job.run_sync()
        total = len(select_groups(result))
        size = sum(p.stat().st_size for p in (tmp / "ws" / "candidates").glob("*.jsonl"))
        return {
            "groups": st.groups_done,
            "questions_valid": st.questions_valid,
            "seconds": round(st.seconds, 2),
            "groups_per_second": round(st.rate, 1),
            "store_bytes_per_group": round(size / max(1, st.groups_done)),
            "all_tiled_groups": total,
            "projected_seconds_all_tiled": round(total / st.rate, 1) if st.rate else None,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=os.environ.get("NLQ_BENCH_SCALE", str(REPO / ".scale")))
    ap.add_argument("--requests", type=int, default=1600, help="groups (= requests) for the HTTP run (default 1600)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--delay", type=float, default=0.2, help="server answer delay in seconds (default 0.2)")
    ap.add_argument("--job-groups", type=int, default=20000, help="tiled groups for the template job into a store")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-template", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from engine.ego4d import load_index
    from engine.windows import WindowParams, compute

    root = Path(args.root)
    ensure_tree(root)
    t0 = time.perf_counter()
    index = load_index(root)
    result = compute(index, WindowParams())
    out: dict = {"root": str(root), "videos": index.n_videos, "groups_stride_1": result.n_groups,
                 "load_and_windows_seconds": round(time.perf_counter() - t0, 2), "cpus": os.cpu_count()}  # fmt: skip
    if not args.skip_http:
        out["http"] = bench_http(index, result, args.requests, args.concurrency, args.delay)
        h = out["http"]
        print(f"HTTP  {h['requests']} requests at --concurrency {args.concurrency}, server delay {args.delay * 1000:.0f} ms: "
              f"{h['requests_per_second']} req/s = {h['fraction_of_limit'] * 100:.0f}% of the {h['endpoint_limit']} req/s "
              f"limit (target >= 80%); failed {h['failed_requests']}", file=sys.stderr)  # fmt: skip
    if not args.skip_template:
        out["template_backend_tiled"] = a = bench_template_backend(result, None)
        print(f"TEMPLATE backend, tiled (stride {a['stride']}): {a['groups']:,} groups in {a['seconds']} s "
              f"({a['groups_per_second']:,.0f} groups/s)", file=sys.stderr)  # fmt: skip
        out["template_backend_stride_1"] = b = bench_template_backend(result, 1)
        print(f"TEMPLATE backend, every lab group (stride 1): {b['groups']:,} groups in {b['seconds']} s "
              f"({b['groups_per_second']:,.0f} groups/s; target: 1.5M groups < 120 s)", file=sys.stderr)  # fmt: skip
        out["template_job"] = c = bench_template_job(index, result, args.job_groups)
        print(f"TEMPLATE job into the store: {c['groups']:,} groups in {c['seconds']} s ({c['groups_per_second']:,.0f} "
              f"groups/s, {c['store_bytes_per_group']} B/group); all {c['all_tiled_groups']:,} tiled groups: "
              f"~{c['projected_seconds_all_tiled']} s", file=sys.stderr)  # fmt: skip
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
