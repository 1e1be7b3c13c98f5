"""NLQ file + feature files -> Split -> Batches, computed the way the Ego4D VSLNet reference does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import DataError
from engine.training.data import Loader, clip_rows, load_split, pool_features, time_to_index
from engine.training.text import TextTable


def write_features(folder, video_uid, rows, dim=4):
    folder.mkdir(parents=True, exist_ok=True)
    # row i holds the value i, so a test can read back which rows a clip was cut from
    feats = torch.arange(rows, dtype=torch.float32)[:, None].repeat(1, dim).to(torch.float16)
    torch.save(feats, folder / f"{video_uid}.pt")


def query(text, s=None, e=None):
    q = {"query": text, "template": None}
    if s is not None:
        q.update(clip_start_sec=s, clip_end_sec=e)
    return q


def nlq(videos):
    return {
        "version": "1",
        "videos": [
            {
                "video_uid": v,
                "clips": [
                    {
                        "clip_uid": c,
                        "video_start_sec": s,
                        "video_end_sec": e,
                        "annotations": [{"annotation_uid": f"{c}-ann", "language_queries": qs}],
                    }
                    for c, s, e, qs in clips
                ],
            }
            for v, clips in videos.items()
        ],
    }


@pytest.fixture
def tree(tmp_path):
    feats = tmp_path / "v1" / "egovlp_fp16"
    write_features(feats, "vidA", 40)  # 21.3 s of features
    write_features(feats, "vidB", 400)  # long: its clip is pooled
    data = nlq(
        {
            "vidA": [
                (
                    "clipA",
                    2.0,
                    10.0,
                    [
                        query("Where did I put the cup?", 1.0, 3.0),
                        query(None),  # no question text
                        query("What did I cut?"),  # no times
                        query("when?", 4.0, 4.0),  # zero-length answer
                        query("How many eggs", 6.0, 5.0),  # ends before it starts
                        query("Where was the knife\u2019s box?", 0.0, 8.0),
                    ],
                )
            ],
            "vidB": [("clipB", 0.0, 200.0, [query("where is the dog?", 50.0, 80.0)])],
            "vidC": [("clipC", 0.0, 30.0, [query("no features here?", 1.0, 2.0)])],
        }
    )
    path = tmp_path / "nlq_train.json"
    path.write_text(json.dumps(data))
    return path, feats


def reference_time_to_index(s_time, e_time, n, duration):
    """utils/data_util.time_to_index, as loops over every (start, end) candidate."""
    best, best_iou = (0, 0), -1.0
    for i in range(n):
        for j in range(n):
            ps = float(np.float32(i) / np.float32(n) * np.float32(duration))
            pe = float(np.float32(j + 1) / np.float32(n) * np.float32(duration))
            inter = max(0.0, min(pe, e_time) - max(ps, s_time))
            union = max(1e-12, max(pe, e_time) - min(ps, s_time))
            if inter / union > best_iou:
                best, best_iou = (i, j), inter / union
    return best


def reference_sampling(feature, max_num_clips):
    """utils/data_util.visual_feature_sampling, as written there."""
    num_clips = feature.shape[0]
    if num_clips <= max_num_clips:
        return feature
    idxs = np.round(np.arange(0, max_num_clips + 1, 1.0) / max_num_clips * num_clips).astype(np.int32)
    idxs[idxs > num_clips - 1] = num_clips - 1
    out = []
    for i in range(max_num_clips):
        s, e = idxs[i], idxs[i + 1]
        out.append(np.mean(feature[s:e], axis=0) if s < e else feature[s])
    return np.asarray(out)


def test_unusable_queries_are_skipped_and_counted(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)  # --drop-empty-windows
    assert split.skipped == {"no_query": 1, "no_times": 1, "no_features": 1, "bad_window": 1, "empty_window": 1}
    assert len(split) == 3
    assert split.queries == ["where did i put the cup?", "where was the knife's box?", "where is the dog?"]
    assert split.query_idx.tolist() == [0, 5, 0]
    assert "no_features 1" in split.summary()


def test_by_default_every_query_with_numeric_times_is_kept_as_the_reference(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32)
    assert split.skipped == {"no_query": 1, "no_times": 1, "no_features": 1, "bad_window": 0, "empty_window": 0}
    assert split.query_idx.tolist() == [0, 3, 4, 5, 0]
    for text in ("when?", "how many eggs?"):  # zero-length, and ending before it starts
        i = split.query_text.index(text)
        assert (split.start[i], split.end[i]) == (0, 0)  # the reference's label: no position overlaps it


def test_clip_features_are_the_issue_slice_and_long_clips_are_pooled_as_the_reference(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32)
    a = split.clip_uids.index("clipA")
    n = int(split.video_len[a])
    # features[int(2.0 * 1.875) : int(10.0 * 1.875) + 1] = rows 3 .. 18, the reference's slice
    assert n == 16 and split.video[a, :n, 0].tolist() == list(range(3, 19))
    b = split.clip_uids.index("clipB")
    assert int(split.video_len[b]) == 32
    raw = torch.arange(400, dtype=torch.float32)[: int(200 * 1.875) + 1, None].repeat(1, 4).numpy()
    expected = reference_sampling(raw, 32)
    assert np.allclose(split.video[b, :32].float().numpy(), expected.astype(np.float16).astype(np.float32))
    assert np.allclose(pool_features(raw, 32).astype(np.float32), expected.astype(np.float16).astype(np.float32))


def test_labels_are_the_reference_best_iou_positions(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)
    for i in range(len(split)):
        n, d = int(split.num_positions[i]), float(split.duration[i])
        s = max(0.0, int(split.gt_start[i] * 1.875) / 1.875)
        e = min(int(split.gt_end[i] * 1.875) / 1.875, d)
        assert (split.start[i], split.end[i]) == reference_time_to_index(s, e, n, d)
    # clip A lasts 8 s: int(8 * 1.875) = 15 grid rows -> 8.0 s
    assert split.duration[0] == pytest.approx(15 / 1.875)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (2.0, 10.0),  # 3.75 .. 18.75: both ends truncated (floor / ceil would take row 19 too)
        (0.0, 8.0),  # 15.0 exactly: the row that starts at the clip's end is in, as the reference
        (1 / 1.875, 16 / 1.875),  # float products a hair under / at a whole row
        (0.53, 17.07),  # 0.99375 -> 0; 32.00625 -> 32
        (3.2, 4.4),  # 6.0 .. 8.25: three rows
    ],
)
def test_clip_slice_is_the_reference_formula_on_edge_cases(tmp_path, start, end):
    feats = tmp_path / "v1" / "egovlp_fp16"
    write_features(feats, "vid", 60)
    data = nlq({"vid": [("clip", start, end, [query("where?", 0.0, end - start)])]})
    path = tmp_path / "nlq.json"
    path.write_text(json.dumps(data))
    split = load_split(path, feats, max_pos_len=128)
    lo, hi = int(start * 1.875), int(end * 1.875) + 1  # utils/prepare_ego4d_dataset.py
    assert split.video[0, : int(split.video_len[0]), 0].tolist() == list(range(lo, min(hi, 60)))
    assert clip_rows(start, end) == slice(lo, hi)


@pytest.mark.parametrize("seed", range(5))
def test_time_to_index_matches_the_reference_loops_on_random_windows(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n = int(rng.integers(1, 20))
        d = float(rng.uniform(1, 100))
        s = float(rng.uniform(0, d))
        e = float(min(d, s + rng.uniform(0, d)))
        assert time_to_index(s, e, n, d) == reference_time_to_index(s, e, n, d)


def test_unannotated_queries_are_kept_for_test(tree):
    path, feats = tree
    test = load_split(path, feats, max_pos_len=32, require_times=False)
    assert test.skipped["no_times"] == 0 and "what did i cut?" in test.query_text
    assert np.isnan(test.gt_start[test.query_text.index("what did i cut?")])


def test_a_bad_feature_file_is_a_data_error_naming_it(tree):
    path, feats = tree
    (feats / "vidA.pt").write_bytes(b"not a tensor at all")
    with pytest.raises(DataError, match="vidA.pt"):
        load_split(path, feats)
    torch.save({"x": torch.zeros(3)}, feats / "vidA.pt")
    with pytest.raises(DataError, match="vidA.pt"):
        load_split(path, feats)


def test_a_broken_nlq_file_is_a_data_error_naming_it(tmp_path):
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(DataError, match="x.json"):
        load_split(tmp_path / "x.json", tmp_path)
    with pytest.raises(DataError, match="missing.json"):
        load_split(tmp_path / "missing.json", tmp_path)


def fake_text(split, dim=3):
    lengths = torch.tensor([len(q.split()) + 2 for q in split.queries])
    feats = torch.zeros(len(split.queries), int(lengths.max()), dim, dtype=torch.float16)
    for i, n in enumerate(lengths):
        feats[i, :n] = i + 1
    return TextTable(feats, lengths)


def reference_highlight(s_inds, e_inds, lens, width, extend=0.1):
    """utils/data_loader.train_collate_fn's h_labels loop."""
    h = np.zeros((len(s_inds), width), dtype=np.int32)
    for idx in range(len(s_inds)):
        st, et = s_inds[idx], e_inds[idx]
        extend_len = round(extend * float(et - st + 1))
        if extend_len > 0:
            h[idx][max(0, st - extend_len) : min(et + extend_len, lens[idx] - 1) + 1] = 1
        else:
            h[idx][st : et + 1] = 1
    return h


