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

Start-up stays small for headless commands run in loops and scripts (docs/ARCHITECTURE.md,
"Scale"): `--version` reads the installed version only when asked, and a command line that
names a subcommand whose module is `nlq_tui.commands.<name>` builds only that subcommand's
parser (`command_parser`); anything else (help, completion, no command, an option it cannot
read past) builds the whole tree.
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole `nlq-tui` parser, or with `only` one subcommand module registered."""
    parser = argparse.ArgumentParser(
        prog="nlq-tui",
        description="Synthetic Ego4D NLQ data: generate, review, export, train. With no command, opens the app.",
        epilog="User config: $XDG_CONFIG_HOME/nlq-tui/config.toml (default ~/.config). Exit codes: 0 ok, "
        "1 bug, 2 user error, 3 generate left groups to do (run it again), 130 interrupted.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
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
    for name in [only] if only else _command_modules():
        module = importlib.import_module(f"nlq_tui.commands.{name}")
        module.register(sub)
    return parser


class _Version(argparse.Action):
    """`--version`, looked up only when given (importlib.metadata is slow to import)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(f"nlq-tui {version()}\n", sys.stdout)  # noqa: SLF001 - as argparse's own
        parser.exit()


def _command_modules() -> list[str]:
    import nlq_tui.commands as pkg

    return sorted(info.name for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_"))


# Top-level options and whether they take a value (build_parser's; keep the two in step).
_GLOBAL_OPTIONS = {"--data": True, "--workspace": True, "--screen": True, "--reviewer": True, "--second-opinion": False}


def command_parser(argv: list[str]) -> str | None:
    """The subcommand `argv` runs when only its own module is needed to parse it, else None.

    It reads past the top-level options (also abbreviated, or as --opt=value) to the first
    word; that word must name a module in nlq_tui.commands that is not `completion` (which
    describes the whole tree). Help, --version and anything unexpected give None."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            break
        name, eq, _value = word.partition("=")
        matches = [o for o in _GLOBAL_OPTIONS if o.startswith(name) and name.startswith("--")]
        if len(matches) != 1 or (eq and not _GLOBAL_OPTIONS[matches[0]]):
            return None
        i += 2 if _GLOBAL_OPTIONS[matches[0]] and not eq else 1
    if i >= len(argv) or argv[i] == "completion" or not argv[i].isidentifier():
        return None
    if importlib.util.find_spec(f"nlq_tui.commands.{argv[i]}") is None:
        return None
    return argv[i]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers by name."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def apply_user_config(parser: argparse.ArgumentParser, cfg) -> None:
    """The config's generate defaults as the generate parser's defaults (a flag still wins)."""
    defaults = {k: cfg.generate[k] for k in ("backend", "model") if cfg.generate.get(k)}
    if defaults.get("backend") not in (None, "template", "openai", "hf"):  # whatever the command
        from engine.errors import ConfigError

        raise ConfigError(f"{cfg.path}: generate.backend must be template, openai or hf")
    gen = subparsers(parser).get("generate")
    if gen is not None:
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

    try:
        from nlq_tui.config import load_user_config

        cfg = load_user_config()
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(command_parser(argv))
        apply_user_config(parser, cfg)
    except UserError as exc:
        print(f"nlq-tui: error: {_one_line(exc)}", file=sys.stderr)
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
        print(f"nlq-tui: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nlq-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nlq-tui ... --json | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _one_line(exc: Exception) -> str:
    from engine.textsafe import one_line  # only on the way out with an error

    return one_line(exc, 2000)


if __name__ == "__main__":
    sys.exit(main())
