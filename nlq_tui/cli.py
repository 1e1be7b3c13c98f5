"""The `nlq-tui` command: with no subcommand it opens the app; subcommands run headless.

Subcommands live in `nlq_tui.commands.<name>`, each with `register(subparsers)` that adds its
parser and sets `func=<callable(args) -> int>`. A `UserError` anywhere prints one line on
stderr and exits 2; tracebacks are for bugs.

Exit codes: 0 ok; 1 a bug (a traceback); 2 a user error (one line naming the file or setting);
3 `generate` left some groups to do, or its dry run's request failed (run it again); 130
interrupted (Ctrl-C); 141 the reader of stdout went away (`nlq-tui ... | head`).

The user config (nlq_tui/config.py) fills what the command line leaves open: the workspace
(after --workspace and $NLQ_WORKSPACE), and generate's backend, base URL and model.

Nothing here imports `engine` at module level: `main` first checks that the `engine` package
it would import is the one shipped beside `nlq_tui`, since another distribution's top-level
`engine` would otherwise fail somewhere deep with a confusing traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

SCREENS = ("data", "lab", "generate", "review", "train")


def version() -> str:
    """The installed distribution's version, else the package's own."""
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("nlq-tui")
    except (ImportError, PackageNotFoundError):
        from nlq_tui import __version__

        return __version__


def engine_problem() -> str | None:
    """None when `import engine` finds the package next to nlq_tui; else one line saying which
    one it finds instead."""
    ours = Path(__file__).resolve().parent.parent / "engine"
    try:
        spec = importlib.util.find_spec("engine")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return f"the 'engine' package is missing (expected {ours}); reinstall nlq-tui"
    found = Path(spec.origin).resolve().parent
    if found != ours:
        return (
            f"'import engine' finds {found}, not nlq-tui's own {ours}: another package named 'engine' "
            "shadows it; uninstall that one or use a separate virtual environment"
        )
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlq-tui",
        description="Synthetic Ego4D NLQ data: generate, review, export, train. With no command, opens the app.",
        epilog="User config: $XDG_CONFIG_HOME/nlq-tui/config.toml (default ~/.config). Exit codes: 0 ok, "
        "1 bug, 2 user error, 3 generate left groups to do (run it again), 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"nlq-tui {version()}")
    parser.add_argument("--data", metavar="ROOT", help="Ego4D root (default: the workspace's, else sample_data/)")
    parser.add_argument(
        "--workspace",
        metavar="WS",
        default=None,
        help="workspace folder (default $NLQ_WORKSPACE, else the user config's, else ./nlq-workspace)",
    )
    parser.add_argument("--screen", choices=SCREENS, default=None, help="screen to open on")
    parser.add_argument("--reviewer", default=None, help="reviewer name (default: the workspace's, config's, $USER)")
    parser.add_argument(
        "--second-opinion",
        action="store_true",
        help="Review: a blind, random sample of candidates another reviewer decided; the first decision stays "
        "hidden until you decide",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import nlq_tui.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"nlq_tui.commands.{info.name}")
        module.register(sub)
    return parser


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers by name."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def apply_user_config(parser: argparse.ArgumentParser, cfg) -> None:
    """The config's generate defaults as the generate parser's defaults (a flag still wins)."""
    gen = subparsers(parser).get("generate")
    if gen is None:
        return
    defaults = {k: cfg.generate[k] for k in ("backend", "model") if cfg.generate.get(k)}
    if defaults.get("backend") not in (None, "template", "openai", "hf"):
        from engine.errors import ConfigError

        raise ConfigError(f"{cfg.path}: generate.backend must be template, openai or hf")
    gen.set_defaults(**defaults)


def _finish_args(args: argparse.Namespace, cfg) -> None:
    from nlq_tui.config import resolve_workspace

    args.workspace = resolve_workspace(getattr(args, "workspace", None), cfg)
    # append-type flags cannot take a default (it would be appended to), so the base URL here
    if getattr(args, "command", None) == "generate" and not getattr(args, "base_urls", None):
        if cfg.generate.get("base_url"):
            args.base_urls = [cfg.generate["base_url"]]
    args.user_config = cfg


def run_app(args: argparse.Namespace) -> int:
    from nlq_tui.app import run  # Textual loads only when the app opens

    return run(args)


def main(argv: list[str] | None = None) -> int:
    problem = engine_problem()
    if problem:
        print(f"nlq-tui: error: {problem}", file=sys.stderr)
        return 2
    from engine.errors import UserError
    from engine.textsafe import one_line

    try:
        from nlq_tui.config import load_user_config

        cfg = load_user_config()
        parser = build_parser()
        apply_user_config(parser, cfg)
    except UserError as exc:
        print(f"nlq-tui: error: {one_line(exc, 2000)}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    _finish_args(args, cfg)
    args.parser = parser  # for `completion`, which describes the whole tree
    func = getattr(args, "func", None) or run_app
    try:
        from nlq_tui.commands import OPEN_APP

        code = func(args)
        code = int(run_app(args) if code is OPEN_APP else (code or 0))
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
