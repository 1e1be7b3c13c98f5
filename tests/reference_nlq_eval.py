"""An independent, line-by-line restatement of EGO4D/episodic-memory NLQ/VSLNet/utils/evaluate_ego4d_nlq.py.

Written as plain loops, to hold the project's vectorised figures (engine.training.metrics) to the
official evaluator's behaviour, quirks included:

- the ground truth is keyed by (clip_uid, annotation_uid); a later duplicate key replaces an
  earlier one, and the denominator it prints counts EVERY language query of the file;
- IoU is inter / union with union = max(0, ...): a zero-length prediction on the same instant
  as a zero-length answer is 0 / 0 = NaN (numpy warns and goes on), never a hit, and a NaN mIoU;
- a hit at threshold t is IoU strictly above t among the first k predictions;
- mIoU takes the mean of the top 3 of a one-element row: the first prediction's IoU;
- query_idx indexes `language_queries` as Python does (a negative index counts from the end).

`evaluate(predictions, ground_truth)` returns (figures in percent keyed "R1@0.3" ... "mIoU",
instances evaluated, ground-truth queries), i.e. its "Evaluated: N / M instances" line.
"""

from __future__ import annotations

import math

THRESHOLDS = (0.3, 0.5, 0.01)
TOP_K = (1, 3, 5)


def window_iou(pred: list[float], gt: list[float]) -> float:
    inter = max(0.0, min(pred[1], gt[1]) - max(pred[0], gt[0]))
    union = max(0.0, max(pred[1], gt[1]) - min(pred[0], gt[0]))
    return inter / union if union != 0 else math.nan  # numpy's 0/0


def evaluate(predictions: list[dict], ground_truth: dict) -> tuple[dict[str, float], int, int]:
    annotations: dict[tuple, dict] = {}
    total = 0
    for video in ground_truth["videos"]:
        for clip in video["clips"]:
            for ann in clip["annotations"]:
                annotations[(clip["clip_uid"], ann["annotation_uid"])] = ann
                total += len(ann["language_queries"])
    hits: dict[tuple[int, float], list[bool]] = {(k, t): [] for k in TOP_K for t in THRESHOLDS}
    first_iou: list[float] = []
    for pred in predictions:
        key = (pred["clip_uid"], pred["annotation_uid"])
        assert key in annotations, "Instance not present!"
        query = annotations[key]["language_queries"][pred["query_idx"]]
        gt = [query["clip_start_sec"], query["clip_end_sec"]]
        ious = [window_iou(window, gt) for window in pred["predicted_times"]]
        first_iou.append(ious[0])
        for k, t in hits:
            hits[(k, t)].append(any(iou > t for iou in ious[:k]))  # NaN > t is False
    n = len(predictions)
    figures = {f"R{k}@{t}": 100.0 * sum(hits[(k, t)]) / n for k in TOP_K for t in THRESHOLDS}
    figures["mIoU"] = 100.0 * sum(first_iou) / n  # NaN if any first IoU is NaN, as np.mean
    return figures, n, total
