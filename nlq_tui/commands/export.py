"""`nlq-tui export`: reviewed candidates to an NLQ-format JSON file (or a flat table) plus a manifest and a data card."""

from __future__ import annotations

import argparse
import json
import shlex
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write accepted (and edited) candidates as an NLQ-format JSON file with a manifest",
        description="Write the workspace's reviewed candidates in the official NLQ nesting "
        "(videos > clips > annotations > language_queries) that Ego4D's VSLNet tools read, and "
        "FILE.manifest.json and a data card FILE.README.md beside it. Refuses candidates from NLQ "
        "val/test videos. --format jsonl|parquet writes one row per candidate instead.",
    )
    # SUPPRESS: given here or before the command, either works (argparse would otherwise
    # overwrite the top-level value with this parser's default).
    p.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument(
        "--data",
        metavar="ROOT",
        default=argparse.SUPPRESS,
        help="Ego4D root whose nlq_val/nlq_test files list the held-out videos (default: the workspace's)",
    )
    p.add_argument(
        "--out", metavar="FILE", help="file to write (default: exports/nlq_aug_<date>_<time>.json in the workspace)"
    )
    p.add_argument(
        "--status",
        default="accepted,edited",
        help="statuses to export: a comma list (accepted, edited, pending, skipped, flagged, rejected) "
        "or 'all' = every valid candidate not rejected (default accepted,edited)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME",
        help="only this variant's candidates (repeatable; `nlq-tui variants` lists them)",
    )
    p.add_argument(
        "--reviewer",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="take this reviewer's decisions where they made one (default: the first reviewer's)",
    )
    p.add_argument(
        "--format",
        choices=("nlq", "jsonl", "parquet"),
        default="nlq",
        help="nlq: the official nesting (default); jsonl/parquet: one row per candidate (parquet needs pyarrow)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.export import default_out, export, parse_statuses
    from engine.textsafe import visible
    from engine.workspace import Workspace

    statuses = parse_statuses(args.status)
    ws = Workspace.existing(getattr(args, "workspace", None))
    result = export(
        ws,
        args.out if args.out else default_out(ws, args.format),
        statuses=statuses,
        data_root=getattr(args, "data", None),
        variants=frozenset(args.variant),
        reviewer=getattr(args, "reviewer", None),
        fmt=args.format,
        command=shlex.join(["nlq-tui", *sys.argv[1:]]),
    )
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"exported {result.how_many()} ({', '.join(result.statuses)}) to {visible(result.file)}")
        print(f"  manifest {visible(result.manifest)}")
        if result.card is not None:
            print(f"  data card {visible(result.card)}")
        print(f"  sha256 {result.sha256}")
    return 0
