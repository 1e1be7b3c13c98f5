"""`nlq-tui variants`: the workspace's generation variants side by side, and `--delete NAME`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "variants",
        help="list generation variants: groups, validation, review outcomes, accept rate, agreement",
        description="One row per variant (backend, model, prompt version and the parameters that change "
        "the output): groups done and failed, questions kept, generation rejects and flags, review "
        "outcomes, the accept rate with its 95%% Wilson interval over reviewed candidates, and two "
        "reviewers' agreement (raw and Cohen's kappa). Reads the workspace and creates nothing in it but "
        "candidates/variants.summary.json and variants.table.json, caches of these figures that each run brings "
        "up to date.",
    )
    p.add_argument("--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per variant")
    p.add_argument("--delete", metavar="NAME", help="remove this variant's candidates and their decisions")
    p.add_argument("--yes", action="store_true", help="with --delete: do not ask")
    p.set_defaults(func=run)


def _rate(row: dict) -> str:
    if row["accept_rate"] is None:
        return "-"
    lo, hi = row["accept_rate_ci95"]
    return f"{row['accept_rate'] * 100:.0f}% [{lo * 100:.0f}-{hi * 100:.0f}]"


def _kappa(row: dict) -> str:
    ag = row["agreement"]
    if not ag["doubly_reviewed"]:
        return "-"
    k = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
    return f"{k} (n={ag['doubly_reviewed']})"


def print_table(rows: list[dict]) -> None:
    from engine.textsafe import one_line

    head = (
        f"{'VARIANT':<28} {'BACKEND/MODEL':<26} {'PROMPT':<6} {'DONE':>5} {'FAIL':>4} {'VALID':>6} "
        f"{'REJ':>4} {'FLAG':>5} {'ACC':>5} {'EDIT':>4} {'REJ-R':>5} {'PEND':>6} {'ACCEPT RATE':>14} {'KAPPA':>12}"
    )
    print(head)
    for r in rows:
        model = one_line(f"{r['backend']}/{r['model']}", 26)
        print(
            f"{one_line(r['name'], 28):<28} {model:<26} {one_line(r['prompt_version'], 6):<6} {r['groups_done']:>5} "
            f"{r['groups_failed']:>4} {r['questions_valid']:>6} {sum(r['rejected'].values()):>4} "
            f"{sum(r['flagged'].values()):>5} {r['accepted']:>5} {r['edited']:>4} "
            f"{sum(r['rejected_in_review'].values()):>5} {r['pending']:>6} {_rate(r):>14} {_kappa(r):>12}"
        )


def run(args: argparse.Namespace) -> int:
    from engine.variant_cache import cached_table

    # The rows as last computed, when no store file changed since: the store is not even imported
    # (nor the workspace module, when the workspace is named: the path resolved as it resolves it).
    named = getattr(args, "workspace", None)
    if named and not args.delete:
        where = Path(named).expanduser().resolve()
        hit = cached_table(where / "candidates") if where.is_dir() else None
        if hit is not None:
            _print(args, where, hit[0], hit[1])
            return 0
    from engine.workspace import Workspace

    ws = Workspace.existing(named)  # a read-only command creates nothing
    hit = None if args.delete else cached_table(ws.candidates_dir)
    if hit is not None:
        _print(args, ws.path, hit[0], hit[1])
        return 0
    return _run_store(args, ws)


def _run_store(args: argparse.Namespace, ws) -> int:
    from engine.errors import ConfigError
    from engine.store import CandidateStore
    from engine.textsafe import one_line
    from engine.variants import delete_variant, variant_table

    store = CandidateStore(ws, reviewer=getattr(args, "reviewer", None))
    try:
        if args.delete:
            if not args.yes:
                if not sys.stdin.isatty():
                    raise ConfigError(f"--delete {args.delete}: add --yes to delete without asking")
                answer = input(f"delete variant {one_line(args.delete, 80)} and its decisions? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing deleted")
                    return 0
            n = delete_variant(store, args.delete)
            if args.json:
                print(json.dumps({"deleted": args.delete, "candidates": n}))
            else:
                print(f"deleted variant {one_line(args.delete, 80)}: {n} candidates and their decisions")
            return 0
        rows = variant_table(store)
    finally:
        store.close()
    _print(args, ws.path, rows, store.problems)
    return 0


def _print(args: argparse.Namespace, where: Path, rows: list[dict], problems: list[str]) -> None:
    from engine.textsafe import one_line

    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print(one_line(f"no variants in {where}; generate some with `nlq-tui generate --name NAME`", None))
    else:
        print_table(rows)
    for problem in problems[:3]:
        print(f"warning: {one_line(problem, 300)}", file=sys.stderr)
