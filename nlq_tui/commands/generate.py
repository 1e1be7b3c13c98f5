"""`nlq-tui generate`: candidate questions for narration groups, headless and resumable."""

from __future__ import annotations

import argparse
import json
import sys
import time


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate candidate NLQ questions for narration groups (template, OpenAI-compatible or local HF)",
        description="One request per group of k narrations in one clip; every answer is validated, "
        "checked for quality and stored in the workspace as candidates for review. Run the same "
        "command again to finish an interrupted run: done groups are skipped, none is stored twice.",
    )
    # --data / --workspace also work before the subcommand; SUPPRESS keeps those values.
    p.add_argument(
        "--data",
        metavar="ROOT",
        default=argparse.SUPPRESS,
        help="Ego4D root (default: the workspace's, else sample_data/)",
    )
    p.add_argument(
        "--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder (default ./nlq-workspace)"
    )
    p.add_argument(
        "--features",
        metavar="NAME",
        default=None,
        help="feature folder under v1/ (default: the workspace's, else egovlp_fp16)",
    )
    p.add_argument(
        "--backend",
        choices=["template", "openai", "hf"],
        default="template",
        help="template (default, offline), openai (any OpenAI-compatible server) or hf (a local model)",
    )
    p.add_argument("--model", metavar="M", help="model name (openai) or local folder (hf)")
    p.add_argument(
        "--base-url",
        metavar="URL",
        action="append",
        dest="base_urls",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1; repeat to share the load",
    )
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        default="OPENAI_API_KEY",
        help="environment variable that holds the API key (default OPENAI_API_KEY); never stored",
    )
    p.add_argument("--groups", type=int, metavar="N", help="sample N groups (default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--per-video", type=int, metavar="N", help="at most N groups from one video")
    p.add_argument("--concurrency", type=int, metavar="C", help="requests in flight (openai; default 8)")
    p.add_argument("--batch-size", type=int, metavar="B", help="groups per generate() call (hf; default 8)")
    p.add_argument("--stride", type=int, metavar="S", help="narrations between group starts (default k: no overlap)")
    p.add_argument("--k", type=int, default=5, help="narrations per group (default 5)")
    p.add_argument("--alpha", type=float, default=4.9, help="window = beta / alpha (default 4.9)")
    p.add_argument("--min-window", type=float, default=1.0, metavar="SEC", help="shortest window (default 1.0 s)")
    p.add_argument(
        "--pass", dest="narration_pass", default="1", choices=["1", "2", "both"], help="narration pass (default 1)"
    )
    p.add_argument(
        "--checks",
        choices=["full", "fast"],
        default="full",
        help="full: also MiniLM near-duplicate and ambiguity checks (default); fast: text checks only",
    )
    p.add_argument("--timeout", type=float, default=120.0, metavar="SEC", help="per-request timeout (default 120)")
    p.add_argument("--max-retries", type=int, default=5, help="retries per request (default 5)")
    p.add_argument("--max-tokens", type=int, default=1024, help="answer length limit (default 1024)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--no-structured", action="store_true", help="do not ask for JSON-schema structured output")
    p.add_argument("--price-per-1k", type=float, metavar="USD", help="price per 1000 tokens, for a running cost")
    p.add_argument(
        "--prompt-version", type=int, metavar="V", help="prompt version to use (default: the workspace's current)"
    )
    p.add_argument("--device", help="hf: torch device (default cuda when available)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="send one group (the first selected, or --group-index) and print the exact messages, "
        "the raw answer and its validation; stores nothing",
    )
    p.add_argument(
        "--group-index", type=int, default=0, metavar="I", help="which selected group --dry-run sends (default 0)"
    )
    p.add_argument("--no-cache", action="store_true", help="rebuild the index instead of reading the cache")
    p.add_argument("--json", action="store_true", help="end with one JSON object of figures on stdout")
    p.set_defaults(func=run)


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def progress_line(st: dict, eta: float | None) -> str:
    done = st["groups_done"] + st["groups_failed"]
    todo = st["groups_total"] - st["groups_skipped"]
    cost = f" ${st['cost']:.4f}" if st.get("cost") is not None else ""
    rej = sum(st["questions_rejected"].values())
    return (
        f"{done:,}/{todo:,} groups  {st['groups_per_second']:.1f}/s  ETA {_fmt_eta(eta)}  "
        f"valid {st['questions_valid']:,}  rejected {rej:,}  failed {st['failed_requests']:,}  "
        f"tokens {st['tokens']:,}{cost}"
    )


