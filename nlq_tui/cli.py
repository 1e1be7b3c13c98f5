"""The `nlq-tui` command: with no subcommand it opens the app; subcommands run headless.

Subcommands live in `nlq_tui.commands.<name>`, each with `register(subparsers)` that adds its
parser and sets `func=<callable(args) -> int>`. A `UserError` anywhere prints one line on
stderr and exits 2; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from engine.errors import UserError
from engine.textsafe import one_line

SCREENS = ("data", "lab", "generate", "review", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlq-tui",
        description="Synthetic Ego4D NLQ data: generate, review, export, train. With no command, opens the app.",
    )
    parser.add_argument("--data", metavar="ROOT", help="Ego4D root (default: the workspace's, else sample_data/)")
    parser.add_argument("--workspace", metavar="WS", default=None, help="workspace folder (default ./nlq-workspace)")
    parser.add_argument("--screen", choices=SCREENS, default=None, help="screen to open on")
    parser.add_argument("--reviewer", default=None, help="reviewer name (default $USER)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import nlq_tui.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"nlq_tui.commands.{info.name}")
        module.register(sub)
    return parser


def run_app(args: argparse.Namespace) -> int:
    from nlq_tui.app import run  # Textual loads only when the app opens

    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None) or run_app
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return code
    except UserError as exc:
        print(f"nlq-tui: error: {one_line(exc, 2000)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nlq-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nlq-tui ... --json | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
