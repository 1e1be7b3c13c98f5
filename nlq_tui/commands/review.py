"""`nlq-tui review`: open the app on the Review screen; `--status [--json]` prints the review
progress of the workspace headless (for a script or a glance over SSH) and changes nothing."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("review", help="open the Review screen; --status prints the review progress")
    p.add_argument("--status", action="store_true", help="print how many candidates are reviewed, and exit")
    p.add_argument("--json", action="store_true", help="with --status: one JSON object on stdout")
    p.add_argument(
        "--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder (default ./nlq-workspace)"
    )
    p.set_defaults(func=run)


def status(workspace: str | None) -> dict:
    """Reviewed, total and the count per status, from the workspace's store (read only)."""
    from engine.store import CandidateStore
    from engine.workspace import Workspace

    ws = Workspace(workspace, create=False)
    store = CandidateStore(ws)
    try:
        p = store.progress()
        problems = list(store.problems)
    finally:
        store.close()
    total = int(p["total"])
    return {
        "workspace": str(ws.path),
        "reviewed": int(p["reviewed"]),
        "total": total,
        "open": total - int(p["reviewed"]),
        "counts": dict(p["counts"]),
        "problems": len(problems),
    }


def _line(s: dict) -> str:
    from engine.textsafe import visible

    share = f" ({s['reviewed'] / s['total']:.0%})" if s["total"] else ""
    counts = ", ".join(f"{k} {v:,}" for k, v in s["counts"].items() if v)
    text = f"{visible(s['workspace'])}: reviewed {s['reviewed']:,} of {s['total']:,}{share}"
    text += f"; {counts}" if counts else "; no candidates yet (run `nlq-tui generate`)"
    if s["problems"]:
        text += f"; {s['problems']:,} unreadable stored lines skipped"
    return text


def run(args):
    if not args.status:
        if args.json:
            from engine.errors import ConfigError

            raise ConfigError("--json goes with --status (the app has no JSON output)")
        from nlq_tui.commands import OPEN_APP

        args.screen = "review"
        return OPEN_APP
    s = status(getattr(args, "workspace", None))
    print(json.dumps(s, ensure_ascii=True) if args.json else _line(s))
    return 0
