"""The nlq-tui Textual app and command line. Rendering and input only; the work is in `engine`."""

__version__ = "0.1.0"
