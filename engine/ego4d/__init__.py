"""Read and validate an Ego4D tree and build its `Index` (see engine/index.py).

The package, one job per module (docs/ARCHITECTURE.md, "The index"):

- `layout`: every path of the Ego4D layout, the default feature folder, rows per second, and
  the one feature-folder listing (with a torch-free shape peek);
- `problems`: warnings and one-line errors, and the small-file JSON reader;
- `stream`: the JSON stream reader for narration.json, tuned by a `ReadPolicy`;
- `narration`: narration.json, video by video, into compact arrays; `parallel`: the same with
  worker processes;
- `nlq`: the one NLQ walker, and `load_nlq`;
- `load`: `load_index` (the index, from the cache or built); `check`: the data check.

Every public name is importable from `engine.ego4d` itself.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

# Name -> submodule. Imported on first use (PEP 562), so that `from engine.ego4d import layout`
# (the CLI's help texts, the TUI at start-up) loads no numpy.
_EXPORTS = {
    "FEATURE_SAMPLE": "check",
    "CheckReport": "check",
    "ANNOTATIONS": "layout",
    "DEFAULT_FEATURES": "layout",
    "EGO4D_JSON": "layout",
    "KNOWN_DIMS": "layout",
    "NARRATION_JSON": "layout",
    "NLQ_FILES": "layout",
    "ROWS_PER_SECOND": "layout",
    "FeatureFolder": "layout",
    "list_feature_folders": "layout",
    "peek_feature_dim": "layout",
    "load_index": "load",
    "text_flags": "narration",
    "NLQClip": "nlq",
    "NLQQuery": "nlq",
    "NLQSplit": "nlq",
    "Walker": "nlq",
    "load_nlq": "nlq",
    "nlq_video_uids": "nlq",
    "Problems": "problems",
    "Progress": "stream",
    "ReadPolicy": "stream",
}
__all__ = sorted([*_EXPORTS, "check"])

if TYPE_CHECKING:
    from engine.ego4d.check import FEATURE_SAMPLE, CheckReport, check  # noqa: F401
    from engine.ego4d.layout import (  # noqa: F401
        ANNOTATIONS,
        DEFAULT_FEATURES,
        EGO4D_JSON,
        KNOWN_DIMS,
        NARRATION_JSON,
        NLQ_FILES,
        ROWS_PER_SECOND,
        FeatureFolder,
        list_feature_folders,
        peek_feature_dim,
    )
    from engine.ego4d.load import load_index  # noqa: F401
    from engine.ego4d.narration import text_flags  # noqa: F401
    from engine.ego4d.nlq import NLQClip, NLQQuery, NLQSplit, Walker, load_nlq, nlq_video_uids  # noqa: F401
    from engine.ego4d.problems import Problems  # noqa: F401
    from engine.ego4d.stream import Progress, ReadPolicy  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.ego4d' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.ego4d.{module}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """Keeps `engine.ego4d.check` the function when the `check` submodule is imported.

    The import system sets each submodule as an attribute of its package; the data check's
    module and its entry point share the name `check`, and callers mean the function.
    """

    @property
    def check(self):
        from engine.ego4d.check import check

        return check

    @check.setter
    def check(self, value) -> None:
        pass  # the submodule stays reachable as sys.modules["engine.ego4d.check"]


sys.modules[__name__].__class__ = _Package
