"""Damaged and hostile Ego4D files: each gives one line naming the file and the place, or a
counted warning and a skip; never a traceback, and the rest of the root still loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from ego4d_fixtures import EGO4D, NARRATION, NLQ, edit_json, video, write_tree

from engine import cache
from engine.ego4d import check, load_index, load_nlq
from engine.errors import DataError
from engine.features import load_features


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))


def _tree(tmp_path) -> Path:
    return write_tree(
        tmp_path / "d", videos=[video("video-0"), video("video-1", split="val"), video("video-2", split="test")]
    )


def _one_line_error(root: Path, *phrases: str) -> str:
    """load_index raises one DataError line with every phrase; check reports the same."""
    with pytest.raises(DataError) as exc:
        load_index(root, use_cache=False)
    msg = str(exc.value)
    assert "\n" not in msg and all(p in msg for p in phrases), msg
    report = check(root, use_cache=False)
    assert any(all(p in e.message for p in phrases) for e in report.errors), report.errors
    return msg


def _codes(issues) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in issues:
        out[i.code] = out.get(i.code, 0) + i.count
    return out


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# --------------------------------------------------------------------------- nesting


def test_deeply_nested_nlq_file_is_one_line_with_its_place(tmp_path):
    root = _tree(tmp_path)
    (root / NLQ["val"]).write_text('{"videos": ' + _deep(100_000) + "}")
    _one_line_error(root, "nlq_val.json", "nested more than", "line 1 column")


def test_deeply_nested_ego4d_json_is_one_line(tmp_path):
    root = _tree(tmp_path)
    (root / EGO4D).write_text('{"clips": [], "videos": ' + _deep(50_000) + "}")
    _one_line_error(root, "ego4d.json", "nested more than")


def test_deeply_nested_video_in_narration_json_names_the_video_before_it(tmp_path):
    root = _tree(tmp_path)
    text = (root / NARRATION).read_text()
    assert text.endswith("}")
    (root / NARRATION).write_text(text[:-1] + ', "deep": ' + _deep(100_000) + "}")
    _one_line_error(root, "narration.json", "nested more than", "after video 'video-2'")


# --------------------------------------------------------------------------- numbers


def test_a_time_like_ten_to_the_400_is_an_error_not_an_overflow(tmp_path):
    root = _tree(tmp_path)
    huge = "1" + "0" * 400
    text = (root / NARRATION).read_text().replace('"timestamp_sec": 3.0', f'"timestamp_sec": {huge}', 1)
    (root / NARRATION).write_text(text)
    _one_line_error(root, "narration.json", "timestamp_sec is a number too large")


def test_huge_clip_and_query_times_are_errors(tmp_path):
    root = _tree(tmp_path)
    huge = 10**400
    edit_json(root, EGO4D, lambda d: d["clips"][0].update(video_end_sec=huge))
    _one_line_error(root, "ego4d.json", "clips[0].video_end_sec is a number too large")
    root = _tree(tmp_path / "b")
    lq = "videos[0].clips[0].annotations[0].language_queries[0]"
    edit_json(
        root,
        NLQ["val"],
        lambda d: d["videos"][0]["clips"][0]["annotations"][0]["language_queries"][0].update(clip_start_sec=huge),
    )
    _one_line_error(root, "nlq_val.json", f"{lq}.clip_start_sec is a number too large")


def test_a_number_with_more_digits_than_python_reads_is_one_line(tmp_path):
    root = _tree(tmp_path)
    (root / NLQ["test"]).write_text('{"videos": [], "version": ' + "9" * 5000 + "}")
    _one_line_error(root, "nlq_test_unannotated.json", "unreadable number")
    root = _tree(tmp_path / "b")
    text = (root / NARRATION).read_text().replace('"timestamp_sec": 3.0', '"timestamp_sec": ' + "9" * 5000, 1)
    (root / NARRATION).write_text(text)
    _one_line_error(root, "narration.json", "unreadable number")


def test_training_counts_a_huge_query_time_as_a_bad_window(tmp_path):
    from engine.training.data import load_split

    root = write_tree(tmp_path / "d", videos=[video("video-0"), video("video-1")])
    edit_json(
        root,
        NLQ["train"],
        lambda d: d["videos"][0]["clips"][0]["annotations"][0]["language_queries"][0].update(clip_end_sec=10**400),
    )
    split = load_split(root / NLQ["train"], root / "v1/egovlp_fp16", keep_empty=False)
    assert split.skipped["bad_window"] == 1 and len(split) > 0


# --------------------------------------------------------------------------- booleans and nulls


def test_boolean_timestamps_are_errors_not_one_second(tmp_path):
    root = _tree(tmp_path)
    edit_json(root, NARRATION, lambda d: d["video-1"]["narration_pass_1"]["narrations"][2].update(timestamp_sec=True))
    _one_line_error(root, "narration.json", "video 'video-1'", "narrations[2].timestamp_sec is a boolean")
    root = _tree(tmp_path / "b")
    edit_json(root, EGO4D, lambda d: d["clips"][0].update(video_start_sec=False))
    _one_line_error(root, "ego4d.json", "clips[0].video_start_sec is a boolean")


def test_a_narration_saying_true_is_not_taken_for_a_boolean(tmp_path):
    root = _tree(tmp_path)
    edit_json(
        root,
        NARRATION,
        lambda d: d["video-0"]["narration_pass_1"]["narrations"][0].update(narration_text="#C C says true and false"),
    )
    index = load_index(root)
    assert index.passes[1].text[0] == "#C C says true and false"


def test_videos_null_is_said_not_silent(tmp_path):
    root = _tree(tmp_path)
    edit_json(root, EGO4D, lambda d: d.update(videos=None))
    index = load_index(root, use_cache=False)  # ego4d.json's clips are what matter: a warning
    (w,) = [i for i in index.issues if i.code == "videos_not_list"]
    assert "'videos' is null" in w.message and w.file == "ego4d.json"
    edit_json(root, NLQ["val"], lambda d: d.update(videos=None))
    _one_line_error(root, "nlq_val.json", "'videos' is null, expected a list")


# --------------------------------------------------------------------------- text and encodings


def test_lone_surrogates_are_replaced_and_counted(tmp_path):
    root = _tree(tmp_path)
    text = (root / NARRATION).read_text()
    text = text.replace('"video-0": {', '"video-0\\udc80": {', 1)
    text = text.replace('"narration_text": "#C C', '"narration_text": "#C C \\ud800 lone', 1)
    (root / NARRATION).write_text(text)
    edit_json(
        root, EGO4D, lambda d: [c.update(video_uid="video-0\udc80") for c in d["clips"] if c["video_uid"] == "video-0"]
    )
    raw = (root / NLQ["val"]).read_text().replace('"query": "', '"query": "\\udfff ', 1)
    (root / NLQ["val"]).write_text(raw)
    index = load_index(root, use_cache=False)
    assert "video-0\ufffd" in index.video_uids
    texts = [index.passes[1].text[i] for i in range(len(index.passes[1]))]
    assert any("\ufffd lone" in t for t in texts)
    for t in texts + index.video_uids + index.clip_uids:
        t.encode("utf-8")  # every string can be written and shown
    counts = _codes(index.issues)
    assert counts["lone_surrogates"] >= 3
    val = load_nlq(root / NLQ["val"])
    assert val.queries[0].query.startswith("\ufffd ")


def test_a_utf8_bom_is_a_warning_and_the_file_still_loads(tmp_path):
    root = _tree(tmp_path)
    for rel in (EGO4D, NARRATION, NLQ["val"]):
        (root / rel).write_bytes(b"\xef\xbb\xbf" + (root / rel).read_bytes())
    index = load_index(root, use_cache=False)
    boms = [i for i in index.issues if i.code == "utf8_bom"]
    assert {i.file for i in boms} == {EGO4D, NARRATION, NLQ["val"]}
    assert all("byte-order mark" in i.message for i in boms)
    assert index.n_videos == 3


@pytest.mark.parametrize(
    "encoding, found", [("utf-16", "UTF-16 (little-endian)"), ("utf-16-be", "UTF-16 (big-endian)")]
)
@pytest.mark.parametrize("rel", [EGO4D, NARRATION, NLQ["test"]])
def test_a_utf16_file_says_which_encoding_it_is(tmp_path, rel, encoding, found):
    root = _tree(tmp_path)
    text = (root / rel).read_text("utf-8")
    (root / rel).write_bytes(text.encode(encoding))
    _one_line_error(root, Path(rel).name, f"is {found} text, expected UTF-8")


# --------------------------------------------------------------------------- feature folders


def test_looping_and_dangling_feature_links_are_reported_and_the_root_loads(tmp_path):
    root = _tree(tmp_path)
    fdir = root / "v1/egovlp_fp16"
    (fdir / "video-1.pt").unlink()
    os.symlink(fdir / "nowhere.pt", fdir / "video-1.pt")  # dangling
    os.symlink(fdir / "loop-b.pt", fdir / "loop-a.pt")
    os.symlink(fdir / "loop-a.pt", fdir / "loop-b.pt")  # a loop
    index = load_index(root)
    assert index.has_features.tolist() == [True, False, True]
    (w,) = [i for i in index.issues if i.code == "broken_feature_files"]
    assert w.count == 3 and "loop-a.pt" in w.message and w.file == "v1/egovlp_fp16"
    again = load_index(root)  # warm: the folder is rescanned, the warning is not doubled
    assert [i.count for i in again.issues if i.code == "broken_feature_files"] == [3]
    report = check(root)
    assert report.ok and _codes(report.warnings)["broken_feature_files"] == 3


def test_the_data_screen_listing_survives_broken_links(tmp_path):
    from nlq_tui.screens.data import list_feature_folders

    root = _tree(tmp_path)
    fdir = root / "v1/egovlp_fp16"
    os.symlink(fdir / "x.pt", fdir / "x.pt")  # points at itself
    (folder,) = list_feature_folders(root)
    assert folder.name == "egovlp_fp16" and folder.files == 3 and folder.dim == 256


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda: torch.zeros(16, 256).to_sparse(), "sparse"),
        (lambda: torch.zeros(16, 256).to_sparse_csr(), "sparse"),
        (lambda: torch.empty(16, 256, device="meta"), "meta tensor"),
    ],
)
def test_sparse_and_meta_tensors_are_rejected_by_the_check_and_the_loader(tmp_path, make, phrase):
    root = _tree(tmp_path)
    path = root / "v1/egovlp_fp16/video-1.pt"
    try:
        torch.save(make(), path)
    except (RuntimeError, NotImplementedError):
        pytest.skip("this torch cannot save such a tensor")
    with pytest.raises(DataError, match=phrase) as exc:
        load_features(path)
    assert "video-1.pt" in str(exc.value) and "\n" not in str(exc.value)
    report = check(root)
    (err,) = report.errors
    assert err.code == "bad_feature_file" and "video-1.pt" in err.message and phrase in err.message


# --------------------------------------------------------------------------- the cache


def test_a_hand_edited_index_cache_is_rebuilt_with_a_warning(tmp_path):
    root = _tree(tmp_path)
    cold = load_index(root)
    d = cache.cache_dir(root)
    meta = json.loads((d / "index.json").read_text())
    meta["video_uids"][0] = "someone-else"
    meta["counts"]["videos"] = 99
    (d / "index.json").write_text(json.dumps(meta))
    rebuilt = load_index(root)
    assert rebuilt.video_uids == cold.video_uids and rebuilt.counts["videos"] == 3
    (w,) = [i for i in rebuilt.issues if i.code == "cache_rebuilt"]
    assert "checksum" in w.message and "index.json" in w.message
    warm = load_index(root)  # the rebuilt cache is good again: no warning
    assert not [i for i in warm.issues if i.code == "cache_rebuilt"]


@pytest.mark.parametrize("damage", ["truncate array", "not json", "swap array"])
def test_a_damaged_index_cache_is_rebuilt(tmp_path, damage):
    import numpy as np

    root = _tree(tmp_path)
    cold = load_index(root)
    d = cache.cache_dir(root)
    data = d / json.loads((d / "index.json").read_text())["data"]
    if damage == "truncate array":
        p = data / "p1.time.npy"
        p.write_bytes(p.read_bytes()[:-8])
    elif damage == "not json":
        (d / "index.json").write_text('{"key": ')
    else:  # same size, another shape: the arrays no longer fit together
        np.save(data / "clip_video.npy", np.zeros(len(cold.clip_uids) - 1, dtype=np.int32))
        pad = (data / "clip_video.npy").stat().st_size
        assert pad > 0
    rebuilt = load_index(root)
    assert rebuilt.video_uids == cold.video_uids
    np.testing.assert_array_equal(rebuilt.passes[1].time, cold.passes[1].time)
    if damage != "not json":
        assert [i for i in rebuilt.issues if i.code == "cache_rebuilt"]
