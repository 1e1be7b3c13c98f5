"""The sample generator: layout, real-file quirks, splits, determinism, learnability."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import sample_vocab as vocab
from engine.errors import UserError
from engine.sample import (
    DEFAULT_SEED,
    FEATURES_PER_SEC,
    signature_vector,
    write_sample,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
ANN = (
    "ego4d.json",
    "v1/annotations/narration.json",
    "v1/annotations/nlq_train.json",
    "v1/annotations/nlq_val.json",
    "v1/annotations/nlq_test_unannotated.json",
    "README.md",
)
NLQ = {"train": "nlq_train.json", "val": "nlq_val.json", "test": "nlq_test_unannotated.json"}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
    write_sample(root, videos=6, features=True)
    return root


def _load(root: Path, rel: str):
    with open(root / rel, encoding="utf-8") as f:
        return json.load(f)


def _queries(root: Path, split: str):
    """(video, clip, language_query) of one NLQ split file."""
    for v in _load(root, f"v1/annotations/{NLQ[split]}")["videos"]:
        for c in v["clips"]:
            for a in c["annotations"]:
                assert a["annotation_uid"]
                for q in a["language_queries"]:
                    yield v, c, q


def test_regenerating_with_defaults_reproduces_committed_sample_data(tmp_path):
    assert SAMPLE.is_dir(), "sample_data/ is committed with the generator"
    write_sample(tmp_path)
    for rel in ANN:
        assert (tmp_path / rel).read_bytes() == (SAMPLE / rel).read_bytes(), rel
    ours = sorted(p.name for p in (tmp_path / "v1/egovlp_fp16").iterdir())
    assert ours == sorted(p.name for p in (SAMPLE / "v1/egovlp_fp16").iterdir())
    for name in ours[:3]:
        a = torch.load(tmp_path / "v1/egovlp_fp16" / name, weights_only=True)
        b = torch.load(SAMPLE / "v1/egovlp_fp16" / name, weights_only=True)
        assert torch.equal(a, b)


def test_committed_sample_data_stays_under_15_mb():
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 15 * 1024 * 1024


def test_every_nlq_answer_lies_inside_its_clip(small):
    clips = {c["clip_uid"]: c for c in _load(small, "ego4d.json")["clips"]}
    n = 0
    for split in ("train", "val"):
        for v, c, q in _queries(small, split):
            assert clips[c["clip_uid"]]["video_uid"] == v["video_uid"]
            assert c["video_start_sec"] == clips[c["clip_uid"]]["video_start_sec"]
            length = c["video_end_sec"] - c["video_start_sec"]
            assert 0.0 <= q["clip_start_sec"] <= q["clip_end_sec"] <= length + 1e-6
            assert q["video_start_sec"] == pytest.approx(c["video_start_sec"] + q["clip_start_sec"], abs=2e-3)
            assert q["video_end_sec"] == pytest.approx(c["video_start_sec"] + q["clip_end_sec"], abs=2e-3)
            n += 1
    assert n > 20


def test_test_split_queries_carry_no_answer_times(small):
    qs = [q for _, _, q in _queries(small, "test")]
    assert qs
    for q in qs:
        assert "query" in q
        assert not {"clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec"} & q.keys()


def test_narrations_have_ego4d_fields_and_lie_in_their_video(small):
    durations = {v["video_uid"]: v["duration_sec"] for v in _load(small, "ego4d.json")["videos"]}
    narr = _load(small, "v1/annotations/narration.json")
    assert set(narr) == set(durations)  # every video is narrated, val and test included
    for uid, passes in narr.items():
        for name, p in passes.items():
            assert name in ("narration_pass_1", "narration_pass_2")
            assert p["summaries"]
            for n in p["narrations"]:
                assert isinstance(n["timestamp_sec"], float) and 0 <= n["timestamp_sec"] <= durations[uid]
                assert n["timestamp_frame"] == round(n["timestamp_sec"] * 30)
                assert n["narration_text"].startswith(("#C C ", "#O "))
                assert n["annotation_uid"]


def test_features_are_fp16_256d_with_1_875_rows_per_second(small):
    videos = _load(small, "ego4d.json")["videos"]
    for v in videos:
        t = torch.load(small / "v1/egovlp_fp16" / f"{v['video_uid']}.pt", weights_only=True)
        assert t.dtype == torch.float16
        assert t.shape == (math.ceil(v["duration_sec"] * FEATURES_PER_SEC), 256)
        assert torch.isfinite(t).all()


def test_splits_use_disjoint_videos(small):
    uids = {s: {v["video_uid"] for v in _load(small, f"v1/annotations/{f}")["videos"]} for s, f in NLQ.items()}
    assert uids["train"] and uids["val"] and uids["test"]
    assert not uids["train"] & uids["val"] and not uids["train"] & uids["test"] and not uids["val"] & uids["test"]
    split_em = {v["video_uid"]: v["split_em"] for v in _load(small, "ego4d.json")["videos"]}
    for s, us in uids.items():
        assert {split_em[u] for u in us} == {s}


def test_real_file_quirks_are_all_present(small):
    q_train = [q for _, _, q in _queries(small, "train")]
    q_val = [q for _, _, q in _queries(small, "val")]
    assert any(q["template"] is None for q in q_train)
    assert any("query" not in q for q in q_train)
    assert any(q["clip_start_sec"] == q["clip_end_sec"] for q in q_train)
    assert any("’" in q.get("query", "") for q in q_train)
    assert any(q["template"] is None for q in q_val) and any("’" in q["query"] for q in q_val)

    narr = _load(small, "v1/annotations/narration.json")
    texts = [n["narration_text"] for p in narr.values() for x in p.values() for n in x["narrations"]]
    assert any(t.endswith("#unsure") for t in texts)
    assert any(t.startswith("#O ") for t in texts)
    # a field outside the official narration schema (`_unmapped_timestamp_sec` is in it)
    known = {"timestamp_sec", "timestamp_frame", "_unmapped_timestamp_sec", "narration_text", "annotation_uid"}
    assert any(set(n) - known for p in narr.values() for x in p.values() for n in x["narrations"])
    unsorted = dup = False
    for p in narr.values():
        ts = [n["timestamp_sec"] for n in p.get("narration_pass_1", {"narrations": []})["narrations"]]
        unsorted |= any(b < a for a, b in zip(ts, ts[1:]))
        dup |= len(set(ts)) < len(ts)
    assert unsorted and dup
    assert any(set(p) == {"narration_pass_2"} for p in narr.values())
    with_clips = {c["video_uid"] for c in _load(small, "ego4d.json")["clips"]}
    assert set(narr) - with_clips, "a narrated video without clips"


def test_same_seed_same_tree_other_seed_other_tree(tmp_path, small):
    write_sample(tmp_path / "again", videos=6, features=True)
    write_sample(tmp_path / "other", videos=6, features=False, seed=DEFAULT_SEED + 1)
    for rel in ANN[:5]:
        assert (tmp_path / "again" / rel).read_bytes() == (small / rel).read_bytes()
        assert (tmp_path / "other" / rel).read_bytes() != (small / rel).read_bytes()
    for p in (small / "v1/egovlp_fp16").iterdir():
        a = torch.load(p, weights_only=True)
        assert torch.equal(a, torch.load(tmp_path / "again/v1/egovlp_fp16" / p.name, weights_only=True))


def test_no_features_writes_empty_feature_files(tmp_path):
    s = write_sample(tmp_path, videos=5, features=False)
    pts = list((tmp_path / "v1/egovlp_fp16").glob("*.pt"))
    assert len(pts) == 5 == s.feature_files
    assert all(p.stat().st_size == 0 for p in pts)


def test_more_than_100_videos_switch_to_ego4d_lengths(tmp_path):
    s = write_sample(tmp_path, videos=101, features=False)
    assert s.profile == "ego4d"
    per_video = s.narrations[1] / s.videos
    assert 170 <= per_video <= 250  # ~210 per pass, as in Ego4D (~4M over both passes at 9.6K videos)
    assert s.split_videos["val"] == s.split_videos["test"] == round(101 * 0.104)


def test_object_signature_peaks_inside_answers_of_committed_sample():
    """The learnability premise: where a query's object is unique in its clip, the features
    over its answer window are the most similar to that object's vector."""
    hit = total = 0
    for v, c, q in _queries(SAMPLE, "train"):
        if q["template"] != vocab.T_SEE or q["clip_start_sec"] == q["clip_end_sec"]:
            continue
        f = torch.load(SAMPLE / "v1/egovlp_fp16" / f"{v['video_uid']}.pt", weights_only=True).float().numpy()
        r0 = int(c["video_start_sec"] * FEATURES_PER_SEC)
        r1 = math.ceil(c["video_end_sec"] * FEATURES_PER_SEC)
        rows = f[r0:r1] / np.linalg.norm(f[r0:r1], axis=1, keepdims=True)
        peak = (r0 + int(np.argmax(rows @ signature_vector(DEFAULT_SEED, q["slot_x"]))) + 0.5) / FEATURES_PER_SEC
        total += 1
        hit += q["video_start_sec"] - 0.6 <= peak <= q["video_end_sec"] + 0.6
    assert total >= 30
    assert hit / total >= 0.9


def test_cli_writes_tree_and_prints_summary(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "sample", str(tmp_path / "t"), "--videos", "4", "--no-features", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["videos"] == 4 and d["narrations_pass_1"] > 0
    assert (tmp_path / "t/v1/annotations/nlq_val.json").is_file()


def test_cli_refuses_a_file_as_output_folder(tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    out = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "sample", str(target), "--no-features"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"nlq-tui: error: {target} is a file; give a folder to write the sample tree into"
    ]


def test_refuses_to_write_into_a_folder_that_is_not_a_sample_tree(tmp_path):
    (tmp_path / "ego4d.json").write_text("{}")
    with pytest.raises(UserError, match="not empty and is not a sample tree"):
        write_sample(tmp_path, videos=2, features=False)
    assert (tmp_path / "ego4d.json").read_text() == "{}"


def test_rewriting_a_sample_tree_drops_its_stale_feature_files(tmp_path):
    write_sample(tmp_path, videos=5, features=False)
    write_sample(tmp_path, videos=3, features=False, seed=7)
    uids = {v["video_uid"] for v in _load(tmp_path, "ego4d.json")["videos"]}
    assert {p.stem for p in (tmp_path / "v1/egovlp_fp16").glob("*.pt")} == uids
