"""The official NLQ figures, pinned against a line-by-line restatement of evaluate_ego4d_nlq.py."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import reference_nlq_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import DataError
from engine.training.metrics import METRIC_KEYS, challenge_json, evaluate_predictions, nlq_metrics


def plain_official(ground_truth: dict, results: list[dict]) -> dict[str, float]:
    """evaluate_nlq_performance, restated line by line (tests/reference_nlq_eval.py)."""
    return reference_nlq_eval.evaluate(results, ground_truth)[0]


def random_case(rng: random.Random, n_clips=4, n_queries=3, k=5):
    videos, results = [], []
    for c in range(n_clips):
        queries = []
        for qi in range(n_queries):
            s = rng.uniform(0, 400)
            e = s + rng.choice([0.0, rng.uniform(0, 30), rng.uniform(0, 200)])
            queries.append({"query": f"q{c}-{qi}?", "clip_start_sec": s, "clip_end_sec": e})
        videos.append(
            {
                "video_uid": f"v{c}",
                "clips": [
                    {"clip_uid": f"c{c}", "annotations": [{"annotation_uid": f"a{c}", "language_queries": queries}]}
                ],
            }
        )
        for qi, q in enumerate(queries):
            preds = []
            for _ in range(rng.randint(1, k)):
                if rng.random() < 0.4:  # near the answer, so every threshold sees hits and misses
                    s = q["clip_start_sec"] + rng.uniform(-10, 10)
                    e = q["clip_end_sec"] + rng.uniform(-10, 10)
                else:
                    s = rng.uniform(0, 450)
                    e = s + rng.uniform(0, 60)
                preds.append([s, max(s, e)])
            results.append({"clip_uid": f"c{c}", "annotation_uid": f"a{c}", "query_idx": qi, "predicted_times": preds})
    return {"videos": videos}, results


@pytest.mark.parametrize("seed", range(20))
def test_official_figures_match_a_plain_loop_reimplementation(seed):
    gt, results = random_case(random.Random(seed))
    ours = evaluate_predictions(gt, challenge_json(results))
    expected = plain_official(gt, results)
    assert list(ours) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 100),
            st.floats(0, 50),
            st.lists(st.tuples(st.floats(0, 120), st.floats(0, 60)), min_size=5, max_size=5),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_vectorised_figures_match_the_plain_loops(cases):
    gt = np.array([[s, s + w] for s, w, _ in cases])
    pred = np.array([[[s, s + w] for s, w in preds] for _, _, preds in cases])
    ours = nlq_metrics(pred, gt)
    ground = {
        "videos": [
            {
                "clips": [
                    {
                        "clip_uid": "c",
                        "annotations": [
                            {
                                "annotation_uid": "a",
                                "language_queries": [
                                    {"clip_start_sec": float(g[0]), "clip_end_sec": float(g[1])} for g in gt
                                ],
                            }
                        ],
                    }
                ]
            }
        ]
    }
    results = [
        {"clip_uid": "c", "annotation_uid": "a", "query_idx": i, "predicted_times": pred[i].tolist()}
        for i in range(len(gt))
    ]
    expected = plain_official(ground, results)
    for key in METRIC_KEYS:
        if key == "mIoU" and np.isnan(expected[key]):
            continue  # a zero-length prediction on a zero-length answer: 0 / 0, NaN there, 0 here (documented)
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key


def test_iou_exactly_at_the_threshold_is_not_a_hit():
    gt = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])
    pred = np.array([[[0.0, 3.0]], [[0.0, 5.0]], [[0.0, 3.0000001]]])  # IoU 0.3, 0.5, just above 0.3
    m = nlq_metrics(pred, gt)
    assert m["R1@0.3"] == pytest.approx(200 / 3)  # 0.5 and 0.30000001 are above 0.3; 0.3 is not
    assert m["R1@0.5"] == 0.0  # 0.5 is not above 0.5
    assert m["R1@0.01"] == 100.0
    assert m["mIoU"] == pytest.approx(100 * (0.3 + 0.5 + 0.30000001) / 3)


def test_recall_at_k_looks_at_the_first_k_and_miou_at_the_first_only():
    gt = np.array([[10.0, 20.0]])
    far, exact = [50.0, 60.0], [10.0, 20.0]
    m = nlq_metrics(np.array([[far, far, exact, far, far]]), gt)
    assert (m["R1@0.5"], m["R3@0.5"], m["R5@0.5"], m["mIoU"]) == (0.0, 100.0, 100.0, 0.0)
    m = nlq_metrics(np.array([[far, far, far, exact, far]]), gt)
    assert (m["R3@0.5"], m["R5@0.5"]) == (0.0, 100.0)


def test_touching_windows_do_not_overlap_and_zero_length_pairs_score_zero():
    gt = np.array([[10.0, 20.0], [5.0, 5.0]])
    m = nlq_metrics(np.array([[[20.0, 30.0]], [[5.0, 5.0]]]), gt)
    assert m["R1@0.01"] == 0.0 and m["mIoU"] == 0.0
    # the official evaluator divides 0 by 0 there: the same misses, but a NaN mIoU (our one deliberate difference)
    official = reference_nlq_eval.evaluate(
        [{"clip_uid": "c", "annotation_uid": "a", "query_idx": 0, "predicted_times": [[5.0, 5.0]]}],
        {"videos": [{"clips": [{"clip_uid": "c", "annotations": [{"annotation_uid": "a", "language_queries": [
            {"clip_start_sec": 5.0, "clip_end_sec": 5.0}]}]}]}]},
    )[0]  # fmt: skip
    assert official["R1@0.01"] == 0.0 and np.isnan(official["mIoU"])


def test_a_zero_length_answer_is_a_miss_for_any_window_of_positive_length():
    gt = np.array([[5.0, 5.0]] * 3)
    pred = np.array([[[4.0, 6.0]], [[5.0, 5.5]], [[0.0, 100.0]]])  # around it, starting on it, covering it
    m = nlq_metrics(pred, gt)
    assert all(m[k] == 0.0 for k in m)


def test_fewer_predictions_than_k_count_what_is_there():
    gt = {
        "videos": [
            {
                "clips": [
                    {
                        "clip_uid": "c",
                        "annotations": [
                            {
                                "annotation_uid": "a",
                                "language_queries": [
                                    {"clip_start_sec": 0.0, "clip_end_sec": 10.0},
                                    {"clip_start_sec": 0.0, "clip_end_sec": 10.0},
                                ],
                            }
                        ],
                    }
                ]
            }
        ]
    }
    results = [
        {"clip_uid": "c", "annotation_uid": "a", "query_idx": 0, "predicted_times": [[50, 60], [0, 10]]},
        {"clip_uid": "c", "annotation_uid": "a", "query_idx": 1, "predicted_times": [[50, 60]] * 4 + [[0, 9]]},
    ]
    m = evaluate_predictions(gt, challenge_json(results))
    assert (m["R1@0.5"], m["R3@0.5"], m["R5@0.5"]) == (0.0, 50.0, 100.0)


def test_predictions_are_read_from_files_and_unknown_queries_are_named(tmp_path):
    gt, results = random_case(random.Random(0))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(challenge_json(results)))
    assert evaluate_predictions(tmp_path / "gt.json", tmp_path / "pred.json") == evaluate_predictions(
        gt, challenge_json(results)
    )
    bad = dict(results[0], query_idx=99)
    with pytest.raises(DataError, match="query 99"):
        evaluate_predictions(gt, challenge_json([bad]))
    with pytest.raises(DataError, match="ego4d_nlq_challenge"):
        evaluate_predictions(gt, {"version": "1.0", "results": results})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="broken.json"):
        evaluate_predictions(gt, tmp_path / "broken.json")
