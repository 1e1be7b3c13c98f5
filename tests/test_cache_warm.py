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


def _summary(index, **kw):
    from engine.windows import WindowParams, compute

    res = compute(index, WindowParams(**kw))
    s = res.summary()
    s.pop("compute_seconds")
    return s, res.reason_bits.tolist(), res.group_clip.tolist(), [repr(b) for b in res.beta_video.tolist()]


def test_the_cache_keeps_each_pass_geometry_and_a_warm_open_computes_the_same_from_it(tmp_path):
    import numpy as np

    from engine.windows_prep import clip_rows, video_beta

    root = tmp_path / "ego4d"
    write_sample(root, videos=6, features=False)
    for pt in sorted((root / "v1" / "egovlp_fp16").glob("*.pt"))[:2]:
        pt.unlink()  # some videos unused: the cached geometry covers every video regardless
    cold = load_index(root, use_cache=False)
    warm = load_index(root)  # builds the cache
    warm = load_index(root)
    assert not _rebuilt(warm)
    for p in (1, 2):
        arr = warm.passes[p]
        assert arr.video_beta is not None and arr.clip_rows is not None
        every = np.ones(warm.n_videos, dtype=bool)
        T, voff = np.asarray(arr.time), np.asarray(arr.video_offsets)
        np.testing.assert_array_equal(arr.video_beta, video_beta(T, voff))
        np.testing.assert_array_equal(arr.clip_rows, clip_rows(warm, T, voff, every))
    for kw in ({}, {"k": 2, "narration_pass": 2}, {"k": 3, "narration_pass": "both"}):
        assert _summary(warm, **kw) == _summary(cold, **kw)


def test_a_cache_written_before_the_geometry_was_kept_still_opens_and_computes_it(tmp_path):
    root, cold, path = _cached_tree(tmp_path)
    meta = json.loads(path.read_text())
    data = path.parent / meta["data"]
    for p in (1, 2):
        for name in (f"p{p}.video_beta.npy", f"p{p}.clip_rows.npy"):
            (data / name).unlink()
            del meta["sizes"][name]
    meta.pop("checksum")
    meta["checksum"] = cache._checksum(meta)
    path.write_text(json.dumps(meta))
    warm = load_index(root)
    assert not _rebuilt(warm) and warm.passes[1].video_beta is None
    assert _summary(warm) == _summary(load_index(root, use_cache=False))
    assert warm.passes[1].video_beta is not None  # computed on first use


def test_geometry_that_does_not_fit_the_index_is_damage(tmp_path):
    import numpy as np

    root, cold, path = _cached_tree(tmp_path)
    meta = json.loads(path.read_text())
    target = path.parent / meta["data"] / "p1.clip_rows.npy"
    rows = np.load(target)
    rows[1, 0] = len(cold.passes[1]) + 5  # past the last row, same size on disk
    np.save(target, rows)
    rebuilt = load_index(root)
    assert _rebuilt(rebuilt)
    assert _summary(rebuilt) == _summary(load_index(root, use_cache=False))


def test_a_source_changed_while_the_index_is_built_leaves_a_stale_cache(tmp_path, monkeypatch):
    """The cache names the sources as they were when the build began: an NLQ file rewritten
    while narration.json was being read is read again next time, not taken from the cache."""
    from engine.ego4d import load
    from engine.ego4d.layout import NLQ_FILES

    root = tmp_path / "ego4d"
    write_sample(root, videos=4, features=False)
    real = load.build

    def build(*a, **kw):
        index = real(*a, **kw)
        val = root / NLQ_FILES["val"]
        val.write_text(val.read_text() + " ")  # an edit that lands during the build
        return index

    monkeypatch.setattr(load, "build", build)
    load_index(root)
    assert cache.load(root) is None  # stale: the next open builds again
    monkeypatch.setattr(load, "build", real)
    load_index(root)
    assert cache.load(root) is not None