def test_batches_are_padded_masked_and_labelled_as_the_reference(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)
    loader = Loader(split, fake_text(split), batch_size=2, extend=0.3)
    batches = list(loader.batches(0))
    assert len(batches) == len(loader) == 2
    b = batches[0]
    assert b.video.shape == (2, 16, 4) and b.video.dtype == torch.float32
    assert b.video_mask.sum(1).tolist() == [16, 16]
    assert b.query.shape[0] == 2 and b.query_mask.sum(1).tolist() == [8, 7]
    assert b.query_text == ["where did i put the cup?", "where was the knife's box?"]
    assert b.clip_uid == ["clipA", "clipA"] and b.query_idx == [0, 5]
    assert torch.equal(b.start, torch.from_numpy(split.start[:2]))
    expected = reference_highlight(split.start[:2].tolist(), split.end[:2].tolist(), [16, 16], 16, extend=0.3)
    assert np.array_equal(b.highlight.numpy(), expected)
    last = batches[1]
    assert last.video.shape == (1, 32, 4) and len(last) == 1


def test_loader_moves_its_tables_once_and_batches_follow(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)
    loader = Loader(split, fake_text(split), batch_size=3).to("cpu")
    b = next(loader.batches(0))
    assert all(t.device.type == "cpu" for t in (b.video, b.query, b.start, b.highlight, b.duration))
    assert b.to("cpu").query_text == b.query_text and len(b) == 3


