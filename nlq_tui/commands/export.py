"""`nlq-tui export`: reviewed candidates to an NLQ-format JSON file plus a manifest."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write accepted (and edited) candidates as an NLQ-format JSON file with a manifest",
        description="Write the workspace's reviewed candidates in the official NLQ nesting "
        "(videos > clips > annotations > language_queries) that Ego4D's VSLNet tools read, and "
        "FILE.manifest.json beside it. Refuses candidates from NLQ val/test videos.",
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
    p.add_argument("--out", metavar="FILE", required=True, help="NLQ JSON file to write")
    p.add_argument(
        "--status",
        default="accepted,edited",
        help="statuses to export: a comma list (accepted, edited, pending, skipped, flagged, rejected) "
        "or 'all' = every valid candidate not rejected (default accepted,edited)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.export import export, parse_statuses
    from engine.workspace import Workspace

    statuses = parse_statuses(args.status)
    ws = Workspace(getattr(args, "workspace", None), create=False)
    result = export(ws, args.out, statuses=statuses, data_root=getattr(args, "data", None))
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"exported {result.exported} queries ({', '.join(result.statuses)}) to {result.file}")
        print(f"  manifest {result.manifest}")
        print(f"  sha256 {result.sha256}")
    return 0
