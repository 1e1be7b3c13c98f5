"""One module per headless subcommand; each defines `register(subparsers)`.

`nlq_tui.cli` discovers the modules here, so a new command is a new file. Keep module-level
imports cheap (argparse, engine.errors): heavy libraries load inside the command's function.
"""