def _dry_run(job, args) -> int:
    import asyncio

    from engine.errors import ConfigError
    from engine.generation.pipeline import dry_run, select_groups
    from engine.windows import compute

    result = compute(job.index, job.params)
    groups = select_groups(result, stride=job.stride, n=job.n_groups, seed=job.seed, per_video=job.per_video)
    if not 0 <= args.group_index < len(groups):
        raise ConfigError(f"--group-index must be in 0..{len(groups) - 1} ({len(groups)} groups selected)")
    out = asyncio.run(dry_run(result, int(groups[args.group_index]), job.backend, job.prompt))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0 if not out["error"] else 1
    print(f"group {out['group_key']}  (prompt v{job.prompt.version})")
    for m in out["messages"]:
        print(f"\n--- {m['role']} ---\n{m['content']}")
    if out["error"]:
        print(f"\n--- request failed: {out['error']} {out['error_detail']}")
        return 1
    raw = out["raw"] if out["raw"] is not None else json.dumps(out["parsed"], indent=1)
    print(f"\n--- raw answer ({out['tokens']} tokens, {out['seconds']} s) ---\n{raw}\n\n--- validation ---")
    for q in out["accepted"]:
        print(f"  ok  {q['narration']}. {q['query']}")
    for r in out["rejected"]:
        print(f"  REJECTED {r['narration'] or '-'} {r['reason']}: {r['detail']}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.ego4d import DEFAULT_FEATURES, load_index
    from engine.errors import ConfigError
    from engine.generation.pipeline import GenerationJob, make_backend
    from engine.generation.prompt import get_prompt, pin_current_prompt
    from engine.windows import WindowParams
    from engine.workspace import Workspace

    ws = Workspace(getattr(args, "workspace", None))
    data = getattr(args, "data", None) or ws.get("data_root")
    if not data:
        data = "sample_data"
        if not Path(data).is_dir():
            raise ConfigError("no data root: pass --data ROOT (the folder with ego4d.json and v1/annotations/)")
    features = args.features or ws.get("features") or DEFAULT_FEATURES
    params = WindowParams(
        k=args.k, alpha=args.alpha, min_window=args.min_window,
        narration_pass=args.narration_pass if args.narration_pass == "both" else int(args.narration_pass),
    ).validated()  # fmt: skip
    backend = make_backend(
        args.backend,
        model=args.model,
        base_urls=args.base_urls,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        price_per_1k=args.price_per_1k,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        structured=not args.no_structured,
        device=args.device,
    )
    prompt = get_prompt(ws, args.prompt_version) if args.prompt_version else pin_current_prompt(ws)
    tty = sys.stderr.isatty() and not args.json
    t0 = time.monotonic()
    index = load_index(data, features=features, use_cache=not args.no_cache)
    # Remember the root as the app does, so that export and train on this workspace find it.
    ws.set("data_root", str(Path(data).resolve()))
    ws.set("features", features)
    last = [0.0]

    def on_event(ev: dict) -> None:
        if ev["type"] != "progress":
            return
        now = time.monotonic()
        st = ev["stats"]
        if tty and (now - last[0] > 0.5 or st["state"] in ("done", "cancelled", "failed")):
            last[0] = now
            print("\r\033[K" + progress_line(st, job.stats.eta), end="", file=sys.stderr, flush=True)

    job = GenerationJob(
        index, ws, backend, params=params, stride=args.stride, groups=args.groups, seed=args.seed,
        per_video=args.per_video, checks=args.checks, prompt=prompt, on_event=on_event,
    )  # fmt: skip
    if args.dry_run:
        return _dry_run(job, args)
    job.prepare()
    if not args.json and args.checks == "full" and len(job.todo) > 20_000:
        print(
            f"note: full checks embed every question and clip narration with MiniLM "
            f"({len(job.todo) * params.k:,} questions); on a CPU that takes long. --checks fast skips it.",
            file=sys.stderr,
        )
    if not args.json:
        print(
            f"{backend.describe()}, prompt v{prompt.version}: {job.stats.groups_total:,} groups selected, "
            f"{job.stats.groups_skipped:,} already done, {len(job.todo):,} to do",
            file=sys.stderr,
        )
    stats = job.run_sync()
    if tty:
        print(file=sys.stderr)
    out = stats.as_json()
    out["backend"] = backend.name
    out["model"] = backend.model
    out["prompt_version"] = prompt.version
    out["workspace"] = str(ws.path)
    out["total_seconds"] = round(time.monotonic() - t0, 3)
    if args.json:
        print(json.dumps(out))
    else:
        rej = ", ".join(f"{k} {v}" for k, v in sorted(out["questions_rejected"].items())) or "none"
        fails = ", ".join(f"{k} {v}" for k, v in sorted(out["failures"].items())) or "none"
        print(
            f"done: {out['groups_done']:,} groups stored, {out['questions_valid']:,} questions valid; "
            f"rejected: {rej}; failed requests: {fails}; tokens {out['tokens']:,}; {out['seconds']:.1f} s",
            file=sys.stderr,
        )
    if stats.error:
        raise ConfigError(stats.error)
    return 1 if stats.groups_failed else 0  # 1: some groups still to do; run the command again
