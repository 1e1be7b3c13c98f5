"""The index cache's warm read: the checksum taken from the file's own text, and its fallback."""

from __future__ import annotations

import json

from engine import cache
from engine.ego4d import load_index
from engine.sample import write_sample


def _cached_tree(tmp_path):
    root = tmp_path / "ego4d"
    write_sample(root, videos=4, features=False)
    cold = load_index(root)
    return root, cold, cache.cache_dir(root) / "index.json"


def _rebuilt(index) -> bool:
    return any(i.code == "cache_rebuilt" for i in index.issues)


def test_the_written_index_json_carries_its_checksum_first_and_is_checked_from_its_text(tmp_path):
    root, cold, path = _cached_tree(tmp_path)
    text = path.read_text()
    meta = json.loads(text)
    assert text.startswith('{"checksum": "') and cache._checksum_matches_text(meta, text)
    assert meta["checksum"] == cache._checksum(meta)  # the same checksum the full dump gives
    warm = load_index(root)
    assert not _rebuilt(warm) and warm.video_uids == cold.video_uids


def test_an_index_json_in_another_key_order_is_still_accepted_by_the_full_check(tmp_path):
    root, cold, path = _cached_tree(tmp_path)
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(dict(reversed(list(meta.items())))))  # as older versions wrote it
    assert not cache._checksum_matches_text(meta, path.read_text())
    warm = load_index(root)
    assert not _rebuilt(warm) and warm.clip_uids == cold.clip_uids


def test_an_edit_behind_a_valid_looking_head_is_caught(tmp_path):
    root, cold, path = _cached_tree(tmp_path)
    text = path.read_text()
    edited = text.replace(json.dumps(cold.video_uids[0]), json.dumps("someone-else"), 1)
    assert edited != text and edited.startswith('{"checksum": "')
    path.write_text(edited)
    assert not cache._checksum_matches_text(json.loads(edited), edited)
    rebuilt = load_index(root)
    assert _rebuilt(rebuilt) and rebuilt.video_uids == cold.video_uids
