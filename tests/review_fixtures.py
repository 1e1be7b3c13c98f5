"""Candidate fixtures shaped like the generation engine's output (the shared contract).

Used by the store, export and review tests and by bench/bench_review.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OBJECTS = ["knife", "onion", "cup", "phone", "keys", "drill", "paint brush", "towel", "bowl", "screwdriver"]
VERBS = ["picks up", "puts down", "washes", "opens", "closes", "moves", "cuts", "holds"]
PLACES = ["counter", "sink", "table", "shelf", "drawer", "floor"]
TEMPLATES = [
    "Objects: Where is object X before / after event Y?",
    "Objects: What did I put in X?",
    "Place: Where did I put X?",
    "Objects: How many X's? (quantity question)",
]


def make_group(
    video_uid: str,
    clip_uid: str,
    clip_start: float,
    clip_end: float,
    first_t: float,
    k: int = 5,
    *,
    model: str = "gpt-4o-mini",
    backend: str = "openai",
    prompt_version: str = "v1",
    rng: random.Random | None = None,
    flagged_every: int = 0,
    number0: int = 0,
) -> tuple[str, list[dict], list[dict], dict]:
    """One group of `k` consecutive narrations in a clip, and a question for each."""
    rng = rng or random.Random(0)
    group_key = f"{video_uid}:{clip_uid}:{number0}"
    narrs = []
    t = first_t
    for i in range(k):
        obj, verb, place = rng.choice(OBJECTS), rng.choice(VERBS), rng.choice(PLACES)
        narrs.append(
            {
                "uid": f"{video_uid}-n{number0 + i}",
                "text": f"#C C {verb} the {obj} on the {place}",
                "t": round(t, 3),
                "obj": obj,
                "place": place,
            }
        )
        t += rng.uniform(1.0, 6.0)
    beta = 4.0
    cands = []
    for i, n in enumerate(narrs):
        half = max(beta / 4.9, 2.0) / 2
        start = max(clip_start, n["t"] - half)
        end = min(clip_end, n["t"] + half)
        number = i + 1
        checks = {
            "duplicate_of": None,
            "near_duplicate_of": None,
            "ambiguity": 0,
            "template": rng.choice(TEMPLATES),
            "window_problems": [],
        }
        if flagged_every and (number0 + i) % flagged_every == 0:
            checks["ambiguity"] = 2
            checks["near_duplicate_of"] = f"{group_key}#1" if number != 1 else None
        cands.append(
            {
                "id": f"{group_key}#{number}",
                "video_uid": video_uid,
                "clip_uid": clip_uid,
                "group_key": group_key,
                "narration": {"uid": n["uid"], "text": n["text"], "t": n["t"], "number": number},
                "group_narrations": [{"uid": m["uid"], "text": m["text"], "t": m["t"]} for m in narrs],
                "window": {
                    "start": round(start, 3),
                    "end": round(end, 3),
                    "clip_start": clip_start,
                    "clip_end": clip_end,
                    "clip_rel_start": round(start - clip_start, 3),
                    "clip_rel_end": round(end - clip_start, 3),
                },
                "query": f"Where did I put the {n['obj']} after it was on the {n['place']}?",
                "backend": backend,
                "model": model,
                "prompt_version": prompt_version,
                "raw": json.dumps({"narration": number, "query": "..."}),
                "checks": checks,
                "status": "pending",
                "created": 1764000000.0 + number0,
            }
        )
    rejected = []
    meta = {
        "backend": backend,
        "model": model,
        "prompt_version": prompt_version,
        "tokens": {"prompt": 180, "completion": 95},
        "latency_s": 1.2,
    }
    return group_key, cands, rejected, meta


def populate(
    store,
    n_candidates: int,
    k: int = 5,
    *,
    videos: int = 20,
    seed: int = 0,
    flagged_every: int = 7,
    models: tuple[str, ...] = ("gpt-4o-mini",),
) -> list[str]:
    """Store about `n_candidates` candidates in groups of `k`; returns the candidate ids in order."""
    rng = random.Random(seed)
    ids = []
    g = 0
    while len(ids) < n_candidates:
        v = g % videos
        video_uid = f"video-{v:04d}"
        clip_uid = f"clip-{v:04d}-{(g // videos) % 3}"
        clip_start = 100.0 * ((g // videos) % 3)
        first_t = clip_start + 5.0
        gk, cands, rej, meta = make_group(
            video_uid,
            clip_uid,
            clip_start,
            clip_start + 90.0,
            first_t,
            k,
            rng=rng,
            flagged_every=flagged_every,
            number0=g * k,
            model=models[g % len(models)],
        )
        store.add_group_result(gk, cands, rej, meta)
        ids.extend(c["id"] for c in cands)
        g += 1
    return ids


def write_data_root(
    root: Path,
    videos: int = 20,
    *,
    val_videos: tuple[str, ...] = ("video-val",),
    test_videos: tuple[str, ...] = ("video-test",),
) -> Path:
    """A minimal Ego4D root: ego4d.json clips matching populate() and NLQ val/test files."""
    ann = root / "v1" / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    clips = []
    for v in range(videos):
        for c in range(3):
            clips.append(
                {
                    "clip_uid": f"clip-{v:04d}-{c}",
                    "video_uid": f"video-{v:04d}",
                    "video_start_sec": 100.0 * c,
                    "video_end_sec": 100.0 * c + 90.0,
                }
            )
    (root / "ego4d.json").write_text(
        json.dumps({"videos": [{"video_uid": f"video-{v:04d}"} for v in range(videos)], "clips": clips})
    )

    def split(vids):
        return {
            "version": "v1",
            "videos": [
                {
                    "video_uid": v,
                    "clips": [
                        {"clip_uid": f"{v}-c", "video_start_sec": 0.0, "video_end_sec": 480.0, "annotations": []}
                    ],
                }
                for v in vids
            ],
        }

    (ann / "nlq_val.json").write_text(json.dumps(split(val_videos)))
    (ann / "nlq_test_unannotated.json").write_text(json.dumps(split(test_videos)))
    (ann / "nlq_train.json").write_text(json.dumps(split(())))
    return root
