"""Groups and windows: the engine against the plain reference, and each reason on its own."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ego4d_fixtures import build_index
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_windows import notebook_group_count, reference

from engine.errors import ConfigError
from engine.windows import REASONS, WINDOW_REASONS, Cancelled, WindowParams, compute


def make(clips, narrations, excluded=(), features=None):
    """An Index from compact specs: clips [(video, start, end)], narrations {video: [(t, text)]}."""
    ego4d = {
        "clips": [
            {"clip_uid": f"c{i}", "video_uid": v, "video_start_sec": s, "video_end_sec": e}
            for i, (v, s, e) in enumerate(clips)
        ]
    }
    narration = {}
    for v, spec in narrations.items():
        entry = {}
        for p, items in spec.items() if isinstance(spec, dict) else [(1, spec)]:
            entry[f"narration_pass_{p}"] = {
                "narrations": [
                    {"timestamp_sec": t, "narration_text": text, "annotation_uid": f"{v}-{p}-{j}"}
                    for j, (t, text) in enumerate(items)
                ]
            }
        narration[v] = entry
    if features is None:
        features = set(narration) | {c["video_uid"] for c in ego4d["clips"]}
    index = build_index(Path("."), "egovlp_fp16", ego4d, narration, set(excluded), set(features))
    return index, (ego4d, narration, set(excluded), set(features))


def texts(times, text="#C C picks up the knife"):
    return [(t, text) for t in times]


def engine_groups(res):
    idx = res.index
    voff = res._prep.table.video_offsets
    return [
        (idx.video_uids[v], int(r - voff[v]), int(c)) for v, r, c in zip(res.group_video, res.group_row, res.group_clip)
    ]


# ---------------------------------------------------------------------------------------------
# The property: the engine equals the reference on any input

grid_time = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0]),
    st.floats(min_value=0.0, max_value=12.0, allow_nan=False, allow_infinity=False),
)
clip_len = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0]),
    st.floats(min_value=0.0, max_value=12.0, allow_nan=False, allow_infinity=False),
)
narration_text = st.sampled_from(
    ["#C C picks up the knife", "#C C cuts the onion #unsure", "#O man X opens the door", "#C C looks around #Unsure"]
)


@st.composite
def datasets(draw):
    n_videos = draw(st.integers(0, 5))
    uids = [f"v{i}" for i in range(n_videos)]
    clips = []
    for v in uids:
        for _ in range(draw(st.integers(0, 3))):
            s = draw(grid_time)
            clips.append((v, s, s + draw(clip_len)))
    clips = draw(st.permutations(clips))  # interleave videos in ego4d.json order
    narrations = {}
    for v in uids:
        if draw(st.integers(0, 5)) == 0:
            continue  # a video only in ego4d.json
        spec = {}
        for p in (1, 2):
            if p == 2 and draw(st.booleans()):
                continue
            spec[p] = [(draw(grid_time), draw(narration_text)) for _ in range(draw(st.integers(0, 12)))]
        narrations[v] = spec
    excluded = {v for v in uids if draw(st.integers(0, 6)) == 0}
    features = {v for v in uids if draw(st.integers(0, 6)) != 0}
    return clips, narrations, excluded, features


params_st = st.builds(
    WindowParams,
    k=st.integers(1, 6),
    alpha=st.one_of(st.just(4.9), st.floats(0.2, 10.0)),
    min_window=st.one_of(st.sampled_from([0.0, 0.25, 1.0, 2.0]), st.floats(0.0, 3.0)),
    narration_pass=st.sampled_from([1, 2, "both"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), params=params_st)
def test_groups_windows_and_reasons_equal_the_reference(data, params):
    index, raw = make(*data)
    res = compute(index, params)
    ref = reference(
        *raw, k=params.k, alpha=params.alpha, min_window=params.min_window, narration_pass=params.narration_pass
    )

    assert engine_groups(res) == ref["groups"]
    assert res.n_windows == len(ref["windows"]) == len(ref["groups"]) * params.k
    if params.narration_pass == 1:
        assert res.n_groups == notebook_group_count(*raw, k=params.k)

    t, start, end = res.window_fields(slice(None))
    bits = res.reason_bits
    for i, w in enumerate(ref["windows"]):
        assert t[i] == w["t"]
        if w["start"] is None:
            assert math.isnan(start[i]) and math.isnan(end[i])
        else:
            assert (start[i], end[i]) == (w["start"], w["end"])
        got = {REASONS[c][0] for c in WINDOW_REASONS if bits[i] & (1 << (c - 1))}
        assert got == w["reasons"], (i, res.describe_window(i))

    summary = res.summary()
    assert summary["groups"] == len(ref["groups"])
    assert summary["usable"] == sum(1 for w in ref["windows"] if not w["reasons"])
    assert summary["notebook_valid"] == sum(
        1 for w in ref["windows"] if w["start"] is not None and w["start"] < w["end"]
    )
    assert summary["runs"] == ref["runs"]
    assert summary["narrations_no_clip"] == ref["narrations_no_clip"]
    expected = {REASONS[c][0]: sum(1 for w in ref["windows"] if REASONS[c][0] in w["reasons"]) for c in WINDOW_REASONS}
    expected.update(no_clip=ref["no_clip"], straddle=ref["straddle"])
    assert summary["reasons"] == expected
    assert summary["runs"] == summary["groups"] + ref["no_clip"] + ref["straddle"]
    assert (len(res.rejected_runs("no_clip")), len(res.rejected_runs("straddle"))) == (ref["no_clip"], ref["straddle"])
    usable = [w["end"] - w["start"] for w in ref["windows"] if not w["reasons"]]
    if usable:
        assert summary["usable_seconds"]["p50"] == pytest.approx(np.percentile(usable, 50), rel=1e-9, abs=1e-9)

    durations = [w["end"] - w["start"] for w in ref["windows"] if w["start"] is not None]
    if durations:
        for q in (5, 50, 95):
            assert summary["seconds"][f"p{q}"] == pytest.approx(np.percentile(durations, q), rel=1e-9, abs=1e-9)
    else:
        assert summary["seconds"]["p50"] is None


@settings(max_examples=60, deadline=None)
@given(
    data=datasets(),
    ks=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    alphas=st.lists(st.floats(0.5, 8.0), min_size=1, max_size=3),
)
def test_recomputing_with_new_parameters_on_a_warm_engine_equals_a_fresh_compute(data, ks, alphas):
    index, raw = make(*data)
    for k in ks:
        for alpha in alphas:
            warm = compute(index, WindowParams(k=k, alpha=alpha))
            fresh_index, _ = make(*data)
            fresh = compute(fresh_index, WindowParams(k=k, alpha=alpha))
            assert engine_groups(warm) == engine_groups(fresh)
            assert np.array_equal(warm.reason_bits, fresh.reason_bits)


# ---------------------------------------------------------------------------------------------
# The notebook's rules, one at a time


def test_group_must_fit_inside_one_clip():
    index, _ = make([("v", 0.0, 10.0), ("v", 10.0, 20.0)], {"v": texts([1, 2, 3, 9, 11, 12])})
    res = compute(index, WindowParams(k=3))
    # runs starting at 1, 2 fit clip 0; 3..11 and 9..12 need both clips; the touching bound 10 is shared
    assert engine_groups(res) == [("v", 0, 0), ("v", 1, 0)]
    assert res.summary()["reasons"]["straddle"] == 2


def test_parent_clip_is_the_first_in_ego4d_order_that_holds_the_run():
    clips = [("v", 5.0, 30.0), ("v", 0.0, 30.0), ("v", 0.0, 8.0)]
    index, _ = make(clips, {"v": texts([1, 2, 6, 7, 20])})
    res = compute(index, WindowParams(k=2))
    # (1,2) and (2,6) only fit clip 1 (clip 0 starts at 5); (6,7) fits clip 0 first; (7,20) clip 0
    assert [c for _, _, c in engine_groups(res)] == [1, 1, 0, 0]


def test_skipped_videos_excluded_without_features_or_without_clips():
    clips = [("a", 0, 100), ("b", 0, 100), ("c", 0, 100)]
    narrs = {v: texts([1, 2, 3]) for v in "abcd"}
    index, _ = make(clips, narrs, excluded={"a"}, features={"a", "c", "d"})
    res = compute(index, WindowParams(k=2))
    assert {g[0] for g in engine_groups(res)} == {"c"}
    v = res.summary()["videos"]
    assert (v["excluded"], v["no_features"], v["no_clips"], v["used"]) == (1, 1, 1, 1)


def test_unsorted_narrations_are_sorted_stably_before_grouping():
    index, raw = make([("v", 0, 100)], {"v": [(5, "e"), (1, "a"), (3, "c1"), (3, "c2"), (2, "b")]})
    res = compute(index, WindowParams(k=5))
    assert [res.describe_window(i)["text"] for i in res.group_windows(0)] == ["a", "b", "c1", "c2", "e"]


def test_window_is_max_of_min_window_and_beta_over_alpha_centred_on_the_narration():
    index, _ = make([("v", 0, 1000)], {"v": texts([100, 200, 300])})
    res = compute(index, WindowParams(k=3, alpha=4.9, min_window=1.0))
    d = 100 / 4.9
    w = res.describe_window(1)
    assert (w["beta"], w["d"]) == (100.0, d)
    assert (w["start"], w["end"]) == (200 - d / 2, 200 + d / 2)
    assert compute(index, WindowParams(k=3, alpha=4.9, min_window=50.0)).describe_window(1)["d"] == 50.0


def test_both_passes_merge_by_time_with_pass_one_first_on_ties():
    spec = {1: [(2, "one-2"), (4, "one-4")], 2: [(1, "two-1"), (2, "two-2")]}
    index, _ = make([("v", 0, 10)], {"v": spec})
    res = compute(index, WindowParams(k=4, narration_pass="both"))
    ws = [res.describe_window(i) for i in res.group_windows(0)]
    assert [(w["text"], w["pass"]) for w in ws] == [("two-1", 2), ("one-2", 1), ("two-2", 2), ("one-4", 1)]
    assert ws[0]["beta"] == pytest.approx((1 + 2) / 2)  # positive gaps over the merged times: 1, 2


# ---------------------------------------------------------------------------------------------
# Each reason, named


def reasons_of(res, window):
    return res.describe_window(window)["reasons"]


def test_video_without_positive_gap_has_no_beta_and_no_usable_window():
    index, _ = make([("v", 0, 10)], {"v": texts([4, 4, 4])})
    res = compute(index, WindowParams(k=2))
    assert res.n_groups == 2  # still groups, as in the notebook
    assert all("no_beta" in reasons_of(res, i) for i in range(res.n_windows))
    assert res.summary()["usable"] == 0 and res.summary()["videos"]["used_no_beta"] == 1


def test_window_on_a_zero_length_clip_collapses():
    index, _ = make([("v", 5, 5), ("v", 0, 100)], {"v": texts([5, 5, 50])})
    res = compute(index, WindowParams(k=2, min_window=1.0))
    assert res.group_clip[0] == 0  # the zero-length clip holds both narrations at 5
    assert res.describe_window(0)["reason"] == "collapsed"
    assert set(reasons_of(res, 0)) >= {"collapsed", "clip_edge"}


def test_window_cut_by_the_clip_edge():
    index, _ = make([("v", 10, 40)], {"v": texts([10.2, 20, 30])})
    res = compute(index, WindowParams(k=3, alpha=2.0, min_window=1.0))  # d = 4.95
    w = res.describe_window(0)
    assert w["start"] == 10 and w["reason"] == "clip_edge" and w["duration"] < w["d"]
    assert reasons_of(res, 1) == []


def test_narration_tagged_unsure():
    index, _ = make(
        [("v", 0, 100)], {"v": [(10, "#C C opens the tap"), (20, "#C C holds #unsure"), (30, "#C C walks")]}
    )
    res = compute(index, WindowParams(k=3))
    assert [reasons_of(res, i) for i in range(3)] == [[], ["unsure"], []]


def test_duplicate_timestamps_mark_both_narrations():
    index, _ = make([("v", 0, 100)], {"v": texts([10, 30, 30, 50, 70])})
    res = compute(index, WindowParams(k=5, alpha=100, min_window=0.5))
    assert ["duplicate_time" in reasons_of(res, i) for i in range(5)] == [False, True, True, False, False]


def test_overlapping_windows_in_a_group_mark_both_neighbours():
    index, _ = make([("v", 0, 100)], {"v": texts([10, 10.5, 50, 90])})
    res = compute(index, WindowParams(k=4, alpha=4.9, min_window=1.0))
    assert ["overlap" in reasons_of(res, i) for i in range(4)] == [True, True, False, False]
    # the same two narrations in different groups are judged within each group
    res2 = compute(index, WindowParams(k=2))
    assert ["overlap" in reasons_of(res2, i) for i in range(res2.n_windows)] == [True, True, False, False, False, False]


def test_runs_with_a_narration_outside_every_clip_are_counted_not_grouped():
    index, _ = make([("v", 0, 10), ("v", 20, 30)], {"v": texts([1, 2, 15, 21, 22])})
    res = compute(index, WindowParams(k=2))
    s = res.summary()
    assert s["narrations_no_clip"] == 1
    assert (s["groups"], s["reasons"]["no_clip"], s["reasons"]["straddle"]) == (2, 2, 0)
    assert list(res.rejected_runs("no_clip")) == [1, 2]
    assert res.narration(2)["t"] == 15 and list(res.row_video[[0, 4]]) == [0, 0]


def test_rejected_runs_filter_by_video():
    clips = [("a", 0, 10), ("b", 0, 10), ("b", 20, 30)]
    index, _ = make(clips, {"a": texts([1, 2, 15]), "b": texts([1, 2, 22, 23])})
    res = compute(index, WindowParams(k=2))
    assert list(res.rejected_runs("no_clip", video="a")) == [1]
    assert list(res.rejected_runs("straddle", video="b")) == [4]
    assert list(res.rejected_runs(video=1)) == [4]
    assert list(res.rejected_runs("straddle", video="a")) == []


def test_usable_means_no_reason_and_primary_reason_follows_reasons_order():
    index, _ = make([("v", 0, 100)], {"v": [(10, "a #unsure"), (10, "b"), (60, "c")]})
    res = compute(index, WindowParams(k=3))
    w0 = res.describe_window(0)
    assert w0["reasons"] == ["unsure", "duplicate_time", "overlap"] and w0["reason"] == "unsure"
    s = res.summary()
    assert s["usable"] == 1 and sum(s["primary_reasons"].values()) == s["windows"] - s["usable"]


# ---------------------------------------------------------------------------------------------
# The API the lab uses


def test_rows_filters_by_reason_video_and_usable():
    clips = [("a", 0, 100), ("b", 0, 100)]
    index, _ = make(clips, {"a": texts([10, 10.2, 50]), "b": texts([10, 30, 50])})
    res = compute(index, WindowParams(k=3))
    assert list(res.rows(video="b")) == [3, 4, 5]
    assert list(res.rows(reason="overlap")) == [0, 1]
    assert list(res.rows(usable=True)) == [2, 3, 4, 5]
    assert list(res.rows(usable=False, video="a")) == [0, 1]
    assert list(res.rows(reason="straddle")) == []
    assert np.array_equal(res.window_reason, [6, 6, 0, 0, 0, 0])
    assert np.array_equal(res.window_video, [0, 0, 0, 1, 1, 1])
    d = 20 / 4.9
    assert res.window_start[4] == 30 - d / 2 and res.window_end[4] == 30 + d / 2
    assert res.window_duration[4] == pytest.approx(d)


def test_cancel_raises_cancelled_and_a_later_compute_still_works():
    index, _ = make([("v", 0, 100)], {"v": texts([1, 2, 3, 4, 5, 6])})
    with pytest.raises(Cancelled):
        compute(index, WindowParams(), cancel=lambda: True)
    assert compute(index, WindowParams(k=2)).n_groups == 5


@pytest.mark.parametrize(
    "params",
    [
        WindowParams(k=0),
        WindowParams(k=2.5),
        WindowParams(alpha=0),
        WindowParams(min_window=-1),
        WindowParams(narration_pass=3),
    ],
)
def test_bad_parameters_are_a_config_error(params):
    index, _ = make([], {})
    with pytest.raises(ConfigError):
        compute(index, params)


def test_empty_index_gives_zero_figures():
    index, _ = make([], {})
    s = compute(index).summary()
    assert (s["groups"], s["windows"], s["usable"]) == (0, 0, 0)
    assert s["seconds"]["p50"] is None


def test_fewer_narrations_than_k_make_no_group_and_no_run():
    index, _ = make([("v", 0, 100)], {"v": texts([1, 2])})
    s = compute(index, WindowParams(k=5)).summary()
    assert (s["groups"], s["runs"], s["windows"], s["narrations"]) == (0, 0, 0, 2)


# ---------------------------------------------------------------------------------------------
# The command, as a user runs it


def _tree(tmp_path_factory, videos=14):
    from engine.sample import write_sample

    root = tmp_path_factory.mktemp("ego4d")
    write_sample(root, videos=videos, features=False)
    return root


def _raw(root):
    import json

    def load(rel):
        with open(root / rel) as f:
            return json.load(f)

    ann = "v1/annotations"
    excluded = {
        v["video_uid"]
        for name in ("nlq_val.json", "nlq_test_unannotated.json")
        for v in load(f"{ann}/{name}")["videos"]
    }
    features = {p.stem for p in (root / "v1/egovlp_fp16").glob("*.pt")}
    return load("ego4d.json"), load(f"{ann}/narration.json"), excluded, features


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "nlq_tui", "windows", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def sample_tree(tmp_path_factory):
    return _tree(tmp_path_factory)


@pytest.mark.parametrize("k, narration_pass", [(5, "1"), (3, "both")])
def test_windows_command_json_equals_the_reference_on_a_sample_tree(sample_tree, k, narration_pass):
    import json

    proc = _cli(sample_tree, "--json", "--k", k, "--pass", narration_pass, "--alpha", 3.0)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    raw = _raw(sample_tree)
    p = narration_pass if narration_pass == "both" else int(narration_pass)
    ref = reference(*raw, k=k, alpha=3.0, min_window=1.0, narration_pass=p)
    assert out["groups"] == len(ref["groups"]) > 0
    if p == 1:
        assert out["groups"] == notebook_group_count(*raw, k=k)
    assert out["windows"] == out["groups"] * k
    assert out["usable"] == sum(1 for w in ref["windows"] if not w["reasons"])
    assert out["reasons"]["straddle"] == ref["straddle"] and out["reasons"]["no_clip"] == ref["no_clip"]
    assert set(out["seconds"]) >= {"p5", "p25", "p50", "p75", "p95"}
    assert len(out["histogram"]["counts"]) == len(out["histogram"]["edges"]) - 1


def test_windows_command_prints_readable_figures(sample_tree):
    proc = _cli(sample_tree)
    assert proc.returncode == 0, proc.stderr
    for words in ("groups", "usable windows", "window cut by the clip edge", "p50"):
        assert words in proc.stdout


@pytest.mark.parametrize(
    "args, names",
    [(["--k", "0"], "k must be"), (["--min-window", "-1"], "min_window"), (["--alpha", "nan"], "alpha")],
)
def test_windows_command_rejects_bad_parameters_in_one_line(sample_tree, args, names):
    proc = _cli(sample_tree, *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("nlq-tui: error:") and names in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_windows_command_on_a_missing_root_fails_in_one_line(tmp_path):
    proc = _cli(tmp_path / "nowhere", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "nowhere" in proc.stderr


def test_a_changed_feature_set_on_the_same_index_is_not_served_from_the_cache():
    index, _ = make([("a", 0, 100), ("b", 0, 100)], {"a": texts([1, 2, 3]), "b": texts([1, 2, 3])})
    assert compute(index, WindowParams(k=3)).n_groups == 2
    index.has_features[1] = False
    assert compute(index, WindowParams(k=3)).n_groups == 1


def test_bench_script_runs_and_matches_the_notebook_group_count(sample_tree):
    import json
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "bench_windows.py"
    proc = subprocess.run(
        [sys.executable, str(bench), str(sample_tree), "--json"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    fig = json.loads(proc.stdout)
    assert fig["baseline"]["groups"] == fig["cold"]["groups"] == fig["warm"]["groups"] > 0
    assert fig["baseline"]["windows"] == fig["cold"]["windows_with_beta"]
    assert all(fig[name]["maxrss_mb"] > 0 for name in ("baseline", "cold", "warm"))


def test_prep_sets_the_reason_bits_that_windows_defines():
    from engine.windows import _BIT, REASON_CODE
    from engine.windows_prep import B_DUP, B_UNSURE

    assert (B_UNSURE, B_DUP) == (_BIT[REASON_CODE["unsure"]], _BIT[REASON_CODE["duplicate_time"]])


def test_bisect_equals_searchsorted_on_each_slice_ties_included():
    from engine.windows_prep import bisect

    rng = np.random.default_rng(7)
    bounds = np.sort(rng.integers(0, 400, size=41))
    T = np.concatenate([np.sort(rng.choice([0.0, 1.0, 1.5, 2.0, 3.0, 7.0], size=n)) for n in np.diff(bounds)])
    T = np.concatenate([np.zeros(bounds[0]), T])
    lo = np.repeat(bounds[:-1], 3)
    hi = np.repeat(bounds[1:], 3)
    x = rng.choice([-1.0, 0.0, 1.0, 1.25, 2.0, 7.0, 9.0, np.inf, -np.inf], size=len(lo))
    right = rng.integers(0, 2, size=len(lo)).astype(bool)
    want = [np.searchsorted(T[a:b], v, "right" if r else "left") + a for a, b, v, r in zip(lo, hi, x, right)]
    assert bisect(T, x, lo, hi, right).tolist() == want
    assert bisect(T, x[:0], lo[:0], hi[:0], right[:0]).tolist() == []


@pytest.mark.parametrize(
    "argv,want",
    [
        (["windows", "ROOT", "--json"], "windows"),
        (["--data", "D", "--workspace=W", "--second-opinion", "windows"], "windows"),
        (["--dat", "D", "windows"], "windows"),
        (["--help"], None),
        (["--version"], None),
        (["windows", "--help"], "windows"),
        (["completion", "bash"], None),
        (["eval"], None),  # registered by the train module: the whole tree
        (["--second-opinion=1", "windows"], None),
        (["--bogus", "windows"], None),
        (["--", "windows"], None),
        ([], None),
        (["../x"], None),
    ],
)
def test_only_the_named_subcommand_module_is_loaded_when_that_is_safe(argv, want):
    from nlq_tui.cli import build_parser, command_parser, subparsers

    assert command_parser(argv) == want
    if want:
        assert set(subparsers(build_parser(want))) == {want}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), params=params_st)
def test_the_per_row_figures_are_the_same_over_rows_with_a_reason_or_over_every_row(data, params):
    import engine.windows as windows

    got = []
    for share in (10**9, 0):  # every row / only the rows with a reason
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(windows, "_DENSE_SHARE", share)
            index, _ = make(*data)
            res = compute(index, params)
        s = res.summary()
        s.pop("compute_seconds")
        got.append((s, res.reason_bits.tolist(), res.histogram()))
    assert got[0] == got[1]
