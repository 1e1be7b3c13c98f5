"""Benchmark: generation throughput, printed, nothing asserted.

    .venv/bin/python bench/bench_generation.py [ROOT] [--requests N] [--concurrency 32] [--latency 0.2]
                                               [--checks full|fast|both] [--wide] [--skip-http]
                                               [--skip-endless] [--skip-template] [--json]

ROOT defaults to $NLQ_BENCH_SCALE, else `.scale/` (gitignored); without ego4d.json there, an
Ego4D-scale tree is written first (`nlq-tui sample ROOT --videos 9600 --no-features`).

1. HTTP: the OpenAI-compatible backend against bench/llm_server.py in its own process: at most
   `--concurrency` requests served at once, each `--latency` seconds (32 x 200 ms: a limit of
   160 requests/s; `--wide` adds 128 x 50 ms, 2,560 requests/s), every answer five valid
   questions. The whole job runs (prompt, HTTP, parsing, validation, checks, store), with the
   default checks (full: MiniLM near-duplicates and ambiguity) and with --checks fast. Printed:
   the share of the endpoint's limit (goal >= 90%), the client's CPU ms per request, the checks'
   own rate, the load average (this box's 2 CPUs are shared with other users).
2. Endless body: peak RSS of a job whose server streams every body without end (goal < 300 MB,
   ending within the request timeout).
3. Template: every group of ROOT, two ways.
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


def start_server(latency: float, concurrency: int) -> tuple[subprocess.Popen, str]:
    """bench/llm_server.py in its own process: the endpoint's latency and limit are its flags."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "llm_server.py"), "--port", "0", "--latency", str(latency),
         "--concurrency", str(concurrency)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()  # type: ignore[union-attr]
    return proc, line.strip().rsplit(" ", 1)[-1]


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _children_cpu(but: int) -> float:
    """CPU seconds of this process's finished and running children but one (the checks' worker)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = ru.ru_utime + ru.ru_stime
    try:
        for pid in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
            if int(pid) != but:
                total += _proc_cpu(int(pid)) or 0.0
    except OSError:
        pass
    return total


def bench_http(index, result, n: int, concurrency: int, latency: float, checks: str, client_concurrency: int) -> dict:
    """One job of n groups against the bench endpoint; figures of the request phase and the checks."""
    import resource

    from engine.generation.openai_backend import OpenAIBackend
    from engine.generation.pipeline import GenerationJob
    from engine.workspace import Workspace

    proc, url = start_server(latency, concurrency)
    tmp = Path(tempfile.mkdtemp(prefix="nlq-bench-gen-"))
    try:
        backend = OpenAIBackend("bench", [url], concurrency=client_concurrency, timeout=60)
        job = GenerationJob(index, Workspace(tmp / "ws"), backend, groups=n, seed=7, checks=checks, result=result)
        job.prepare()
        srv0 = _proc_cpu(proc.pid) or 0.0
        cpu0, kids0 = resource.getrusage(resource.RUSAGE_SELF), _children_cpu(proc.pid)
        st = job.run_sync()
        cpu1, kids1 = resource.getrusage(resource.RUSAGE_SELF), _children_cpu(proc.pid)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        server_cpu = (_proc_cpu(proc.pid) or 0.0) - srv0
        limit = concurrency / latency
        req_secs = st.as_json().get("request_seconds") or st.seconds
        rps = st.requests / req_secs
        j = st.as_json()
        return {
            "checks": checks,
            "requests": st.requests,
            "failed_requests": st.failed_requests,
            "request_seconds": round(req_secs, 3),
            "job_seconds": round(st.seconds, 3),
            "requests_per_second": round(rps, 1),
            "endpoint_limit": round(limit, 1),
            "fraction_of_limit": round(rps / limit, 3),
            "target_fraction": 0.9,
            "questions_valid": st.questions_valid,
            "questions_rejected": dict(st.rejected),
            "checks_per_second": j.get("checks_per_second"),
            "client_cpu_ms_per_request": round(1000 * cpu / max(1, st.requests), 2),
            "checks_worker_cpu_ms_per_request": round(1000 * (kids1 - kids0) / max(1, st.requests), 2),
            "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, st.requests), 2),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def print_http(h: dict, concurrency: int, latency: float) -> None:
    print(f"HTTP  checks={h['checks']}: {h['requests']} requests, endpoint {concurrency} at once x {latency * 1000:.0f} ms "
          f"= {h['endpoint_limit']} req/s limit: {h['requests_per_second']} req/s = {h['fraction_of_limit'] * 100:.0f}% "
          f"(goal >= 90%); client CPU {h['client_cpu_ms_per_request']} ms/request (+ checks worker "
          f"{h['checks_worker_cpu_ms_per_request']} ms), server {h['server_cpu_ms_per_request']} ms; checks "
          f"{h['checks_per_second']} questions/s; job {h['job_seconds']} s; failed {h['failed_requests']}; "
          f"load average {h['load_average']} on {os.cpu_count()} CPUs shared with other users", file=sys.stderr)  # fmt: skip


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


ENDLESS_JOB = """
import json, sys, time
from engine.ego4d import load_index
from engine.generation.openai_backend import OpenAIBackend
from engine.generation.pipeline import GenerationJob
from engine.workspace import Workspace
root, ws, url, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
index = load_index(root)
backend = OpenAIBackend("m", [url], concurrency=8, timeout=timeout, max_retries=0)
t0 = time.monotonic()
st = GenerationJob(index, Workspace(ws), backend, groups=32, checks="fast").run_sync()
hwm = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]
print(json.dumps({"seconds": time.monotonic() - t0, "failures": dict(st.failures), "peak_rss_mb": int(hwm) / 1024}))
"""


def bench_endless(root: Path, timeout: float) -> dict:
    """A job of 32 groups of `root` (sample_data: a job's own memory, not a large index's) against
    a server whose every body streams without end, in its own process."""
    sys.path.insert(0, str(REPO / "tests"))
    from fake_llm_server import FakeLLMServer

    tmp = Path(tempfile.mkdtemp(prefix="nlq-bench-endless-"))
    try:
        with FakeLLMServer(default="endless") as srv:
            out = subprocess.run([sys.executable, "-c", ENDLESS_JOB, str(root), str(tmp / "ws"), srv.base_url,
                                  str(timeout)], capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
            sent = srv.endless_bytes
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res.update(server_sent_mb=round(sent / 2**20, 1), peak_rss_goal_mb=300, timeout=timeout)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=os.environ.get("NLQ_BENCH_SCALE", str(REPO / ".scale")))
    ap.add_argument("--requests", type=int, default=1600, help="groups (= requests) per HTTP run (default 1600)")
    ap.add_argument("--concurrency", type=int, default=32, help="the endpoint's concurrency limit (default 32)")
    ap.add_argument("--latency", "--delay", type=float, default=0.2, help="the endpoint's latency (default 0.2 s)")
    ap.add_argument("--checks", choices=["full", "fast", "both"], default="both", help="default: both, full first")
    ap.add_argument("--wide", action="store_true", help="also concurrency 128 at 50 ms (a 2,560 req/s limit)")
    ap.add_argument("--job-groups", type=int, default=20000, help="tiled groups for the template job into a store")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-template", action="store_true")
    ap.add_argument("--skip-endless", action="store_true")
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
        checks = ["full", "fast"] if args.checks == "both" else [args.checks]
        for c in checks:
            out[f"http_{c}"] = h = bench_http(index, result, args.requests, args.concurrency, args.latency, c,
                                              args.concurrency)  # fmt: skip
            print_http(h, args.concurrency, args.latency)
        if args.wide:
            for c in checks:
                out[f"http_wide_{c}"] = h = bench_http(index, result, args.requests * 4, 128, 0.05, c, 128)
                print_http(h, 128, 0.05)
    if not args.skip_endless:
        out["endless"] = e = bench_endless(REPO / "sample_data", 5.0)
        print(f"ENDLESS body: peak RSS {e['peak_rss_mb']:.0f} MB (goal < 300 MB), job {e['seconds']:.2f} s "
              f"(request timeout {e['timeout']:g} s), failures {e['failures']}", file=sys.stderr)  # fmt: skip
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
    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
