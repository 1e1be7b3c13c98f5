"""`nlq-tui generate`: candidate questions for narration groups, headless and resumable."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.ego4d.layout import ANNOTATIONS, DEFAULT_FEATURES, EGO4D_JSON, FEATURES_SUBDIR
from engine.errors import ConfigError, WorkspaceError
from engine.textsafe import one_line, visible

# Exit status when the work is not all done: some groups' requests failed (run the same command
# again to do just those), or the dry run's request failed. 1 stays "a bug", 2 "a user error".
PARTIAL = 3


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate candidate NLQ questions for narration groups (template, OpenAI-compatible or local HF)",
        description="One request per group of k narrations in one clip; every answer is validated, "
        "checked for quality and stored in the workspace as candidates for review. Run the same "
        "command again to finish an interrupted run: done groups are skipped, none is stored twice.",
    )
    _source_args(p)
    _selection_args(p)
    _request_args(p)
    _variant_and_mode_args(p)
    p.set_defaults(func=run)


def _source_args(p: argparse.ArgumentParser) -> None:
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
        help=f"feature folder under {FEATURES_SUBDIR}/ (default: the workspace's, else {DEFAULT_FEATURES})",
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


def _selection_args(p: argparse.ArgumentParser) -> None:
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


def _request_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=120.0, metavar="SEC", help="per-request timeout (default 120)")
    p.add_argument("--max-retries", type=int, default=5, help="retries per request (default 5)")
    p.add_argument("--max-tokens", type=int, default=1024, help="answer length limit (default 1024)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature, 0..2 (default 0.7)")
    p.add_argument("--no-structured", action="store_true", help="do not ask for JSON-schema structured output")
    p.add_argument("--price-in", type=float, metavar="USD", help="price per 1M prompt tokens, for the cost")
    p.add_argument("--price-out", type=float, metavar="USD", help="price per 1M completion tokens, for the cost")
    p.add_argument("--price-per-1k", type=float, metavar="USD", help=argparse.SUPPRESS)  # old name: both prices
    p.add_argument("--max-response-bytes", type=int, metavar="N", help="cut an answer longer than this (default 1 MB)")


def _variant_and_mode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", metavar="NAME", help="name of the variant (default: from backend, model and prompt)")
    p.add_argument(
        "--flag-reason",
        metavar="REASON",
        action="append",
        dest="flag_reasons",
        help="keep questions failing this validation check (e.g. copies_narration) as flagged, not rejected; "
        "repeatable; part of the variant",
    )
    p.add_argument(
        "--prompt-version", type=int, metavar="V", help="prompt version to use (default: the workspace's current)"
    )
    p.add_argument("--device", help="hf: torch device (default cuda when available)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="send one group (the first selected, or --group-index) and print the exact messages, "
        "the raw answer, its validation and the cost estimate of the whole job; stores nothing",
    )
    p.add_argument(
        "--group-index", type=int, default=0, metavar="I", help="which selected group --dry-run sends (default 0)"
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="run the job as its own process (it outlives this terminal); watch it with --status",
    )
    p.add_argument("--status", action="store_true", help="show the workspace's detached job and exit")
    p.add_argument("--stop", action="store_true", help="stop the workspace's detached job (done groups stay)")
    p.add_argument("--no-cache", action="store_true", help="rebuild the index instead of reading the cache")
    p.add_argument("--json", action="store_true", help="end with one JSON object of figures on stdout")


def _estimate(job) -> dict | None:
    """The whole job's cost estimate, or {"error": ...} when it cannot be made."""
    from engine.generation.estimate import estimate_job

    try:
        return estimate_job(job)  # selects the groups without taking the writer lock
    except WorkspaceError as exc:  # another job writes candidates now: the dry run still shows its group
        return {"error": one_line(exc)}
    finally:
        job.close()


def estimate_line(est: dict) -> str:
    if est.get("error"):
        return f"estimate: not available ({est['error']})"
    if est.get("llm") is False:  # the built-in templates: no tokens, no price to give
        return f"estimate for the whole job: {est.get('groups', 0):,} groups, no LLM (built-in templates), free"
    cost = est.get("cost")
    money = f"${cost:,.2f}" if cost is not None else "no price given (--price-in/--price-out)"
    return (
        f"estimate for the whole job: {est.get('requests', 0):,} requests, {est.get('prompt_tokens', 0):,} prompt "
        f"+ {est.get('completion_tokens', 0):,} completion tokens, {money}"
    )


def _dry_run(job, args) -> int:
    import asyncio

    from engine.generation.pipeline import dry_run, select_groups
    from engine.windows import compute

    result = compute(job.index, job.params)
    groups = select_groups(result, stride=job.stride, n=job.n_groups, seed=job.seed, per_video=job.per_video)
    if not 0 <= args.group_index < len(groups):
        raise ConfigError(f"--group-index must be in 0..{len(groups) - 1} ({len(groups)} groups selected)")
    job.result = result
    out = asyncio.run(dry_run(result, int(groups[args.group_index]), job.backend, job.prompt))
    out["estimate"] = _estimate(job)
    if args.json:  # ensure_ascii: every control character of the data is a \u escape, never raw
        print(json.dumps(out, ensure_ascii=True))
        return 0 if not out["error"] else PARTIAL
    _print_dry_run(out, job.prompt.version)
    return 0 if not out["error"] else PARTIAL


