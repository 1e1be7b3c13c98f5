"""The Ego4D data layer: quirks are counted warnings, everything else one DataError line."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from ego4d_fixtures import (  # noqa: F401 - parallel: a fixture
    EGO4D,
    NARRATION,
    NLQ,
    QUIRKS,
    build_index,
    edit_json,
    parallel,
    quirky_tree,
    video,
    write_tree,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import cache
from engine.ego4d import ReadPolicy, check, load_index, load_nlq, text_flags
from engine.ego4d.layout import list_feature_folders
from engine.errors import DataError
from engine.features import load_features
from engine.index import TextColumn, flags_of


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))


def _warnings(report) -> dict[str, int]:
    out: dict[str, int] = {}
    for w in report.warnings:
        out[w.code] = out.get(w.code, 0) + w.count
    return out


# --------------------------------------------------------------------------- quirks


def test_every_real_data_quirk_is_a_counted_warning_not_an_error(tmp_path):
    root = quirky_tree(tmp_path / "d")
    report = check(root)
    assert report.errors == []
    got = _warnings(report)
    for code, file in QUIRKS:
        assert any(w.code == code and w.file == file and w.count == 1 for w in report.warnings), (code, file)
    assert got["duplicate_timestamps"] == 1
    assert got["unsorted_timestamps"] == 1
    assert got["template_null"] == 1 and got["query_missing"] == 1
    assert got["zero_length_answer"] == 1 and got["curly_quotes"] == 2  # a query and a narration
    assert got["video_without_clips"] == 1 and got["only_pass_2"] == 1
    c = report.counts
    assert c["narrations"] == {"pass_1": 15, "pass_2": 2}
    assert c["queries"] == {"train": 7, "val": 1, "test": 0}
    assert c["val_videos"] == 1 and c["excluded_videos"] == 1
    assert c["videos_with_features"] == 4 and c["feature_coverage"] == 1.0


def test_unsorted_and_duplicate_timestamps_are_stably_sorted(tmp_path):
    root = quirky_tree(tmp_path / "d")
    index = load_index(root)
    p1 = index.passes[1]
    rows = p1.rows(index.video_number("q-main"))
    assert p1.time[rows].tolist() == [1.0, 3.0, 3.0, 5.0, 7.0]
    # The two narrations at 3.0 keep their file order (#O first, then "drinks").
    assert [p1.text[i] for i in range(rows.start, rows.stop)][1:3] == ["#O man X waves", "#C C drinks"]
    assert p1.flags[rows.start] & 1 and p1.flags[rows.start + 1] & 2


def test_streaming_loader_builds_the_same_index_as_the_plain_builder(tmp_path):
    root = quirky_tree(tmp_path / "d")
    edit_json(
        root,
        NARRATION,
        lambda d: d["q-main"]["narration_pass_1"]["narrations"][2].update(narration_text="#C C café’s door"),
    )
    fast, plain = load_index(root, use_cache=False), _plain(root)
    _assert_same(fast, plain)
    assert fast.clip_uids == plain.clip_uids
    for name in ("clip_video", "clip_start", "clip_end", "clip_order", "clip_offsets", "excluded", "has_features"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name), err_msg=name)


def _plain(root: Path):
    """The same tree through json.load and the plain builder of engine.index."""
    ego = json.loads((root / EGO4D).read_text())
    narr = json.loads((root / NARRATION).read_text())
    excluded = {v["video_uid"] for f in (NLQ["val"], NLQ["test"]) for v in json.loads((root / f).read_text())["videos"]}
    feats = {p.stem for p in (root / "v1/egovlp_fp16").glob("*.pt")}
    return build_index(root, "egovlp_fp16", ego, narr, excluded, feats)


def _assert_same(fast, plain):
    assert fast.video_uids == plain.video_uids
    for p in (1, 2):
        a, b = fast.passes[p], plain.passes[p]
        for name in ("video_offsets", "time", "flags"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{p}.{name}")
        assert [a.text[i] for i in range(len(a))] == [b.text[i] for i in range(len(b))]
        assert [a.uid[i] for i in range(len(a))] == [b.uid[i] for i in range(len(b))]


def test_reading_in_tiny_chunks_gives_the_same_index(tmp_path):
    root = quirky_tree(tmp_path / "d")
    edit_json(
        root,
        NARRATION,
        lambda d: d["q-main"]["narration_pass_1"]["narrations"][1].update(
            narration_text="#C C holds the caf\u00e9\u2019s cup \U0001f600"
        ),
    )
    text = (root / NARRATION).read_text()
    (root / NARRATION).write_text(text.replace(", ", " ,\n  "))  # whitespace and newlines everywhere
    _assert_same(load_index(root, use_cache=False, policy=ReadPolicy(chunk=7, decoder="stdlib")), _plain(root))


@pytest.mark.parametrize("style", ["raw", "escaped", "mixed"])
def test_non_ascii_text_reads_the_same_raw_escaped_or_mixed(tmp_path, style):
    texts = ["#C C opens the fridge\u2019s door", "#C C caf\u00e9 \U0001f600 \u4e2d", "#C C plain"]
    narration = {
        "v\u00e9": {
            "narration_pass_1": {
                "narrations": [
                    {"timestamp_sec": float(i), "narration_text": t, "annotation_uid": f"u{i}\u00df"}
                    for i, t in enumerate(texts)
                ]
            }
        }
    }
    if style == "mixed":
        narration["v\u00e9"]["narration_pass_1"]["narrations"][2]["narration_text"] = "ctl\x01here \u00e9"
    root = write_tree(tmp_path / "d", videos=[video("other")], features="empty")
    text = json.dumps(narration, ensure_ascii=style == "escaped")
    assert ("\\u" in text) == (style != "raw") and text.isascii() == (style == "escaped")
    (root / NARRATION).write_text(text, "utf-8")
    index = load_index(root, use_cache=False)
    p1 = index.passes[1]
    got = [p1.text[i] for i in range(len(p1))]
    want = [n["narration_text"] for n in narration["v\u00e9"]["narration_pass_1"]["narrations"]]
    assert index.video_uids[0] == "v\u00e9" and got == want
    assert [p1.uid[i] for i in range(len(p1))] == ["u0\u00df", "u1\u00df", "u2\u00df"]


def test_a_video_uid_twice_keeps_the_last_like_json_load(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b"), video("c", pass1=[(1.0, "#C C only")])])
    text = (root / NARRATION).read_text()
    c_value = json.dumps(json.loads(text)["c"])
    (root / NARRATION).write_text(text[:-1] + ', "a": ' + c_value + "}")
    report = check(root, use_cache=False)
    assert _warnings(report)["duplicate_video"] == 1 and not report.errors
    index = load_index(root)
    _assert_same(index, _plain(root))
    assert [index.passes[1].text[i] for i in range(len(index.passes[1]))][:1] == ["#C C only"]


def test_unknown_narration_field_is_counted_when_files_lack_the_optional_unmapped_timestamp(tmp_path):
    # 4 known keys per narration, then one narration with a 5th, unknown one: as many keys as the
    # schema knows, so a "more keys than the schema" test alone would miss it.
    def edit(d):
        narrs = d["video-0"]["narration_pass_1"]["narrations"]
        for x in narrs:
            x.pop("_unmapped_timestamp_sec")
        narrs[3]["_extra_note"] = "checked twice"
        for x in d["video-1"]["narration_pass_1"]["narrations"]:
            x.pop("_unmapped_timestamp_sec")

    root = _tree(tmp_path)
    edit_json(root, NARRATION, edit)
    report = check(root)
    assert not report.errors
    (w,) = [w for w in report.warnings if w.code == "unknown_field"]
    assert w.file == NARRATION and w.count == 1 and "_extra_note" in w.message and "video-0" in w.message


def test_narration_without_text_is_kept_as_empty_text_with_a_warning(tmp_path):
    root = _tree(tmp_path)
    edit_json(root, NARRATION, lambda d: d["video-0"]["narration_pass_1"]["narrations"][2].pop("narration_text"))
    report = check(root)
    assert _warnings(report)["narration_without_text"] == 1 and not report.errors
    index = load_index(root)
    assert index.passes[1].text[2] == ""


@pytest.mark.parametrize(
    "text, phrase",
    [
        (b'{"a": {"narration_pass_1": {"narrations": []}}} {"b": 1}', "extra data after the top-level object"),
        (
            b'{"a": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1.0, "narration_text": "caf\xe9"}]}}}',
            "not UTF-8",
        ),
        (b'{"a": {"narration_pass_1": {"narrations": []}},\n "b" {}}', "line 2 column 6"),
        (b'{"a": {"narration_pass_1": {"narrations": []}}, "b": [1]}', "video 'b' is a list"),
        (b'{"a": {"narration_pass_1": {"narrations": [[1.0, "text"]]}}}', "narrations[0] is a list"),
        (
            b'{"a": {"narration_pass_1": {"narrations": [{"narration_text": "x"}]}}}',
            "narrations[0] has no timestamp_sec",
        ),
        (
            b'{"a": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1.0, "narration_text": 5}]}}}',
            "narration_text is a number",
        ),
    ],
)
def test_malformed_narration_json_is_one_line_naming_the_video_or_position(tmp_path, text, phrase):
    root = _tree(tmp_path)
    (root / NARRATION).write_bytes(text)
    with pytest.raises(DataError) as exc:
        load_index(root)
    assert "narration.json" in str(exc.value) and phrase in str(exc.value), str(exc.value)


_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_narrations = st.lists(st.tuples(st.sampled_from([0.0, 1.0, 1.5, 2.0, 7.25, 1e-3]), _texts), max_size=6)


def _write_streaming_tree(root: Path, videos: dict, indent, ensure_ascii: bool) -> dict:
    """A minimal tree whose narration.json holds `videos` ({uid: (pass1, pass2 or None)}); returns it."""
    narration = {}
    for uid, (p1, p2) in videos.items():
        entry = {
            "narration_pass_1": {
                "narrations": [
                    {"timestamp_sec": t, "narration_text": x, "annotation_uid": f"{uid}-{i}"}
                    for i, (t, x) in enumerate(p1)
                ]
            }
        }
        if p2 is not None:
            entry["narration_pass_2"] = {"narrations": [{"timestamp_sec": t, "narration_text": x} for t, x in p2]}
        narration[uid] = entry
    (root / NARRATION).parent.mkdir(parents=True)
    (root / NARRATION).write_text(json.dumps(narration, indent=indent, ensure_ascii=ensure_ascii), "utf-8")
    (root / EGO4D).write_text(
        json.dumps(
            {
                "videos": [],
                "clips": [{"clip_uid": "c", "video_uid": u, "video_start_sec": 0, "video_end_sec": 9} for u in videos],
            }
        )
    )
    for f in (NLQ["val"], NLQ["test"]):
        (root / f).write_text('{"videos": []}')
    (root / "v1/egovlp_fp16").mkdir()
    return narration


@settings(max_examples=25, deadline=None)
@given(
    videos=st.dictionaries(
        st.text("abcdef-0123", min_size=1, max_size=6), st.tuples(_narrations, st.none() | _narrations), max_size=5
    ),
    chunk=st.integers(1, 64),
    indent=st.sampled_from([None, 0, 2]),
)
def test_streamed_narrations_equal_json_load_for_any_content_and_chunking(videos, chunk, indent):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _write_streaming_tree(root, videos, indent, ensure_ascii=chunk % 2 == 0)
        fast = load_index(root, use_cache=False, policy=ReadPolicy(chunk=chunk, decoder="stdlib"))
        _assert_same(fast, _plain(root))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("#OoCcunsureUNSURE \t\u00a0\u2019x")), max_size=12), max_size=20))
def test_vectorised_flags_equal_flags_of_on_any_text(texts):
    col = TextColumn.from_strings(texts)
    assert text_flags(col.blob, col.offsets).tolist() == [flags_of(t) for t in texts]


def test_videos_only_in_ego4d_json_are_indexed_after_narrated_ones(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b", pass1=None, split=None)])
    index = load_index(root)
    assert index.video_uids == ["a", "b"]
    assert len(index.clips_of(1)) == 1 and index.passes[1].rows(1) == slice(8, 8)


def test_indexing_never_opens_feature_files(tmp_path):
    root = write_tree(tmp_path / "d", videos=3, features="empty")
    (root / "v1/egovlp_fp16/video-0.pt").write_text("not a tensor at all")
    index = load_index(root)
    assert index.has_features.all()
    report = check(root)  # check does open them: the text file is an error, empty ones warnings
    assert report.counts["empty_feature_files"] == 2 and _warnings(report)["empty_feature_files"] == 2
    assert [e.code for e in report.errors] == ["bad_feature_file"] and "video-0.pt" in report.errors[0].message


def test_missing_feature_file_means_no_features_for_that_video(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b", features=False)])
    index = load_index(root)
    assert index.has_features.tolist() == [True, False]
    assert index.counts["videos_without_features"] == 1


# --------------------------------------------------------------------------- errors


def _raw(root: Path, rel: str, text: str) -> None:
    (root / rel).write_text(text, "utf-8")


def _timestamp(value):
    def edit(d):
        d["video-1"]["narration_pass_1"]["narrations"][3]["timestamp_sec"] = value

    return edit


ERRORS = {
    "missing narration.json": (lambda r: (r / NARRATION).unlink(), "narration.json", "not found"),
    "empty ego4d.json": (lambda r: _raw(r, EGO4D, ""), "ego4d.json", "empty"),
    "folder instead of nlq_val.json": (
        lambda r: ((r / NLQ["val"]).unlink(), (r / NLQ["val"]).mkdir()),
        "nlq_val.json",
        "folder",
    ),
    "truncated narration.json": (
        lambda r: (r / NARRATION).write_bytes((r / NARRATION).read_bytes()[:-40]),
        "narration.json",
        "truncated",
    ),
    "non-JSON ego4d.json": (
        lambda r: _raw(r, EGO4D, "<html>503 Service Unavailable</html>"),
        "ego4d.json",
        "not valid JSON",
    ),
    "narration.json is a list": (lambda r: _raw(r, NARRATION, "[1, 2]"), "narration.json", "top level is a list"),
    "nlq_test is a string": (
        lambda r: _raw(r, NLQ["test"], '"videos"'),
        "nlq_test_unannotated.json",
        "top level is a string",
    ),
    "timestamp is a string": (
        lambda r: edit_json(r, NARRATION, _timestamp("7.0")),
        "narration.json",
        "narrations[3].timestamp_sec is a string",
    ),
    "timestamp is null": (
        lambda r: edit_json(r, NARRATION, _timestamp(None)),
        "narration.json",
        "narrations[3].timestamp_sec is null",
    ),
    "timestamp is NaN": (
        lambda r: edit_json(r, NARRATION, _timestamp(float("nan"))),
        "narration.json",
        "timestamp_sec is NaN",
    ),
    "clip time is a string": (
        lambda r: edit_json(r, EGO4D, lambda d: d["clips"][1].update(video_end_sec="60")),
        "ego4d.json",
        "clips[1].video_end_sec is a string",
    ),
    "query time is null": (
        lambda r: edit_json(
            r,
            NLQ["val"],
            lambda d: d["videos"][0]["clips"][0]["annotations"][0]["language_queries"][0].update(clip_end_sec=None),
        ),
        "nlq_val.json",
        "videos[0].clips[0].annotations[0].language_queries[0].clip_end_sec is null",
    ),
    "no feature folder": (
        lambda r: [p.unlink() for p in (r / "v1/egovlp_fp16").iterdir()] and (r / "v1/egovlp_fp16").rmdir(),
        "egovlp_fp16",
        "not found",
    ),
}


def _tree(tmp_path) -> Path:
    return write_tree(
        tmp_path / "d", videos=[video("video-0"), video("video-1", split="val"), video("video-2", split="test")]
    )


@pytest.mark.parametrize("case", list(ERRORS))
def test_each_broken_input_is_one_data_error_line_naming_the_file(tmp_path, case):
    breaker, file, phrase = ERRORS[case]
    root = _tree(tmp_path)
    breaker(root)
    with pytest.raises(DataError) as exc:
        load_index(root)
    msg = str(exc.value)
    assert "\n" not in msg
    assert file in msg and phrase in msg, msg
    report = check(root)
    assert report.errors and any(file in e.message and phrase in e.message for e in report.errors), report.errors


def test_check_collects_errors_from_several_files_at_once(tmp_path):
    root = _tree(tmp_path)
    edit_json(root, NARRATION, _timestamp("x"))
    edit_json(root, NARRATION, lambda d: d["video-0"]["narration_pass_1"]["narrations"][0].update(timestamp_sec=None))
    _raw(root, NLQ["train"], '{"videos": [')
    report = check(root)
    files = {e.file for e in report.errors}
    assert {NARRATION, NLQ["train"]} <= files
    assert sum(e.file == NARRATION for e in report.errors) == 2


def test_a_missing_data_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data root not found"):
        load_index(tmp_path / "nowhere")


def test_nan_literal_in_the_file_is_rejected(tmp_path):
    root = _tree(tmp_path)
    text = (root / NARRATION).read_text().replace('"timestamp_sec": 3.0', '"timestamp_sec": NaN', 1)
    _raw(root, NARRATION, text)
    with pytest.raises(DataError, match=r"timestamp_sec is NaN"):
        load_index(root)


# --------------------------------------------------------------------------- cache


def _stages(root, **kw):
    seen = []
    index = load_index(root, progress=lambda stage, done, total: seen.append(stage), **kw)
    return index, set(seen)


def test_cache_miss_then_hit_then_invalidated_by_mtime_and_size(tmp_path):
    root = quirky_tree(tmp_path / "d")
    cold, stages = _stages(root)
    assert "narration.json" in stages and "reading cache" not in stages
    warm, stages = _stages(root)
    assert stages == {"reading cache"}
    assert warm.video_uids == cold.video_uids
    np.testing.assert_array_equal(warm.passes[1].time, cold.passes[1].time)
    assert [warm.passes[1].text[i] for i in range(3)] == [cold.passes[1].text[i] for i in range(3)]
    assert {i.code for i in warm.issues} == {i.code for i in cold.issues}
    assert warm.counts["narrations"] == cold.counts["narrations"]

    st = (root / NARRATION).stat()
    os.utime(root / NARRATION, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    _, stages = _stages(root)
    assert "narration.json" in stages  # rebuilt
    _, stages = _stages(root)
    assert stages == {"reading cache"}

    edit_json(
        root,
        NARRATION,
        lambda d: d["q-main"]["narration_pass_1"]["narrations"].append(
            {"timestamp_sec": 9.0, "narration_text": "#C C leaves", "annotation_uid": "new"}
        ),
    )
    fresh, stages = _stages(root)
    assert "narration.json" in stages and len(fresh.passes[1]) == len(cold.passes[1]) + 1


def test_features_are_rescanned_on_a_warm_open(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b", features=False)])
    assert load_index(root).has_features.tolist() == [True, False]
    (root / "v1/egovlp_fp16/b.pt").write_bytes(b"")
    assert load_index(root).has_features.tolist() == [True, True]


def test_a_damaged_cache_is_rebuilt_not_an_error(tmp_path):
    root = quirky_tree(tmp_path / "d")
    load_index(root)
    d = cache.cache_dir(root)
    meta = json.loads((d / "index.json").read_text())
    for f in (d / meta["data"]).glob("p1.time.npy"):
        f.write_bytes(b"garbage")
    index, stages = _stages(root)
    assert "narration.json" in stages and len(index.passes[1]) == 15


def test_without_a_cache_nothing_is_written(tmp_path):
    root = quirky_tree(tmp_path / "d")
    load_index(root, use_cache=False)
    assert not cache.cache_dir(root).exists()


# --------------------------------------------------------------------------- NLQ files


def test_load_nlq_reads_queries_and_allows_no_times_in_the_test_file(tmp_path):
    root = quirky_tree(tmp_path / "d")
    train = load_nlq(root / NLQ["train"])
    assert len(train.queries) == 7
    q = train.queries[0]
    assert (q.video_uid, q.clip_start_sec, q.clip_end_sec, q.template) == (
        "q-main",
        1.0,
        3.0,
        "Objects: Where is object X?",
    )
    assert q.where == "videos[0].clips[0].annotations[0].language_queries[0]"
    assert {i.code for i in train.issues} >= {"template_null", "query_missing", "zero_length_answer"}
    write_tree(tmp_path / "t", videos=[video("t1", split="test")])
    test = load_nlq(tmp_path / "t" / NLQ["test"])
    assert len(test.queries) == 1 and test.queries[0].clip_start_sec is None


def test_load_nlq_requires_answer_times_in_an_annotated_file(tmp_path):
    root = _tree(tmp_path)

    def drop(d):
        del d["videos"][0]["clips"][0]["annotations"][0]["language_queries"][0]["video_end_sec"]

    edit_json(root, NLQ["val"], drop)
    with pytest.raises(
        DataError,
        match=r"nlq_val.json: videos\[0\].clips\[0\].annotations\[0\].language_queries\[0\] has no video_end_sec",
    ):
        load_nlq(root / NLQ["val"])


# --------------------------------------------------------------------------- features


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_feature_files_are_loaded_as_tensors_of_the_folder_dimension(tmp_path):
    root = write_tree(tmp_path / "d", videos=2, feature_dim=256)
    x = load_features(root / "v1/egovlp_fp16/video-0.pt", 256)
    assert tuple(x.shape) == (16, 256) and x.dtype == torch.float16
    (root / "v1/omnivore_video_swinl_fp16").mkdir()
    torch.save(torch.zeros(3, 1536), root / "v1/omnivore_video_swinl_fp16/video-0.pt")
    # The listing peeks at the shape without torch; it agrees with the loaded tensors.
    listed = [(f.name, f.peek_dim(), len(f.files)) for f in list_feature_folders(root)]
    assert listed == [("egovlp_fp16", 256, 2), ("omnivore_video_swinl_fp16", 1536, 1)]


@pytest.mark.parametrize(
    "content, phrase",
    [
        ("dict", "holds a dict"),
        ("text", "not a tensor file"),
        ("evil", "not a tensor file"),
        ("1d", "expected 2-D"),
        ("wrongdim", "feature dimension 128"),
        ("empty", "empty (0 bytes)"),
    ],
)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_feature_file_is_a_data_error_and_never_unpickled(tmp_path, monkeypatch, content, phrase):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "vid.pt"
    if content == "dict":
        torch.save({"features": torch.zeros(2, 256)}, p)
    elif content == "text":
        p.write_text("hello, I am not a tensor\n")
    elif content == "evil":
        p.write_bytes(pickle.dumps(_Evil()))
    elif content == "1d":
        torch.save(torch.zeros(256), p)
    elif content == "wrongdim":
        torch.save(torch.zeros(4, 128), p)
    else:
        p.write_bytes(b"")
    with pytest.raises(DataError) as exc:
        load_features(p, 256)
    assert str(p) in str(exc.value) and phrase in str(exc.value)
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_check_rejects_a_non_tensor_feature_file(tmp_path):
    root = _tree(tmp_path)
    torch.save({"not": "a tensor"}, root / "v1/egovlp_fp16/video-1.pt")
    report = check(root)
    assert [e.code for e in report.errors] == ["bad_feature_file"]
    assert "video-1.pt" in report.errors[0].message


# --------------------------------------------------------------------------- parallel decoding


# narration.json decoded by worker processes even when tiny, or never.
PARALLEL = ReadPolicy(parallel_min_bytes=0, parallel_min_chunk=1, workers=5, fork_ok=True, decoder="stdlib")
SERIAL = ReadPolicy(parallel_min_bytes=1 << 62, decoder="stdlib")
FAST = ReadPolicy(chunk=1 << 16)  # msgspec, in chunks small enough to cut the test files


def _busy_tree(path: Path) -> Path:
    root = quirky_tree(path)

    def more(d):
        for i in range(12):
            d[f"extra-{i}"] = {
                "narration_pass_1": {
                    "narrations": [
                        {
                            "timestamp_sec": float(j),
                            "narration_text": f'#C C says }}, "v{j}": {{ caf\u00e9\u2019s',
                            "annotation_uid": f"e{i}-{j}",
                        }
                        for j in range(i % 4)
                    ]
                }
            }
        d["q-main"]["narration_pass_1"]["narrations"][1]["narration_text"] = (
            "#C C holds the caf\u00e9\u2019s cup \U0001f600"
        )

    edit_json(root, NARRATION, more)
    return root


def test_parallel_decoding_gives_the_serial_index_and_warnings(tmp_path, parallel):
    import dataclasses

    root = _busy_tree(tmp_path / "d")
    policy = dataclasses.replace(PARALLEL, chunk=11)
    seen = []
    fast = load_index(
        root, use_cache=False, progress=lambda stage, done, total: seen.append((stage, done, total)), policy=policy
    )
    fast_report = check(root, use_cache=False, policy=policy)
    assert len(parallel) == 2 and all(p is not None for p in parallel)  # really decoded in workers
    narr = [d for s, d, t in seen if s == "narration.json"]
    assert narr and narr == sorted(narr) and narr[-1] == (root / NARRATION).stat().st_size
    slow = load_index(root, use_cache=False, policy=SERIAL)
    _assert_same(fast, slow)
    _assert_same(fast, _plain(root))
    assert [(i.code, i.message, i.count) for i in fast_report.issues] == [
        (i.code, i.message, i.count) for i in check(root, use_cache=False, policy=SERIAL).issues
    ]


def test_parallel_decoding_hands_out_more_shares_than_workers(tmp_path, monkeypatch, parallel):
    """Two workers read eight shares in turn (the one done first takes the next); each share's
    text is appended in file order as it comes, and the index is the serial one."""
    import dataclasses

    from engine.ego4d import parallel as par

    plans = []
    real = par.Running.__init__

    def spy(self, *a, **kw):
        real(self, *a, **kw)
        plans.append((len(self.cuts), self.procs, len(self.pool._processes or {})))

    monkeypatch.setattr(par.Running, "__init__", spy)
    root = _busy_tree(tmp_path / "d")
    policy = dataclasses.replace(PARALLEL, workers=2)
    fast = load_index(root, use_cache=False, policy=policy)
    assert parallel and all(p is not None for p in parallel)
    assert plans and all(shares == 8 and procs == 2 and started <= 2 for shares, procs, started in plans)
    _assert_same(fast, load_index(root, use_cache=False, policy=SERIAL))


# A process that runs threads (the TUI loads in one) builds in a helper process instead.
HELPER = ReadPolicy(parallel_min_bytes=0, parallel_min_chunk=1, workers=2)


def _in_thread(fn):
    import threading

    got: dict = {}

    def run():
        try:
            got["value"] = fn()
        except Exception as exc:  # handed back to the test
            got["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    if "error" in got:
        raise got["error"]
    return got["value"]


class _Runs(list):
    procs: list


@pytest.fixture
def helper_runs(monkeypatch):
    """What each helper build returned, and the environment it got."""
    from engine.ego4d import child_build

    runs = _Runs()
    real_build, real_popen = child_build.build_in_child, child_build.subprocess.Popen

    def build(*a, **kw):
        runs.append(real_build(*a, **kw))
        return runs[-1]

    def popen(cmd, **kw):
        runs.append(dict(kw["env"]))
        proc = real_popen(cmd, **kw)
        procs.append(proc)
        return proc

    procs: list = []
    runs.procs = procs  # type: ignore[attr-defined]

    monkeypatch.setattr(child_build, "build_in_child", build)
    monkeypatch.setattr(child_build.subprocess, "Popen", popen)
    return runs


def test_a_threaded_open_builds_in_a_helper_with_the_same_index_warnings_and_no_key(tmp_path, monkeypatch, helper_runs):
    root = _busy_tree(tmp_path / "d")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-a-child")
    monkeypatch.setenv("MY_LLM_TOKEN", "tok-never-in-a-child")
    stages = []
    got = _in_thread(
        lambda: load_index(
            root, policy=HELPER, secret_names=["MY_LLM_TOKEN"], progress=lambda s, d, t: stages.append(s)
        )
    )
    env, built = helper_runs
    assert built is True and "OPENAI_API_KEY" not in env and "MY_LLM_TOKEN" not in env
    assert "narration.json" in stages and "reading cache" in stages  # its progress, then the warm open
    want = load_index(root, use_cache=False, policy=SERIAL)
    _assert_same(got, want)
    assert [(i.code, i.message, i.count) for i in got.issues] == [(i.code, i.message, i.count) for i in want.issues]


def test_a_threaded_open_whose_helper_fails_builds_itself_and_names_the_problem(tmp_path, monkeypatch, helper_runs):
    root = _busy_tree(tmp_path / "d")
    edit_json(
        root, NARRATION, lambda d: d["extra-5"]["narration_pass_1"].update(narrations=[{"timestamp_sec": "soon"}])
    )
    with pytest.raises(DataError) as threaded:
        _in_thread(lambda: load_index(root, policy=HELPER, secret_names=[]))
    assert helper_runs[-1] is False  # the helper found the problem and left it to this process
    with pytest.raises(DataError) as serial:
        load_index(root, use_cache=False, policy=SERIAL)
    assert str(threaded.value) == str(serial.value) and "extra-5" in str(threaded.value)


def test_a_threaded_open_survives_a_helper_that_cannot_start_or_dies(tmp_path, monkeypatch, helper_runs):
    from engine.ego4d import child_build

    root = _busy_tree(tmp_path / "d")
    want = load_index(root, use_cache=False, policy=SERIAL)
    for exe in ("/nonexistent/python", "/bin/false"):
        monkeypatch.setattr(child_build.sys, "executable", exe)
        cache.clear(root)
        _assert_same(_in_thread(lambda: load_index(root, policy=HELPER, secret_names=[])), want)
        assert helper_runs[-1] is False


def test_a_threaded_open_without_secret_names_reads_itself(tmp_path, helper_runs):
    """A caller that does not say which variables hold a key starts no helper."""
    root = _busy_tree(tmp_path / "d")
    _assert_same(_in_thread(lambda: load_index(root, policy=HELPER)), load_index(root, use_cache=False, policy=SERIAL))
    assert helper_runs == []


def _live_in_group(pgid: int, wait_s: float = 5.0) -> list[int]:
    """Processes of group `pgid` not yet dead (a killed one is a zombie until its new parent
    reaps it, which a container's init may never do)."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                live.append(int(stat.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)


def test_a_helper_killed_mid_build_leaves_no_process_and_no_folder(tmp_path, helper_runs):
    """kill -9 of the helper orphans its readers, which hold its stdout open: the load still
    ends (it watches the helper, not the pipe), kills them, removes the folder, builds itself."""
    import signal

    root = _busy_tree(tmp_path / "d")
    killed = []

    def progress(stage, done, total):
        if helper_runs.procs and not killed:
            killed.append(helper_runs.procs[-1].pid)
            os.kill(killed[0], signal.SIGKILL)

    got = _in_thread(lambda: load_index(root, policy=HELPER, secret_names=[], progress=progress))
    assert killed and helper_runs[-1] is False
    _assert_same(got, load_index(root, use_cache=False, policy=SERIAL))
    assert _live_in_group(killed[0]) == []  # nothing left running in the helper's process group
    assert len(list(cache.cache_dir(root).glob("data-*"))) == 1  # the in-process build's only


def test_a_threaded_open_with_no_writable_cache_starts_no_helper(tmp_path, monkeypatch, helper_runs):
    root = _busy_tree(tmp_path / "d")
    monkeypatch.setenv("NLQ_TUI_CACHE", "/dev/null/cache")
    _assert_same(
        _in_thread(lambda: load_index(root, policy=HELPER, secret_names=[])),
        load_index(root, use_cache=False, policy=SERIAL),
    )
    assert helper_runs == [False]  # asked, and declined before starting a process


def test_only_the_helpers_progress_lines_are_passed_on(tmp_path, monkeypatch, helper_runs):
    from engine.ego4d import child_build

    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/sh\n"
        "printf 'ego4d.json\\t1\\t1\\n'\n"
        "head -c 600 /dev/zero | tr '\\0' x; printf 'narration.json\\t9\\t9\\n'\n"  # one long line
        "printf '[b]x[/b]\\t1\\t2\\n\\033[2Jnarration.json\\t1\\t2\\n'\n"
        "printf 'narration.json\\t3\\t4\\n'\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(child_build.sys, "executable", str(fake))
    seen = []
    assert not child_build.build_in_child(root := _busy_tree(tmp_path / "d"), "egovlp_fp16", lambda *a: seen.append(a))
    assert seen == [("ego4d.json", 1, 1), ("narration.json", 3, 4)]
    assert not list(cache.cache_dir(root).glob("data-*"))  # its folder went with it


@pytest.mark.parametrize(
    "line",
    [
        b"narration.json\t5\t3\n",  # done past total
        b"narration.json\t-1\t3\n",
        b"[red]boom[/red]\t1\t2\n",  # not one of the stages
        b"narration.json\t1\n",
        b"narration.json\t1\t2\t3\n",
        b"narration.json\t\x1b[2J\t2\n",
        "narration.json\u2019\t1\t2\n".encode(),
        b"narration.json\t1\t" + b"9" * 600 + b"\n",
    ],
)
def test_a_helper_line_that_is_not_progress_is_dropped(line):
    from engine.ego4d.child_build import _progress_line

    assert _progress_line(line) is None
    assert _progress_line(b"narration.json\t1\t2\n") == ("narration.json", 1, 2)


def test_a_failed_share_stops_the_workers_before_this_process_reads(tmp_path, monkeypatch, parallel):
    """The first share to fail (whichever it is) ends the wait, and the other workers are
    stopped before the in-process reader starts: they would only take its cores."""
    import dataclasses

    from engine.ego4d import fast
    from engine.ego4d import parallel as par

    root = _busy_tree(tmp_path / "d")
    edit_json(root, NARRATION, lambda d: d["q-main"]["narration_pass_1"].update(narrations=[{"timestamp_sec": "x"}]))
    order = []
    real_close, real_fast = par.Running.close, fast.read_fast

    def close(self):
        order.append("close")
        real_close(self)

    def read_fast(*a, **kw):
        order.append("read_fast")
        return real_fast(*a, **kw)

    monkeypatch.setattr(par.Running, "close", close)
    monkeypatch.setattr(fast, "read_fast", read_fast)
    with pytest.raises(DataError):
        load_index(root, use_cache=False, policy=dataclasses.replace(PARALLEL, decoder="auto"))
    assert parallel == [None] and order[:2] == ["close", "read_fast"]


def test_parallel_decoding_survives_chunks_cut_at_wrong_places(tmp_path, monkeypatch, parallel):
    """Cuts inside strings or one level down are caught: the file is then read serially."""
    from engine.ego4d import parallel as par

    root = _busy_tree(tmp_path / "d")
    size = (root / NARRATION).stat().st_size
    monkeypatch.setattr(par, "chunk_starts", lambda path, size, n: list(range(40, size, size // 7)))
    fast = load_index(root, use_cache=False, policy=PARALLEL)
    assert parallel == [None]
    _assert_same(fast, _plain(root))
    # The first cut right, then wrong ones: still the same index.
    good = (root / NARRATION).read_bytes().index(b'"extra-3"')
    monkeypatch.setattr(par, "chunk_starts", lambda path, size_, n: [good, good + 9, size - 30])
    _assert_same(load_index(root, use_cache=False, policy=PARALLEL), _plain(root))
    assert size > 0


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_broken_video_found_by_a_worker_is_the_serial_one_line_error(tmp_path, monkeypatch, parallel, where):
    root = _busy_tree(tmp_path / "d")
    uid = {"first": "q-main", "middle": "extra-5", "last": "extra-11"}[where]
    edit_json(
        root,
        NARRATION,
        lambda d: d[uid]["narration_pass_1"].update(narrations=[{"timestamp_sec": "soon", "narration_text": "x"}]),
    )
    text = (root / NARRATION).read_text()
    (root / NARRATION).write_text(text.replace('"extra-9"', '"extra-0"'))  # a later duplicate too
    with pytest.raises(DataError) as fast:
        load_index(root, use_cache=False, policy=PARALLEL)
    assert parallel == [None]  # the worker's error sent it to the serial reader, which names it
    with pytest.raises(DataError) as slow:
        load_index(root, use_cache=False, policy=SERIAL)
    assert str(fast.value) == str(slow.value) and f"video {uid!r}" in str(fast.value)
    assert "\n" not in str(fast.value)


@settings(max_examples=12, deadline=None)
@given(
    videos=st.dictionaries(
        st.text("abcdef-0123", min_size=1, max_size=6),
        st.tuples(_narrations, st.none() | _narrations),
        min_size=2,
        max_size=8,
    ),
    chunk=st.integers(1, 64),
    indent=st.sampled_from([None, 0, 2]),
)
def test_parallel_decoding_equals_json_load_for_any_content(videos, chunk, indent):
    import dataclasses
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _write_streaming_tree(root, videos, indent, ensure_ascii=chunk % 2 == 0)
        policy = dataclasses.replace(PARALLEL, workers=4, chunk=chunk)
        fast = load_index(root, use_cache=False, policy=policy)
        _assert_same(fast, _plain(root))


# --------------------------------------------------------------------------- the msgspec reader


def _same_as_streaming(root: Path, policy: ReadPolicy, expect_fast: bool = True) -> None:
    """The msgspec reader (really used) gives the streaming reader's index, warnings and errors."""
    from engine.ego4d import fast

    used = []
    real = fast.read_fast

    def spy(*a, **kw):
        used.append(real(*a, **kw))
        return used[-1]

    fast.read_fast = spy
    try:
        got = check(root, use_cache=False, policy=policy)
    finally:
        fast.read_fast = real
    want = check(root, use_cache=False, policy=SERIAL)
    assert [(i.level, i.code, i.message, i.count) for i in got.issues] == [
        (i.level, i.code, i.message, i.count) for i in want.issues
    ]
    assert got.counts == want.counts
    if expect_fast:
        assert used and used[0] is not None  # decoded by msgspec, not handed back
    if want.ok:
        _assert_same(load_index(root, use_cache=False, policy=policy), load_index(root, use_cache=False, policy=SERIAL))


@pytest.mark.parametrize("chunk", [40, 300, 4096, 1 << 24])
def test_msgspec_reader_equals_the_streaming_reader_on_every_quirk(tmp_path, chunk):
    import dataclasses

    _same_as_streaming(_busy_tree(tmp_path / "d"), dataclasses.replace(FAST, chunk=chunk))


@pytest.mark.parametrize(
    "damage",
    ["nan", "lone surrogate", "huge number", "boolean", "duplicate video", "unknown video field", "truncated"],
)
def test_msgspec_reader_hands_what_it_cannot_read_to_the_streaming_reader(tmp_path, damage):
    root = _busy_tree(tmp_path / "d")
    text = (root / NARRATION).read_text("utf-8")
    if damage == "nan":
        text = text.replace('"timestamp_sec": 3.0', '"timestamp_sec": NaN', 1)
    elif damage == "lone surrogate":
        text = text.replace('"narration_text": "', '"narration_text": "\\ud83d ', 1)
    elif damage == "huge number":
        text = text.replace('"timestamp_sec": 3.0', '"timestamp_sec": 1' + "0" * 400, 1)
    elif damage == "boolean":
        text = text.replace('"timestamp_sec": 3.0', '"timestamp_sec": true', 1)
    elif damage == "duplicate video":
        text = text.replace('"extra-9"', '"extra-0"')
    elif damage == "unknown video field":
        text = text.replace('"extra-4": {', '"extra-4": {"colour": "red", ', 1)
    else:
        text = text[:-50]
    (root / NARRATION).write_text(text, "utf-8")
    _same_as_streaming(root, FAST, expect_fast=damage in ("huge number", "boolean"))


@settings(max_examples=20, deadline=None)
@given(
    videos=st.dictionaries(
        st.text("abcdef-0123", min_size=1, max_size=6), st.tuples(_narrations, st.none() | _narrations), max_size=6
    ),
    chunk=st.integers(1, 200),
    indent=st.sampled_from([None, 0, 2]),
)
def test_msgspec_reader_equals_json_load_for_any_content_and_chunking(videos, chunk, indent):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _write_streaming_tree(root, videos, indent, ensure_ascii=chunk % 2 == 0)
        _assert_same(load_index(root, use_cache=False, policy=ReadPolicy(chunk=chunk)), _plain(root))


def test_msgspec_reader_reads_most_passes_itself(tmp_path, monkeypatch):
    """Not every chunk handed to the slower readers: the columnar readers (the C scanner where
    it is built, else msgspec's) keep the common ones."""
    from engine.ego4d import columns, fast

    kept: list[int] = []

    def spy(real):
        def counted(*a, **kw):
            out = real(*a, **kw)
            kept.extend(len(got) for _, got in out or [])
            return out

        return counted

    monkeypatch.setattr(fast, "chunk_pieces", spy(columns.chunk_pieces))
    monkeypatch.setattr(fast, "scan_pieces", spy(columns.scan_pieces))
    root = write_tree(tmp_path / "d", videos=6)
    _assert_same(load_index(root, use_cache=False, policy=FAST), _plain(root))
    assert sum(kept) == 6  # the one pass of each of the six videos


def test_without_msgspec_the_streaming_reader_does_it_all(tmp_path, monkeypatch):
    from engine.ego4d import fast

    monkeypatch.setattr(fast, "available", lambda: False)
    root = _busy_tree(tmp_path / "d")
    _assert_same(load_index(root, use_cache=False, policy=FAST), _plain(root))