def test_shuffle_is_a_function_of_seed_and_epoch_so_resume_is_exact(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)
    loader = Loader(split, fake_text(split), batch_size=1, shuffle=True, seed=3)
    epoch1 = [b.index.tolist() for b in loader.batches(1)]
    assert epoch1 == [b.index.tolist() for b in loader.batches(1)]
    assert [b.index.tolist() for b in loader.batches(1, start=1)] == epoch1[1:]
    assert sorted(sum(epoch1, [])) == [0, 1, 2]
    orders = {tuple(sum((b.index.tolist() for b in loader.batches(e)), [])) for e in range(8)}
    assert len(orders) > 1


def test_ranks_split_one_permutation_into_equal_shares(tree):
    path, feats = tree
    split = load_split(path, feats, max_pos_len=32, keep_empty=False)
    shares = [
        [
            i
            for b in Loader(split, None, batch_size=1, shuffle=True, seed=1, rank=r, world_size=2).batches(0)
            for i in b.index.tolist()
        ]
        for r in range(2)
    ]
    assert len(shares[0]) == len(shares[1]) == 2
    assert set(shares[0]) | set(shares[1]) == {0, 1, 2}


def test_naq_jitter_redraws_labels_per_epoch_deterministically(tmp_path):
    feats = tmp_path / "f"
    write_features(feats, "v", 600)
    qs = [query(f"where is thing {i}?", 20.0 + i, 40.0 + i) for i in range(8)]
    (tmp_path / "a.json").write_text(json.dumps(nlq({"v": [("c", 0.0, 300.0, qs)]})))
    split = load_split(tmp_path / "a.json", feats, max_pos_len=128, naq_jitter=True)
    loader = Loader(split, None, batch_size=8, seed=0)
    labels = [tuple(next(loader.batches(e)).start.tolist()) for e in range(4)]
    assert len(set(labels)) > 1
    assert labels[2] == tuple(next(loader.batches(2)).start.tolist())
    plain = Loader(split, None, batch_size=8, naq_jitter=False)
    assert next(plain.batches(0)).start.tolist() == split.start.tolist()
    b = next(loader.batches(0))
    assert (b.start <= b.end).all() and (b.end < b.video_len).all()
    # NaQ widens (and shifts) windows: on average the jittered answers are longer
    widths = [float((x.end - x.start).float().mean()) for x in (next(loader.batches(e)) for e in range(6))]
    assert sum(widths) / len(widths) > float(np.mean(split.end - split.start))


def test_evaluating_a_loader_gives_challenge_results_the_official_evaluator_scores_alike(tree):
    from engine.training.config import ModelConfig
    from engine.training.metrics import challenge_json, evaluate_loader, evaluate_predictions
    from engine.training.model import VSLNet

    path, feats = tree
    split = load_split(path, feats, max_pos_len=32)
    loader = Loader(split, fake_text(split), batch_size=2)
    torch.manual_seed(0)
    model = VSLNet(ModelConfig(dim=8, num_heads=2, max_pos_len=32, video_dim=4, text_dim=3))
    figs, results = evaluate_loader(model, loader)
    assert model.training  # restored
    # every query with times is predicted, the zero-length and the reversed window too
    assert [(r["clip_uid"], r["query_idx"]) for r in results] == [
        ("clipA", 0),
        ("clipA", 3),
        ("clipA", 4),
        ("clipA", 5),
        ("clipB", 0),
    ]
    for r, n, d in zip(results, split.num_positions, split.duration):
        assert len(r["predicted_times"]) == 5
        for s, e in r["predicted_times"]:
            assert 0.0 <= s < e <= d + 1e-9
            assert (s / d * n) == pytest.approx(round(s / d * n))  # on the position grid
    assert figs == pytest.approx(evaluate_predictions(path, challenge_json(results)))
    test = load_split(path, feats, max_pos_len=32, require_times=False)
    figs, results = evaluate_loader(model, Loader(test, fake_text(test), batch_size=4))
    assert figs is None and len(results) == len(test)
