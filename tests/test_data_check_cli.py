"""`nlq-tui data check` in a real subprocess: figures, warnings, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from ego4d_fixtures import NARRATION, NLQ, edit_json, quirky_tree, video, write_tree


def _run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NLQ_TUI_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "nlq_tui", "data", "check", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_json_report_has_counts_and_counted_warnings(tmp_path):
    root = quirky_tree(tmp_path / "d")
    r = _run(str(root), "--json", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["errors"] == []
    c = out["counts"]
    assert c["narrations"] == {"pass_1": 15, "pass_2": 2}
    assert c["queries"] == {"train": 7, "val": 1, "test": 0}
    assert (c["clips"], c["val_videos"], c["videos_with_features"]) == (3, 1, 4)
    assert out["feature_dirs"] == [{"name": "egovlp_fp16", "dim": 256, "files": 4, "selected": True, "empty": 0}]
    codes = {w["code"]: w["count"] for w in out["warnings"]}
    assert codes["duplicate_timestamps"] == 1 and codes["template_null"] == 1
    assert all(set(w) == {"level", "code", "file", "message", "count"} for w in out["warnings"])


def test_plain_report_prints_the_figures(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b", split="val")])
    r = _run(str(root), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "narrations pass 1" in r.stdout and "OK: no errors." in r.stdout
    assert "egovlp_fp16" in r.stdout and "dim   256" in r.stdout
    # Not a terminal: progress is one short line per stage on stderr, stdout stays clean.
    assert "nlq-tui: narration.json..." in r.stderr.splitlines()
    r = _run(str(root), tmp_path=tmp_path)
    assert r.stderr.splitlines() == ["nlq-tui: reading cache...", "nlq-tui: feature files..."]


def test_broken_files_exit_2_with_one_line_per_error_and_no_traceback(tmp_path):
    root = write_tree(tmp_path / "d", videos=[video("a"), video("b", split="val")])
    edit_json(root, NARRATION, lambda d: d["a"]["narration_pass_1"]["narrations"][2].update(timestamp_sec="2.5"))
    (root / NLQ["train"]).write_text('{"videos": [{"video_uid": "a", "cl')
    torch.save({"weights": torch.zeros(2)}, root / "v1/egovlp_fp16/b.pt")
    r = _run(str(root), tmp_path=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    err_lines = [l for l in r.stderr.splitlines() if l.startswith("nlq-tui: error:")]
    assert (
        len(err_lines) == 1
        and "narration.json" in err_lines[0]
        and "narrations[2].timestamp_sec is a string" in err_lines[0]
    )

    r = _run(str(root), "--json", tmp_path=tmp_path)
    assert r.returncode == 2
    errors = json.loads(r.stdout)["errors"]
    by_file = {e["file"]: e["message"] for e in errors}
    assert "video 'a' narration_pass_1.narrations[2].timestamp_sec is a string" in by_file[NARRATION]
    assert "truncated" in by_file[NLQ["train"]]
    assert "b.pt" in by_file["v1/egovlp_fp16"] and "holds a dict" in by_file["v1/egovlp_fp16"]
    assert all("\n" not in e["message"] for e in errors)


def test_missing_root_and_missing_feature_folder_exit_2(tmp_path):
    r = _run(str(tmp_path / "nope"), tmp_path=tmp_path)
    assert r.returncode == 2 and "data root not found" in r.stderr and "Traceback" not in r.stderr
    root = write_tree(tmp_path / "d", videos=1)
    r = _run(str(root), "--features", "slowfast8x8_r101_k400", "--json", tmp_path=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (e,) = json.loads(r.stdout)["errors"]
    assert "slowfast8x8_r101_k400" in e["message"] and "egovlp_fp16" in e["message"]


def test_every_quirk_in_sample_data_is_reported_by_data_check(tmp_path):
    """The committed sample puts each real-file quirk in on purpose; `data check` must name each."""
    repo = Path(__file__).resolve().parents[1]
    r = _run(str(repo / "sample_data"), "--json", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["errors"] == []
    reported = {(w["file"], w["code"]): w["count"] for w in out["warnings"]}
    expected = {
        (NLQ["train"], "curly_quotes"), (NLQ["train"], "template_null"),
        (NLQ["train"], "zero_length_answer"), (NLQ["train"], "query_missing"),
        (NLQ["val"], "curly_quotes"), (NLQ["val"], "template_null"), (NLQ["val"], "zero_length_answer"),
        (NLQ["test"], "curly_quotes"),
        (NARRATION, "unsorted_timestamps"), (NARRATION, "duplicate_timestamps"),
        (NARRATION, "only_pass_2"), (NARRATION, "video_without_clips"), (NARRATION, "curly_quotes"),
        (NARRATION, "unsure_narrations_pass_1"), (NARRATION, "other_person_narrations_pass_1"),
        (NARRATION, "unsure_narrations_pass_2"), (NARRATION, "other_person_narrations_pass_2"),
        (NARRATION, "unknown_field"),
    }  # fmt: skip
    assert set(reported) == expected
    # the counts are the files' own, not just "some"
    with open(repo / "sample_data" / NLQ["train"], encoding="utf-8") as f:
        train = [
            q
            for v in json.load(f)["videos"]
            for c in v["clips"]
            for a in c["annotations"]
            for q in a["language_queries"]
        ]
    assert reported[(NLQ["train"], "query_missing")] == sum("query" not in q for q in train) > 0
    assert reported[(NLQ["train"], "template_null")] == sum(q["template"] is None for q in train) > 0
    with open(repo / "sample_data" / NARRATION, encoding="utf-8") as f:
        narr = json.load(f)
    with_extra = sum(
        any(set(x) - {"timestamp_sec", "timestamp_frame", "_unmapped_timestamp_sec", "narration_text", "annotation_uid"} for x in p["narrations"])
        for passes in narr.values() for p in passes.values()
    )  # fmt: skip
    assert reported[(NARRATION, "unknown_field")] == with_extra > 0


def test_json_into_a_closed_pipe_is_not_a_traceback():
    import subprocess
    import sys

    # `nlq-tui data check ROOT --json | head -c 10`: the reader leaves before the end.
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlq_tui", "data", "check", "sample_data", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before it writes a byte
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_escapes_in_uids_and_paths_never_reach_the_terminal_raw(tmp_path):
    root = write_tree(tmp_path / "d\x1b]2;title\x07", videos=[video("a"), video("b", split="val")])
    evil = "x\x1b]52;c;Zm9v\x07\x1b[2J"
    edit_json(
        root, NARRATION, lambda d: d.update({evil: {"narration_pass_1": {"narrations": [{"timestamp_sec": True}]}}})
    )
    r = _run(str(root), tmp_path=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr.replace("\r\x1b[2K", "")
    assert "timestamp_sec is a boolean" in r.stderr and "␛" in r.stderr
    env = dict(os.environ, NLQ_TUI_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    edit_json(root, NARRATION, lambda d: d.pop(evil))
    w = subprocess.run(
        [sys.executable, "-m", "nlq_tui", "windows", str(root)], capture_output=True, text=True, env=env, timeout=120
    )
    assert w.returncode == 0, w.stderr
    assert "\x1b]2;" not in w.stdout and "␛]2;title" in w.stdout