def _print_dry_run(out: dict, version: int) -> None:
    """The dry run as text; everything from outside (narrations, answers, errors) made visible."""
    lines = [f"group {visible(out['group_key'], 300)}  (prompt v{version})"]
    for m in out["messages"]:
        lines.append(f"\n--- {visible(m['role'], 40)} ---\n{visible(m['content'], newlines=True)}")
    if out["error"]:
        lines.append(f"\n--- request failed: {one_line(out['error'])} {one_line(out['error_detail'] or '')}")
    else:
        raw = out["raw"] if out["raw"] is not None else json.dumps(out["parsed"], indent=1, ensure_ascii=False)
        lines.append(f"\n--- raw answer ({out['tokens']} tokens, {out['seconds']} s) ---")
        lines.append(visible(raw, 200_000, newlines=True))
        lines.append("\n--- validation ---")
        lines += [f"  ok  {q['narration']}. {one_line(q['query'])}" for q in out.get("accepted", [])]
        lines += [f"  REJECTED {r['narration'] or '-'} {one_line(r['reason'], 60)}: {one_line(r['detail'])}"
                  for r in out.get("rejected", [])]  # fmt: skip
    if out.get("estimate") is not None:
        lines.append("\n" + estimate_line(out["estimate"]))
    print("\n".join(lines))


def _spec(args: argparse.Namespace):
    """The job's settings from the flags, checked before anything is read or written."""
    from engine.generation.jobs import JobSpec, check_spec
    from engine.generation.settings import GenerationSettings

    price_in, price_out = args.price_in, args.price_out
    if args.price_per_1k is not None:  # the old flag: one price per 1,000 tokens, both ways
        old = GenerationSettings.with_price_per_1k(args.price_per_1k)
        price_in = old.price_in if price_in is None else price_in
        price_out = old.price_out if price_out is None else price_out
    spec = JobSpec(
        data="-", features=args.features, backend=args.backend, model=args.model, base_urls=args.base_urls,
        api_key_env=args.api_key_env, concurrency=args.concurrency, batch_size=args.batch_size,
        timeout=args.timeout, max_retries=args.max_retries, max_tokens=args.max_tokens,
        temperature=args.temperature, structured=not args.no_structured, price_in=price_in, price_out=price_out,
        max_response_bytes=args.max_response_bytes, device=args.device, k=args.k, alpha=args.alpha,
        min_window=args.min_window, narration_pass=args.narration_pass, stride=args.stride, groups=args.groups,
        seed=args.seed, per_video=args.per_video, checks=args.checks, prompt_version=args.prompt_version,
        name=args.name, flag_reasons=args.flag_reasons, no_cache=args.no_cache,
    )  # fmt: skip
    check_spec(spec)
    if args.group_index < 0:
        raise ConfigError(f"--group-index must be >= 0, got {args.group_index}")
    return spec


def _fill_data(spec, args: argparse.Namespace, ws) -> None:
    data = getattr(args, "data", None) or ws.get("data_root")
    if not isinstance(data, str) or not data:
        data = "sample_data"
        if not Path(data).is_dir():
            raise ConfigError(f"no data root: pass --data ROOT (the folder with {EGO4D_JSON} and {ANNOTATIONS}/)")
    features = spec.features or ws.get("features")
    spec.data = str(Path(data).resolve())  # the detached process may start elsewhere
    spec.features = features if isinstance(features, str) and features else DEFAULT_FEATURES


def _status(args: argparse.Namespace) -> int:
    from engine.generation.jobs import job_dir, progress_line, read_status
    from engine.workspace import DEFAULT_WORKSPACE

    ws_path = Path(getattr(args, "workspace", None) or DEFAULT_WORKSPACE).expanduser().resolve()
    st = read_status(ws_path)  # reads only: never creates a workspace
    if args.json:
        print(json.dumps(st if st is not None else {"state": None}, ensure_ascii=True))
        return 0
    if st is None:
        print(f"no detached generation job in {visible(ws_path)}")
        return 0
    spec = st.get("spec") if isinstance(st.get("spec"), dict) else {}
    head = f"generation job: {st['state']}"
    if st.get("pid"):
        head += f" (pid {st.get('pid')} on {one_line(st.get('host'), 80)})"
    print(one_line(head))
    if st.get("backend"):
        variant = st.get("variant") or spec.get("name") or "-"
        print(one_line(f"{st['backend']}, prompt v{st.get('prompt_version')}, variant {variant}"))
    if st.get("step"):
        print(one_line(f"step: {st['step']}"))
    if isinstance(st.get("stats"), dict):
        try:
            print(visible(progress_line(st["stats"], st.get("eta") if isinstance(st.get("eta"), float) else None)))
        except (KeyError, TypeError, ValueError, AttributeError):
            print("progress: status.json holds unreadable figures")
    if st.get("error"):
        print(one_line(f"error: {st['error']}"))
    print(one_line(f"log: {job_dir(ws_path) / 'generate.log'}"))
    return 0


