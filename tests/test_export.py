import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from review_fixtures import make_group, populate, write_data_root

from engine.errors import ConfigError, DataError
from engine.export import export, parse_statuses
from engine.generation.quality import closest_template
from engine.store import CandidateStore
from engine.workspace import Workspace

# --- the official reader, reduced to its reading loop -------------------------------------
# EGO4D/episodic-memory NLQ/VSLNet/utils/prepare_ego4d_dataset.py: reformat_data() is how
# VSLNet consumes an NLQ file. Reimplemented here (no torch/tqdm) so that the export is
# checked against exactly the fields and arithmetic it uses.
CANONICAL_VIDEO_FPS = 30.0
FEATURE_WINDOW_SIZE = 16.0
FEATURES_PER_SEC = CANONICAL_VIDEO_FPS / FEATURE_WINDOW_SIZE


def get_nearest_frame(time, floor_or_ceil=None):
    return floor_or_ceil(int(time * CANONICAL_VIDEO_FPS / FEATURE_WINDOW_SIZE))


def process_question(question):
    return question.strip(" ").strip("?").lower() + "?"


def reformat_data(split_data, test_split=False):
    formatted_data = {}
    clip_video_map = {}
    for video_datum in split_data["videos"]:
        for clip_datum in video_datum["clips"]:
            clip_uid = clip_datum["clip_uid"]
            clip_video_map[clip_uid] = (
                video_datum["video_uid"],
                clip_datum["video_start_sec"],
                clip_datum["video_end_sec"],
            )
            clip_duration = clip_datum["video_end_sec"] - clip_datum["video_start_sec"]
            num_frames = get_nearest_frame(clip_duration, math.ceil)
            new_dict = {
                "fps": FEATURES_PER_SEC,
                "num_frames": num_frames,
                "timestamps": [],
                "exact_times": [],
                "sentences": [],
                "annotation_uids": [],
                "query_idx": [],
            }
            for ann_datum in clip_datum["annotations"]:
                for index, datum in enumerate(ann_datum["language_queries"]):
                    start_time = float(datum["clip_start_sec"])
                    end_time = float(datum["clip_end_sec"])
                    if "query" not in datum or not datum["query"]:
                        continue
                    new_dict["sentences"].append(process_question(datum["query"]))
                    new_dict["annotation_uids"].append(ann_datum["annotation_uid"])
                    new_dict["query_idx"].append(index)
                    new_dict["exact_times"].append([start_time, end_time])
                    new_dict["timestamps"].append(
                        [get_nearest_frame(start_time, math.floor), get_nearest_frame(end_time, math.ceil)]
                    )
            formatted_data[clip_uid] = new_dict
    return formatted_data, clip_video_map


# --------------------------------------------------------------------------------------------


@pytest.fixture
def reviewed(tmp_path):
    """A workspace with 60 candidates, some decided, and an Ego4D root to check against."""
    root = write_data_root(tmp_path / "ego4d")
    ws = Workspace(tmp_path / "ws")
    ws.set("data_root", str(root))
    ws.table("prompts").insert({"version": "v1", "system": "S", "user": "numbered narrations in, questions out"})
    ws.table("prompts").insert({"version": 2, "system": "S2", "user": "unused"})
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 60, videos=4)  # groups 4-7 lie in each video's second clip (100 s in)
    s.decide(ids[0], "accept")
    s.decide(ids[1], "edit", text="When did I last hold the red cup?")
    s.decide(ids[2], "reject", reason="ambiguous")
    s.decide(ids[3], "skip")
    s.decide(ids[7], "accept")
    s.decide(ids[31], "accept")
    s.close()
    return ws, root, ids


def test_export_reads_back_through_the_official_loop_unchanged(reviewed, tmp_path):
    ws, root, ids = reviewed
    out = tmp_path / "aug.json"
    result = export(ws, out)
    assert result.exported == 4
    formatted, clip_map = reformat_data(json.loads(out.read_text()))
    store = CandidateStore(ws).load()
    seen = {}
    for clip_uid, d in formatted.items():
        assert d["fps"] == FEATURES_PER_SEC
        for sentence, auid, qidx, exact, stamps in zip(
            d["sentences"], d["annotation_uids"], d["query_idx"], d["exact_times"], d["timestamps"]
        ):
            seen[auid] = (clip_uid, sentence, qidx, exact, stamps)
    manifest = json.loads(result.manifest.read_text())
    by_cid = {q["candidate_id"]: q for q in manifest["queries"]}
    assert set(by_cid) == {ids[0], ids[1], ids[7], ids[31]}
    for cid, prov in by_cid.items():
        c = store.candidate(cid)
        clip_uid, sentence, qidx, exact, stamps = seen[prov["annotation_uid"]]
        w = c["window"]
        assert clip_uid == c["clip_uid"] and qidx == 0
        assert clip_map[clip_uid] == (c["video_uid"], w["clip_start"], w["clip_end"])
        assert exact == [w["clip_rel_start"], w["clip_rel_end"]]
        assert stamps == [
            get_nearest_frame(w["clip_rel_start"], math.floor),
            get_nearest_frame(w["clip_rel_end"], math.ceil),
        ]
        assert sentence == process_question(store.query_text(cid))
    assert seen[by_cid[ids[1]]["annotation_uid"]][1] == "when did i last hold the red cup?"


