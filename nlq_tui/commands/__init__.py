"""One module per headless subcommand; each defines `register(subparsers)`.

`nlq_tui.cli` discovers the modules here, so a new command is a new file. Keep module-level
imports cheap (argparse, engine.errors): heavy libraries load inside the command's function.
"""

# What a command returns to have `nlq-tui` open the app with its arguments (e.g. `nlq-tui review`):
# commands stay headless and never import the app themselves.
OPEN_APP = object()
