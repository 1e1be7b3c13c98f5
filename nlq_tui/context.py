"""Shared state of the app, reached by every screen as `self.app.ctx`.

The context owns the workspace, the chosen data root and feature folder, and the loaded
engine `Index`. Loading is blocking (`load_index`); the app runs it in a thread worker and
then posts `IndexChanged` to the screens. A failed load leaves the previous good state as it
was: the root and features of the last good load stay current, and nothing is saved.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from engine.ego4d import layout
from engine.errors import DataError
from engine.workspace import Workspace

if TYPE_CHECKING:  # numpy-backed engine modules load with the first index
    from engine.index import Index

DEFAULT_FEATURES = layout.DEFAULT_FEATURES

Progress = Callable[[str, int, int], None]


def sample_data_root() -> Path | None:
    """The repository's `sample_data/` next to the package, when this is a checkout."""
    candidate = Path(__file__).resolve().parent.parent / "sample_data"
    return candidate if layout.is_root(candidate) else None


def train_counts(index: Index) -> tuple[dict, list]:
    """The index's counts with the official train split's (nlq_train.json is not part of the
    index), and any problem with that file as an Issue."""
    from engine.ego4d import NLQ_FILES, load_nlq
    from engine.errors import UserError
    from engine.index import Issue

    counts = dict(index.counts)
    rel = NLQ_FILES["train"]
    try:
        split = load_nlq(Path(index.root) / rel, annotated=True, rel=rel)
    except UserError as exc:
        return counts, [Issue("error", "bad_train_file", rel, str(exc))]
    if split is None:
        return counts, []
    counts["queries"] = {"train": len(split.queries), **dict(counts.get("queries") or {})}
    counts["train_videos"] = len(set(split.video_uids))
    return counts, list(split.issues)


class IndexChanged(Message):
    """The index was (re)loaded, or a load failed (then `error` is set and `index` is the old one)."""

    def __init__(self, index: Index | None, error: str | None = None) -> None:
        super().__init__()
        self.index = index
        self.error = error


class LoadProgress(Message):
    """A step of an index load: `stage` name, `done` of `total` (total 0: unknown)."""

    def __init__(self, stage: str, done: int, total: int) -> None:
        super().__init__()
        self.stage = stage
        self.done = done
        self.total = total


class AppContext:
    """What every screen shares: workspace, data root, features, reviewer and the index."""

    def __init__(
        self,
        workspace: Workspace,
        data_root: Path | None,
        features: str,
        reviewer: str,
    ) -> None:
        self.workspace = workspace
        self.data_root = data_root
        self.features = features
        self.reviewer = reviewer
        self.index: Index | None = None
        self.counts: dict = {}  # the index's counts plus the official train split's
        self.extra_issues: list = []  # problems found outside the index (nlq_train.json)
        self.load_error: str | None = None
        self.user_config = None  # nlq_tui.config.UserConfig, when built from the command line
        self.second_opinion = False  # Review: a blind second opinion on others' decisions
        self._lock = threading.Lock()

    @classmethod
    def from_args(cls, args) -> AppContext:
        """Resolve the settings: command line first, then the workspace, then the user config
        (nlq_tui/config.py), then defaults."""
        from nlq_tui.config import load_user_config, resolve_workspace

        cfg = getattr(args, "user_config", None) or load_user_config()
        ws = Workspace(resolve_workspace(getattr(args, "workspace", None), cfg))
        data = getattr(args, "data", None)
        if data:
            root: Path | None = Path(data).expanduser().resolve()
        elif ws.get("data_root"):
            root = Path(ws.get("data_root"))
        else:
            root = sample_data_root()
        features = ws.get("features") or DEFAULT_FEATURES
        reviewer = (
            getattr(args, "reviewer", None)
            or ws.get("reviewer")
            or cfg.reviewer
            or os.environ.get("USER")
            or os.environ.get("USERNAME")
            or "reviewer"
        )
        ctx = cls(ws, root, features, reviewer)
        ctx.user_config = cfg
        ctx.second_opinion = bool(getattr(args, "second_opinion", False))
        return ctx

    def load_index(
        self,
        root: Path | None = None,
        features: str | None = None,
        progress: Progress | None = None,
    ) -> Index:
        """Load (or reload) the index of `root` with `features`; blocking, call from a worker.

        On success the root and features become current and are saved to the workspace.
        On failure a `DataError` propagates and the previous index, root and features stay.
        """
        from engine import ego4d
        from engine.run_config import secret_env_names

        root = Path(root).expanduser() if root is not None else self.data_root
        features = features or self.features
        if root is None:
            raise DataError("no data root chosen; type the path of an Ego4D folder on the Data screen")
        root = root.resolve()
        with self._lock:
            # a cold open of a big tree runs in a helper process: no LLM key in its environment
            secrets = secret_env_names(self.workspace)
            index = ego4d.load_index(root, features=features, progress=progress, secret_names=secrets)
            counts, extra_issues = train_counts(index)
            self.index = index
            self.counts = counts
            self.extra_issues = extra_issues
            self.data_root = root
            self.features = features
            self.load_error = None
            self.workspace.set("data_root", str(root))
            self.workspace.set("features", features)
        return index