def _stop(args: argparse.Namespace) -> int:
    from engine.generation.jobs import stop_job
    from engine.workspace import DEFAULT_WORKSPACE, Workspace

    ws = Workspace.existing(getattr(args, "workspace", None) or DEFAULT_WORKSPACE)
    pid = stop_job(ws)
    print(f"asked the generation job (pid {pid}) to stop: requests in flight finish and are stored")
    return 0


def _detach(spec, ws, args: argparse.Namespace) -> int:
    from engine.generation.jobs import job_dir, start_job

    p = start_job(ws, spec)
    folder = job_dir(ws)
    if args.json:
        print(json.dumps({"pid": p.pid, "status": str(folder / "status.json"), "log": str(folder / "generate.log")}))
    else:
        print(
            one_line(f"generation runs as pid {p.pid}; watch it with `nlq-tui generate --status --workspace {ws.path}`"
                     f" or on the Generate screen; log: {folder / 'generate.log'}"),
            file=sys.stderr,
        )  # fmt: skip
    return 0


def _progress_printer(job_ref: list, tty: bool):
    """Progress on stderr: a live line on a terminal, else a plain line every 10 s (nohup, batch jobs)."""
    from engine.generation.jobs import PROGRESS_LOG_S, progress_line

    last = [0.0]
    end = ("done", "cancelled", "failed")

    def on_event(ev: dict) -> None:
        kind = ev.get("type")
        if kind == "step" and ev.get("text"):
            print(("\r\033[K" if tty else "") + one_line(ev["text"]), file=sys.stderr, flush=True)
            return
        if kind != "progress":
            return
        now, st = time.monotonic(), ev["stats"]
        eta = job_ref[0].stats.eta if job_ref[0] is not None else None
        if tty and (now - last[0] > 0.5 or st["state"] in end):
            last[0] = now
            print("\r\033[K" + progress_line(st, eta), end="", file=sys.stderr, flush=True)
        elif not tty and (now - last[0] >= PROGRESS_LOG_S or st["state"] in end):
            last[0] = now
            print(progress_line(st, eta), file=sys.stderr, flush=True)

    return on_event


def run(args: argparse.Namespace) -> int:
    from engine.generation.jobs import build_job, check_lock_free, remember_data
    from engine.workspace import Workspace

    if args.status:
        return _status(args)
    if args.stop:
        return _stop(args)
    spec = _spec(args)
    ws = Workspace(getattr(args, "workspace", None))
    _fill_data(spec, args, ws)
    if args.detach:
        if args.dry_run:
            raise ConfigError("--dry-run and --detach do not go together: a dry run prints and stores nothing")
        return _detach(spec, ws, args)
    if not args.dry_run:
        check_lock_free(ws)  # a refused job changes nothing, not even the remembered data root
    tty = sys.stderr.isatty() and not args.json
    t0 = time.monotonic()
    job_ref: list = [None]
    job = build_job(spec, ws, on_event=None if args.json else _progress_printer(job_ref, tty))
    job_ref[0] = job
    if args.dry_run:
        remember_data(ws, spec)
        return _dry_run(job, args)
    job.prepare()
    remember_data(ws, spec)
    return _run_job(job, spec, ws, args, tty, t0)


def _run_job(job, spec, ws, args: argparse.Namespace, tty: bool, t0: float) -> int:
    backend, prompt = job.backend, job.prompt
    if not args.json and spec.checks == "full" and len(job.todo) > 20_000:
        print(
            f"note: full checks embed every question and clip narration with MiniLM "
            f"({len(job.todo) * spec.k:,} questions); on a CPU that takes long. --checks fast skips it.",
            file=sys.stderr,
        )
    if not args.json:
        print(
            one_line(f"{backend.describe()}, prompt v{prompt.version}, variant {job.variant.name}: "
                     f"{job.stats.groups_total:,} groups selected, "
                     f"{job.stats.groups_skipped:,} already done, {len(job.todo):,} to do"),
            file=sys.stderr,
        )  # fmt: skip
    stats = job.run_sync()
    if tty:
        print(file=sys.stderr)
    out = stats.as_json()
    out.update(backend=backend.name, model=backend.model, prompt_version=prompt.version, variant=job.variant.name,
               workspace=str(ws.path),
               total_seconds=round(time.monotonic() - t0, 3))  # fmt: skip
    if args.json:
        print(json.dumps(out, ensure_ascii=True))
    else:
        rej = ", ".join(f"{k} {v}" for k, v in sorted(out["questions_rejected"].items())) or "none"
        fails = ", ".join(f"{k} {v}" for k, v in sorted(out["failures"].items())) or "none"
        print(
            one_line(f"done: {out['groups_done']:,} groups stored, {out['questions_valid']:,} questions valid; "
                     f"rejected: {rej}; failed requests: {fails}; tokens {out['tokens']:,}; {out['seconds']:.1f} s"),
            file=sys.stderr,
        )  # fmt: skip
    if stats.error:
        raise ConfigError(stats.error)
    return PARTIAL if stats.groups_failed else 0
