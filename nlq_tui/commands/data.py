"""`nlq-tui data check ROOT`: validate an Ego4D tree and print what is there and what is wrong."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.ego4d.layout import ANNOTATIONS, DEFAULT_FEATURES, EGO4D_JSON, FEATURES_SUBDIR


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="inspect and validate an Ego4D data root")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = sub.add_parser(
        "check",
        help="validate every file and count videos, clips, narrations, queries, features",
        description=f"Validate an Ego4D tree ({EGO4D_JSON}, {ANNOTATIONS}/*.json, a feature folder). "
        "Prints counts, warnings (real-data quirks, counted) and errors. Exits 2 when there are errors.",
    )
    c.add_argument("root", metavar="ROOT", help=f"Ego4D root: the folder with {EGO4D_JSON} and {FEATURES_SUBDIR}/")
    c.add_argument(
        "--features",
        default=DEFAULT_FEATURES,
        metavar="NAME",
        help=f"feature folder under ROOT/{FEATURES_SUBDIR} (default {DEFAULT_FEATURES})",
    )
    c.add_argument("--json", action="store_true", help="print one JSON object (counts, warnings, errors)")
    c.add_argument("--no-cache", action="store_true", help="ignore and do not write the index cache")
    c.set_defaults(func=run_check)


class _Progress:
    """Progress on stderr: one rewritten line on a terminal, a short line per stage otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.stage = None
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if self.tty:
            if stage == self.stage and now - self.last < 0.1 and done < total:
                return
            pct = f" {100 * done / total:5.1f}%" if total > 1 else ""
            self.stream.write(f"\r\x1b[2K{stage}{pct}  {now - self.start:5.1f}s")
            self.stream.flush()
        elif stage != self.stage:
            self.stream.write(f"nlq-tui: {stage}...\n")
            self.stream.flush()
        self.stage = stage
        self.last = now

    def done(self) -> None:
        if self.tty and self.stage is not None:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def run_check(args: argparse.Namespace) -> int:
    from engine.ego4d import check

    progress = _Progress()
    try:
        report = check(args.root, features=args.features, progress=progress, use_cache=not args.no_cache)
    finally:
        progress.done()
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        _print_report(report)
    return 2 if report.errors else 0


def _print_report(report) -> None:
    from engine.textsafe import one_line  # text from the data: controls shown, never sent raw

    c = report.counts
    out = sys.stdout
    print(f"Ego4D root: {one_line(report.root)}", file=out)
    if c:
        nar = c.get("narrations", {})
        q = c.get("queries", {})
        rows = [
            ("videos (indexed)", c.get("videos")),
            ("videos in ego4d.json", c.get("videos_in_ego4d_json")),
            ("narrated videos", c.get("narrated_videos")),
            ("clips", c.get("clips")),
            ("narrations pass 1", nar.get("pass_1")),
            ("narrations pass 2", nar.get("pass_2")),
            ("queries train", q.get("train")),
            ("queries val", q.get("val")),
            ("queries test", q.get("test")),
            ("val videos", c.get("val_videos")),
            ("test videos", c.get("test_videos")),
            ("videos excluded (val/test)", c.get("excluded_videos")),
            (f"videos with features ({one_line(report.feature_dir, 60)})", c.get("videos_with_features")),
            ("videos without features", c.get("videos_without_features")),
            ("feature coverage (narrated)", f"{100 * c['feature_coverage']:.1f}%" if "feature_coverage" in c else None),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            if v is not None:
                print(f"  {k:<{width}}  {v:>10}", file=out)
    if report.feature_dirs:
        print("Feature folders:", file=out)
        for d in report.feature_dirs:
            mark = "*" if d.get("selected") else " "
            dim = d["dim"] if d["dim"] is not None else "?"
            print(f" {mark} {one_line(d['name'], 60):<28} dim {dim!s:>5}  files {d['files']}", file=out)
    warnings, errors = report.warnings, report.errors
    if warnings:
        print(f"Warnings ({len(warnings)}):", file=out)
        for w in warnings:
            print(f"  {one_line(w.message)}", file=out)
    if errors:
        print(f"Errors ({len(errors)}):", file=out)
        for e in errors:
            print(f"  {one_line(e.message)}", file=out)
        print(f"nlq-tui: error: {one_line(errors[0].message)}", file=sys.stderr)
    else:
        print("OK: no errors.", file=out)
