"""The official Ego4D NLQ figures, as `NLQ/VSLNet/utils/evaluate_ego4d_nlq.py` defines them.

For each predicted query (ground truth found by (clip_uid, annotation_uid) and `query_idx`,
the index in that annotation's `language_queries`):

- IoU of each predicted [start, end] with the ground-truth [clip_start_sec, clip_end_sec];
- R@k at threshold t: 1 when any of the first k predictions has IoU strictly ABOVE t;
- mIoU: the IoU of the FIRST prediction (the reference takes the mean of the top 3 of a
  one-element row, i.e. that one value).

Each figure is the mean over the predicted queries, in percent, under the keys of `METRIC_KEYS`
(`R1@0.3` ... `mIoU`). One deliberate difference: a zero-length prediction on a zero-length
ground truth (union 0) has IoU 0 here; the reference divides 0 by 0 and its mIoU becomes NaN.

- `nlq_metrics(pred (N, K, 2), gt (N, 2))`: vectorised numpy, for training-time evaluation.
- `evaluate_predictions(ground_truth, predictions)`: challenge-format predictions (dict or
  list of results) against an NLQ JSON (dict or path); raises DataError on unknown queries.
- `challenge_json(results)`: the `{"version": "1.0", "challenge": "ego4d_nlq_challenge", ...}` wrapper.
- `evaluate_loader(model, loader, ...)`: run a model over a `Loader`, return (figures, results).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine.errors import DataError

THRESHOLDS = (0.3, 0.5, 0.01)
TOP_K = (1, 3, 5)
METRIC_KEYS = tuple(f"R{k}@{t}" for k in TOP_K for t in THRESHOLDS) + ("mIoU",)
# The figures the issue lists first, in display order.
HEADLINE_KEYS = ("R1@0.3", "R1@0.5", "R3@0.3", "R3@0.5", "R5@0.3", "R5@0.5", "R1@0.01", "R5@0.01", "mIoU")


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of windows pred (..., 2) with gt broadcast against them; union 0 gives 0."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    inter = np.maximum(0.0, np.minimum(pred[..., 1], gt[..., 1]) - np.maximum(pred[..., 0], gt[..., 0]))
    union = np.maximum(0.0, np.maximum(pred[..., 1], gt[..., 1]) - np.minimum(pred[..., 0], gt[..., 0]))
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nlq_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Figures for N queries: pred (N, K, 2) seconds, best first; gt (N, 2). R@k uses the first min(k, K)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 2 or gt.shape != (pred.shape[0], 2):
        raise ValueError(f"expected pred (N, K, 2) and gt (N, 2), got {pred.shape} and {gt.shape}")
    if pred.shape[0] == 0:
        return {k: 0.0 for k in METRIC_KEYS}
    overlaps = iou(pred, gt[:, None, :])  # (N, K)
    out: dict[str, float] = {}
    for k in TOP_K:
        for t in THRESHOLDS:
            out[f"R{k}@{t}"] = float((overlaps[:, :k] > t).any(axis=1).mean() * 100.0)
    out["mIoU"] = float(overlaps[:, 0].mean() * 100.0)
    return {key: out[key] for key in METRIC_KEYS}


def _load(obj, what: str):
    if isinstance(obj, (str, os.PathLike)):
        try:
            with Path(obj).open(encoding="utf-8") as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{obj}: cannot read the {what} JSON ({exc})", path=str(obj)) from None
    return obj


def evaluate_predictions(ground_truth, predictions) -> dict[str, float]:
    """Official figures of challenge-format predictions against an NLQ file (dicts or paths)."""
    gt = _load(ground_truth, "ground-truth NLQ")
    preds = _load(predictions, "predictions")
    if isinstance(preds, dict):
        if preds.get("version") != "1.0" or preds.get("challenge") != "ego4d_nlq_challenge":
            raise DataError('predictions: expected "version": "1.0" and "challenge": "ego4d_nlq_challenge"')
        preds = preds.get("results")
    if not isinstance(preds, list):
        raise DataError("predictions: expected a `results` list")
    annotations = {}
    for video in gt.get("videos", []):
        for clip in video.get("clips", []):
            for ann in clip.get("annotations", []):
                annotations[(clip.get("clip_uid"), ann.get("annotation_uid"))] = ann.get("language_queries", [])
    if not preds:
        return {k: 0.0 for k in METRIC_KEYS}
    k_max = max(len(p.get("predicted_times") or []) for p in preds)
    if k_max == 0:
        raise DataError("predictions: every result has an empty predicted_times list")
    pred = np.zeros((len(preds), k_max, 2))
    gt_times = np.zeros((len(preds), 2))
    for i, p in enumerate(preds):
        key = (p.get("clip_uid"), p.get("annotation_uid"))
        queries = annotations.get(key)
        q = p.get("query_idx")
        if queries is None or not isinstance(q, int) or not 0 <= q < len(queries):
            raise DataError(
                f"predictions: results[{i}] (clip {key[0]}, annotation {key[1]}, query {q}) "
                "is not in the ground-truth file"
            )
        times = p.get("predicted_times") or []
        if not times:
            raise DataError(f"predictions: results[{i}] has no predicted_times")
        rows = np.asarray(times, dtype=np.float64).reshape(-1, 2)
        # fewer than k_max predictions: repeat the last; R@k with k > its count then equals R@count
        pred[i, : len(rows)] = rows
        pred[i, len(rows) :] = rows[-1]
        gt_times[i] = (float(queries[q]["clip_start_sec"]), float(queries[q]["clip_end_sec"]))
    return nlq_metrics(pred, gt_times)


def challenge_json(results: list[dict]) -> dict:
    return {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": results}


def evaluate_loader(model, loader, *, topk: int = 5, device=None, autocast_dtype=None, text_encoder=None):
    """Run `model` over every batch of `loader` (in order, eval mode).

    A loader without a text table (unfrozen text encoder) needs `text_encoder`, whose
    `encode_batch` makes each batch's query features.

    Returns (figures or None when the split has no ground-truth times, challenge-format results).
    """
    import torch

    from engine.training.model import indices_to_seconds

    was_training = model.training
    model.eval()
    text_module = text_encoder.trainable_module() if text_encoder is not None else None
    text_was_training = text_module is not None and text_module.training
    if text_module is not None:
        text_module.eval()
    results: list[dict] = []
    pred_rows, gt_rows = [], []
    split = loader.split
    device = torch.device(device) if device is not None else loader.device
    with torch.inference_mode():
        for batch in loader.batches(0):
            batch = batch.to(device)
            if batch.query is None:
                batch.query, batch.query_mask = text_encoder.encode_batch(batch.query_text, device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = model(batch.video, batch.video_mask, batch.query, batch.query_mask)
            idx = model.predict(out, batch.video_mask, topk=topk)
            secs = indices_to_seconds(idx, batch.video_len, batch.duration).cpu().numpy()
            rows = batch.index.cpu().numpy()
            pred_rows.append(secs)
            gt_rows.append(np.stack([split.gt_start[rows], split.gt_end[rows]], axis=1))
            for j in range(len(batch)):
                results.append(
                    {
                        "clip_uid": batch.clip_uid[j],
                        "annotation_uid": batch.annotation_uid[j],
                        "query_idx": batch.query_idx[j],
                        "predicted_times": [[float(s), float(e)] for s, e in secs[j]],
                    }
                )
    model.train(was_training)
    if text_module is not None:
        text_module.train(text_was_training)
    if not pred_rows:
        return None, results
    gt = np.concatenate(gt_rows)
    if not np.isfinite(gt).all():
        return None, results
    return nlq_metrics(np.concatenate(pred_rows), gt), results