def test_query_times_are_clip_relative_and_absolute_in_the_video(reviewed, tmp_path):
    ws, root, ids = reviewed
    out = tmp_path / "aug.json"
    export(ws, out)
    doc = json.loads(out.read_text())
    store = CandidateStore(ws).load()
    n = 0
    for video in doc["videos"]:
        for clip in video["clips"]:
            for ann in clip["annotations"]:
                q = ann["language_queries"][0]
                assert q["video_start_sec"] == pytest.approx(clip["video_start_sec"] + q["clip_start_sec"])
                assert q["video_end_sec"] == pytest.approx(clip["video_start_sec"] + q["clip_end_sec"])
                # the official template the wording matches; the source goes in the manifest
                # (null where no official template matches, as in nlq_train.json)
                if q["query"] == "When did I last hold the red cup?":
                    assert q["template"] is None
                else:
                    assert q["template"] == closest_template(q["query"]) and q["template"].startswith("Objects:")
                n += 1
    assert n == 4
    # group 6 lies in a clip that starts 100 s into its video
    cand = store.candidate(ids[31])
    assert cand["window"]["clip_start"] == 100.0
    clip = next(c for v in doc["videos"] for c in v["clips"] if c["clip_uid"] == cand["clip_uid"])
    assert (clip["video_start_sec"], clip["video_end_sec"]) == (100.0, 190.0)
    q = clip["annotations"][0]["language_queries"][0]
    assert q["clip_start_sec"] == cand["window"]["clip_rel_start"] < 90.0
    assert q["video_start_sec"] == pytest.approx(100.0 + cand["window"]["clip_rel_start"])


