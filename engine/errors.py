"""Errors a user can cause, as one-line messages that name the file or setting and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, files or settings (not a bug).

    The message is one line: what is wrong, where (file, JSON path, video, setting), and what
    to do. The CLI prints it and exits 2; the TUI shows it in a notification or panel.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:  # always one line
        return " ".join(str(self.args[0]).split())


class DataError(UserError):
    """An Ego4D file or folder that cannot be used as it is."""


class WorkspaceError(UserError):
    """A workspace folder that cannot be read or written (locked, corrupt, missing)."""


class ConfigError(UserError):
    """A setting or command-line value that is out of range or inconsistent."""
