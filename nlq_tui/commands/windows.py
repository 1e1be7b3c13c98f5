"""`nlq-tui windows ROOT`: the window-analysis lab's figures, headless."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from engine.ego4d.layout import ANNOTATIONS, DEFAULT_FEATURES, EGO4D_JSON, FEATURES_SUBDIR


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "windows",
        help="groups of k narrations in one clip and their answer windows: counts, reasons, durations",
        description="Find every group of k consecutive narrations that lies in one clip (the original "
        "notebook's rules), give each narration its window max(min_window, beta/alpha) centred on its "
        "timestamp and cut to the clip, and count the windows that are not usable, by reason.",
    )
    p.add_argument(
        "root", metavar="ROOT", help=f"Ego4D root ({EGO4D_JSON}, {ANNOTATIONS}/, {FEATURES_SUBDIR}/<features>/)"
    )
    p.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        metavar="NAME",
        help=f"feature folder under {FEATURES_SUBDIR}/ whose <video_uid>.pt files decide which videos are used "
        f"(default {DEFAULT_FEATURES})",
    )
    p.add_argument("--k", type=int, default=5, help="narrations per group (default 5)")
    p.add_argument("--alpha", type=float, default=4.9, help="window = beta / alpha (default 4.9, EgoVLP)")
    p.add_argument(
        "--min-window", type=float, default=1.0, metavar="SEC", help="shortest window in seconds (default 1.0)"
    )
    p.add_argument(
        "--pass",
        dest="narration_pass",
        default="1",
        choices=["1", "2", "both"],
        help="narration pass to group (default 1; both = the two passes merged by time)",
    )
    p.add_argument("--no-cache", action="store_true", help="rebuild the index instead of reading the cache")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _import_numpy_single_threaded()
    from engine.ego4d import load_index
    from engine.windows import WindowParams, compute

    params = WindowParams(
        k=args.k,
        alpha=args.alpha,
        min_window=args.min_window,
        narration_pass=args.narration_pass if args.narration_pass == "both" else int(args.narration_pass),
    ).validated()  # a bad value fails before the (possibly long) load
    t0 = time.perf_counter()
    index = load_index(args.root, features=args.features, progress=None if args.json else _progress())
    load_s = time.perf_counter() - t0
    if not args.json and sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    res = compute(index, params)
    summary = res.summary()
    summary["load_seconds"] = round(load_s, 3)
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary, args.root)
    return 0


def _import_numpy_single_threaded() -> None:
    """Import numpy with one OpenBLAS thread, unless it is loaded or the user set the count.

    The figures use no BLAS, and on import OpenBLAS starts a thread pool, one per core, which
    costs a headless command run in a loop more than the lab's arithmetic does (docs/
    ARCHITECTURE.md, "Scale"). The variable is read once, when the library loads, so it is
    removed again at once: nothing this process starts inherits it."""
    if "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


def _progress():
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        pct = f" {100 * done / total:3.0f}%" if total else ""
        print(f"\r\033[K  {stage}{pct}", end="", file=sys.stderr, flush=True)

    return show


def _print(s: dict, root: str) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from engine.textsafe import visible
    from engine.windows import REASONS, WINDOW_REASONS

    con = Console()
    p = s["params"]
    v = s["videos"]
    head = Text(visible(root), style="bold")  # a path the user typed: never markup
    head.append(f"  k={p['k']}  alpha={p['alpha']:g}  min_window={p['min_window']:g}s  pass={p['narration_pass']}")
    con.print(head, soft_wrap=True)  # a long path stays one line, whole, for copy and paste
    con.print(
        f"videos {v['total']:,}: used {v['used']:,}; skipped: excluded (val/test) {v['excluded']:,}, "
        f"no features {v['no_features']:,}, no clips {v['no_clips']:,}; used without beta {v['used_no_beta']:,}"
    )
    con.print(f"narrations in used videos {s['narrations']:,}, of them in no clip {s['narrations_no_clip']:,}")

    fig = Table(title="Groups and windows", show_header=True, header_style="bold")
    fig.add_column("figure")
    fig.add_column("count", justify="right")
    fig.add_column("share", justify="right")
    fig.add_row("runs of k narrations", f"{s['runs']:,}", "")
    fig.add_row("groups (run in one clip)", f"{s['groups']:,}", _share(s["groups"], s["runs"]))
    fig.add_row("windows (groups x k)", f"{s['windows']:,}", "")
    fig.add_row(
        "valid by the notebook's test (start < end)",
        f"{s['notebook_valid']:,}",
        _share(s["notebook_valid"], s["windows"]),
    )
    fig.add_row("usable windows (no reason below)", f"{s['usable']:,}", _share(s["usable"], s["windows"]))
    con.print(fig)

    why = Table(title="Why not usable (each reason counted where it applies)", header_style="bold")
    why.add_column("reason")
    why.add_column("unit")
    why.add_column("count", justify="right")
    why.add_column("share", justify="right")
    why.add_column("primary", justify="right")
    for code, (key, label) in REASONS.items():
        n = s["reasons"][key]
        if code in WINDOW_REASONS:
            why.add_row(label, "windows", f"{n:,}", _share(n, s["windows"]), f"{s['primary_reasons'][key]:,}")
        else:
            why.add_row(label, "runs", f"{n:,}", _share(n, s["runs"]), "")
    con.print(why)

    dur = Table(title="Window duration (seconds)", header_style="bold")
    dur.add_column("windows")
    keys = ["p5", "p25", "p50", "p75", "p95", "mean", "min", "max"]
    for k in keys:
        dur.add_column(k, justify="right")
    for name, d in (("all with a beta", s["seconds"]), ("usable", s["usable_seconds"])):
        dur.add_row(name, *("-" if d[k] is None else f"{d[k]:.2f}" for k in keys))
    con.print(dur)
    con.print(f"[dim]loaded in {s['load_seconds']:.2f} s, computed in {s['compute_seconds']:.3f} s[/]")


def _share(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"