def test_manifest_names_sources_counts_and_the_file_hash(reviewed, tmp_path):
    ws, root, ids = reviewed
    out = tmp_path / "aug.json"
    result = export(ws, out)
    m = json.loads((tmp_path / "aug.json.manifest.json").read_text())
    assert m["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == result.sha256
    assert m["exported"] == 4 and m["data_root"] == str(root)
    assert m["counts_by_status"] == {
        "pending": 54,
        "accepted": 3,
        "edited": 1,
        "rejected": 1,
        "skipped": 1,
        "flagged": 0,
    }
    assert m["rejected_by_reason"] == {"ambiguous": 1}
    assert m["prompt_versions"] == {"v1": 4}
    assert [p["user"] for p in m["prompts"]] == ["numbered narrations in, questions out"]
    edited = next(q for q in m["queries"] if q["candidate_id"] == ids[1])
    assert edited["reviewer"] == "ann" and edited["status"] == "edited"
    assert edited["original_query"].startswith("Where did I put")
    assert edited["narration"]["text"].startswith("#C C ")


def test_status_all_takes_every_valid_candidate_but_the_rejected(reviewed, tmp_path):
    ws, root, ids = reviewed
    result = export(ws, tmp_path / "all.json", statuses=parse_statuses("all"))
    assert result.exported == 59
    cids = {q["candidate_id"] for q in json.loads(result.manifest.read_text())["queries"]}
    assert ids[2] not in cids and ids[3] in cids


def test_annotation_uids_are_stable_across_exports(reviewed, tmp_path):
    ws, root, ids = reviewed
    a = export(ws, tmp_path / "a.json")
    b = export(ws, tmp_path / "b.json", statuses=parse_statuses("all"))
    ua = {q["candidate_id"]: q["annotation_uid"] for q in json.loads(a.manifest.read_text())["queries"]}
    ub = {q["candidate_id"]: q["annotation_uid"] for q in json.loads(b.manifest.read_text())["queries"]}
    assert ua and all(ub[cid] == uid for cid, uid in ua.items())


def test_export_refuses_a_val_or_test_video_and_writes_nothing(reviewed, tmp_path):
    ws, root, ids = reviewed
    s = CandidateStore(ws, reviewer="ann")
    gk, cands, rej, meta = make_group("video-val", "clip-val", 0.0, 480.0, 10.0, number0=9000)
    s.add_group_result(gk, cands, rej, meta)
    s.decide(cands[0]["id"], "accept")
    s.close()
    out = tmp_path / "leak.json"
    with pytest.raises(DataError, match=r"1 selected candidates come from NLQ val/test videos .*video-val.*\(val\)"):
        export(ws, out)
    assert not out.exists()


def test_export_without_a_data_root_is_a_clear_error(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ConfigError, match="--data"):
        export(ws, tmp_path / "x.json")
    with pytest.raises(ConfigError, match="unknown status bogus"):
        parse_statuses("accepted,bogus")


def test_cli_export_prints_json_and_exits_2_on_a_leak(reviewed, tmp_path):
    ws, root, ids = reviewed
    out = tmp_path / "cli.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlq_tui",
            "export",
            "--workspace",
            str(ws.path),
            "--out",
            str(out),
            "--data",
            str(root),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    d = json.loads(run.stdout)
    assert d["exported"] == 4 and d["file"] == str(out) and out.exists()
    bad = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "export", "--workspace", str(ws.path), "--out", str(out), "--status", "nope"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("nlq-tui: error: --status 'nope'")
    # No --out: the workspace's exports/, stamped, as the app's Export dialog offers
    plain = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "export", "--workspace", str(ws.path), "--data", str(root), "--json"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 0, plain.stderr
    made = Path(json.loads(plain.stdout)["file"])
    assert made.parent == ws.exports_dir and made.name.startswith("nlq_aug_") and made.suffix == ".json"
    assert made.exists()


def test_generated_candidates_export_through_the_official_loop(tmp_path):
    """The whole headless path on sample_data: generate (template backend), decide, export."""
    root = Path(__file__).resolve().parent.parent / "sample_data"
    if not (root / "ego4d.json").is_file():
        pytest.skip("sample_data/ is not in this checkout")
    ws_path = tmp_path / "ws"
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlq_tui",
            "generate",
            "--data",
            str(root),
            "--workspace",
            str(ws_path),
            "--backend",
            "template",
            "--groups",
            "20",
            "--checks",
            "fast",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert gen.returncode == 0, gen.stderr
    s = CandidateStore(Workspace(ws_path), reviewer="ann")
    s.load()
    assert len(s.rows) > 20
    clean = [r.id for r in s.rows if not r.flags and r.valid]
    s.bulk(clean[1:], "accept", rule="clean")
    s.decide(clean[0], "edit", text="Where did I leave the trowel?")
    s.close()
    out = tmp_path / "aug.json"
    # No --data: generate remembered the data root in the workspace, as the app does.
    run = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "export", "--workspace", str(ws_path), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["exported"] == len(clean)
    formatted, clip_map = reformat_data(json.loads(out.read_text()))
    sentences = [q for d in formatted.values() for q in d["sentences"]]
    assert len(sentences) == len(clean) and "where did i leave the trowel?" in sentences
    store = CandidateStore(Workspace(ws_path)).load()
    for clip_uid, (video_uid, start, end) in clip_map.items():
        row = next(r for r in store.rows if r.clip_uid == clip_uid)
        w = store.candidate(row.id)["window"]
        assert (video_uid, start, end) == (row.video_uid, w["clip_start"], w["clip_end"])
        for s_, e_ in formatted[clip_uid]["exact_times"]:
            assert 0.0 <= s_ < e_ <= end - start + 1e-6


def test_a_killed_exports_leftovers_are_cleaned_and_files_get_the_umask(reviewed, tmp_path):
    ws, root, ids = reviewed
    out = tmp_path / "aug.json"
    # what a kill leaves: a temp file of a process that is gone, and a manifest renamed before its file
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".aug.json.pid{dead.stdout.strip()}.abc123.tmp"
    stale.write_text("half")
    orphan = tmp_path / "old.json.manifest.json"
    orphan.write_text(json.dumps({"file": "old.json"}))
    old = os.umask(0o022)
    try:
        result = export(ws, out)
    finally:
        os.umask(old)
    assert not stale.exists() and not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("aug", ".aug"))) == [
        "aug.json",
        "aug.json.README.md",
        "aug.json.manifest.json",
    ]
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o644 for n in ("aug.json", "aug.json.manifest.json"))
    assert json.loads(result.manifest.read_text())["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_a_full_disk_is_one_line_naming_it_and_leaves_no_file(reviewed, tmp_path, monkeypatch):
    import errno

    import engine.workspace as wsmod

    ws, root, ids = reviewed
    out = tmp_path / "full.json"
    real = wsmod.os.replace

    def full(src, dst):
        if str(dst).endswith("full.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(wsmod.os, "replace", full)
    from engine.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match=r"^the disk holding .*full\.json is full"):
        export(ws, out)
    monkeypatch.undo()
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith((".full", "full"))]
    export(ws, out)
    assert out.exists() and (tmp_path / "full.json.manifest.json").exists()
