"""The decision snapshot's file: the journal folded into per-candidate states (docs/ARCHITECTURE.md, "Store").

    decisions.snapshot.json    {"version": 2, "upto_seq", "written", "states": {"ids": [...],
                               "status": [...], ...one column per state field}, "opinions",
                               "undo": [the last undoable steps], "cursor",
                               "located": {"shards": [names], "ids", "shard" (an index into
                               shards), "offset"} (optional: where the line of a candidate
                               decided by a keypress is; older readers ignore it)}

The states are columns, not one object per candidate: they load far faster, and they are
loaded before the first card shows (docs/ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

import json
import time
from typing import Any

from engine.store.filters import STATUSES

STATE_FIELDS = ("status", "reason", "text", "reviewer", "t", "seq")


_STR = frozenset({str})
_OPT_STR = frozenset({str, type(None)})
_STATUS_SET = frozenset(STATUSES)


def columns_ok(ids: Any, cols: list) -> bool:
    """Whether every snapshot state passes the journal's `_state_ok`, checked a column at a time.

    A state at a time cost more than the rest of the open at tens of thousands of decisions;
    where this says no, the states are checked one by one, and the bad ones skipped and counted.
    """
    if not isinstance(ids, list) or not all(isinstance(c, list) for c in cols):
        return False
    status, reason, text, reviewer = cols[0], cols[1], cols[2], cols[3]
    return (
        set(map(type, ids)) <= _STR
        and set(map(type, status)) <= _STR
        and set(status) <= _STATUS_SET
        and set(map(type, reason)) <= _OPT_STR
        and set(map(type, text)) <= _OPT_STR
        and set(map(type, reviewer)) <= _OPT_STR
    )


def state_dicts(cols: list) -> list[dict]:
    return [
        {"status": a, "reason": b, "text": c, "reviewer": d, "t": e, "seq": f}
        for a, b, c, d, e, f in zip(*cols)
    ]  # fmt: skip


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


_PIECE = 4096  # list items per encode call: ~2 ms each, so a keypress beside a fold waits no longer


def dumps_list(items: list) -> bytes:
    """`dumps(items)`, the same bytes, encoded a few thousand items at a time: one encode call
    holds the interpreter throughout, and a fold runs beside the keypresses (journal.py)."""
    if len(items) <= _PIECE:
        return dumps(items)
    return b"[" + b",".join(dumps(items[i : i + _PIECE])[1:-1] for i in range(0, len(items), _PIECE)) + b"]"


def encode_snapshot(image: dict) -> bytes:
    """The snapshot file: the states as columns, which load far faster than one object per
    candidate (they are loaded before the first card shows), encoded a piece of a column at a
    time so that no single encode holds the interpreter for long while a screen draws beside it."""
    states = list(image["states"].values())
    parts = [b'{"version":2,"upto_seq":', dumps(image["seq"]), b',"written":', dumps(time.time())]
    parts += [b',"states":{"ids":', dumps_list(list(image["states"]))]
    for name in STATE_FIELDS:
        parts += [b',"' + name.encode() + b'":', dumps_list([st.get(name) for st in states])]
    parts += [b'},"opinions":', dumps(image["opinions"]), b',"undo":', dumps([s.to_json() for s in image["undo"]])]
    parts += [b',"cursor":', dumps(image["cursor"])]
    located = image.get("located")
    if located is not None:  # the shard names once, then an index per candidate: ~half the bytes
        merged = merge_locations(*located)
        ids, places = list(merged), list(merged.values())
        names = sorted({name for name, _ in places})
        at = {name: i for i, name in enumerate(names)}
        parts += [b',"located":{"shards":', dumps(names), b',"ids":', dumps_list(ids)]
        parts += [b',"shard":', dumps_list([at[name] for name, _ in places])]
        parts += [b',"offset":', dumps_list([off for _, off in places]), b"}"]
    parts.append(b"}")
    return b"".join(parts)


MAX_OFFSET = 1 << 62  # past any file here; a bigger number in a hand-edited place is no place


def located_columns(raw: Any) -> tuple[list, list, list, list] | None:
    """The snapshot's `located` columns (shard names; per candidate its id, shard index and
    line offset), or None when absent or not of those types (they are only hints: nothing is
    reported, nothing else is refused)."""
    if not isinstance(raw, dict):
        return None
    names, ids, shards, offsets = raw.get("shards"), raw.get("ids"), raw.get("shard"), raw.get("offset")
    if not (isinstance(names, list) and isinstance(ids, list) and isinstance(shards, list)):
        return None
    if not isinstance(offsets, list):
        return None
    if not (len(ids) == len(shards) == len(offsets)) or not set(map(type, names)) <= _STR:
        return None
    if not (set(map(type, ids)) <= _STR and set(map(type, shards)) <= {int} and set(map(type, offsets)) <= {int}):
        return None
    if shards and not (0 <= min(shards) and max(shards) < len(names)):
        return None
    if offsets and not (0 <= min(offsets) and max(offsets) < MAX_OFFSET):
        return None
    return names, ids, shards, offsets


def merge_locations(snap: tuple[list, list, list, list] | None, newer: dict) -> dict[str, tuple[str, int]]:
    """cid -> (shard name, offset): the snapshot's, then the newer ones over them."""
    out: dict[str, tuple[str, int]] = {}
    if snap is not None:
        names, ids, shards, offsets = snap
        out = dict(zip(ids, zip(map(names.__getitem__, shards), offsets)))
    out.update(newer)
    return out
