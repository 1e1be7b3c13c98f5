import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from review_fixtures import make_group, populate

import engine.store as store_mod
import engine.store.journal as journal_mod
from engine.errors import WorkspaceError
from engine.store import CandidateStore, Filter
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def test_group_results_survive_reopen_with_full_candidates(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0, k=4)
    rej = [{"group_key": gk, "narration": 5, "reason": "missing", "detail": "no question for 5", "raw": "{}"}]
    assert s.add_group_result(gk, cands, rej, meta) is True
    s.close()
    again = CandidateStore(ws).load()
    assert again.done_groups() == {gk}
    assert [r.id for r in again.rows] == [c["id"] for c in cands]
    full = again.candidate(cands[2]["id"])
    assert full["query"] == cands[2]["query"]
    assert full["group_narrations"] == cands[2]["group_narrations"]
    assert full["status"] == "pending"
    assert again.group_result(gk)["rejected"] == rej
    assert list(again.group_rejections()) == rej
    assert again.group_result(gk)["meta"] == meta


def test_storing_a_group_twice_keeps_the_first(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    assert s.add_group_result(gk, cands, rej, meta)
    changed = [dict(c, query="something else?") for c in cands]
    assert s.add_group_result(gk, changed, rej, meta) is False
    s.close()
    assert CandidateStore(ws).load().candidate(cands[0]["id"])["query"] == cands[0]["query"]


def test_a_torn_last_group_line_is_ignored_then_cut_by_the_next_writer(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    s.add_group_result(gk, cands, rej, meta)
    shard = s.log._gen_path
    s.close()
    with open(shard, "ab") as f:
        f.write(b'{"group_key": "v1:c1:99", "index": [["v1:c1:99#1", "v1"')  # a kill mid-write
    reader = CandidateStore(ws).load()
    assert reader.done_groups() == {gk}
    assert reader.problems == []
    w = CandidateStore(ws)
    gk2, c2, r2, m2 = make_group("v1", "c1", 0.0, 90.0, 40.0, number0=5)
    w.add_group_result(gk2, c2, r2, m2)
    w.close()
    assert shard.read_bytes().endswith(b"\n")
    assert CandidateStore(ws).done_groups() == {gk, gk2}


def test_second_generation_writer_is_refused_but_review_can_run_beside_it(ws):
    gen = CandidateStore(ws)
    populate(gen, 10)
    with pytest.raises(WorkspaceError, match="candidates are in use"):
        populate(CandidateStore(ws), 5, seed=1)
    review = CandidateStore(ws, reviewer="ann").load()
    review.begin_review()
    review.decide(review.rows[0].id, "accept")
    with pytest.raises(WorkspaceError, match=r"decisions are in use by pid .* \(review by "):
        CandidateStore(ws).begin_review()
    # generation keeps going; the reviewer picks the new groups up
    gk, cands, rej, meta = make_group("video-x", "clip-x", 0.0, 90.0, 3.0, number0=500)
    gen.add_group_result(gk, cands, rej, meta)
    assert review.refresh() == len(cands)
    assert review.counts()["pending"] == len(review.rows) - 1
    gen.close()
    review.close()


def test_decisions_persist_with_reason_edit_text_and_reviewer(ws):
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 10)
    s.load()
    s.decide(ids[0], "accept")
    s.decide(ids[1], "reject", reason="ambiguous")
    s.decide(ids[2], "reject")
    s.decide(ids[3], "edit", text="Where did I leave the knife?")
    s.decide(ids[4], "skip")
    s.decide(ids[5], "flag")
    s.close()
    r = CandidateStore(ws).load()
    assert [r.status(i) for i in ids[:7]] == [
        "accepted",
        "rejected",
        "rejected",
        "edited",
        "skipped",
        "flagged",
        "pending",
    ]
    assert r.state(ids[1])["reason"] == "ambiguous"
    assert r.state(ids[2])["reason"] == store_mod.DEFAULT_REASON
    assert r.query_text(ids[3]) == "Where did I leave the knife?"
    assert r.candidate(ids[3])["query"] != "Where did I leave the knife?"  # the original stays beside it
    assert r.state(ids[0])["reviewer"] == "ann"
    assert r.counts() == {"pending": 4, "accepted": 1, "edited": 1, "rejected": 2, "skipped": 1, "flagged": 1}


def test_undo_has_many_levels_and_survives_reopen(ws):
    s = CandidateStore(ws)
    ids = populate(s, 10)
    s.decide(ids[0], "accept")
    s.decide(ids[0], "reject", reason="trivial")  # changed its mind
    s.decide(ids[1], "accept")
    assert s.undo().ids == [ids[1]]
    assert s.undo().ids == [ids[0]]
    assert s.status(ids[0]) == "accepted" and s.status(ids[1]) == "pending"
    s.close()
    r = CandidateStore(ws).load()
    assert r.status(ids[0]) == "accepted" and r.status(ids[1]) == "pending"
    assert r.undo().ids == [ids[0]]
    assert r.status(ids[0]) == "pending"
    assert r.undo() is None


def test_bulk_step_is_one_entry_and_one_undo(ws):
    s = CandidateStore(ws)
    populate(s, 50, flagged_every=3)
    s.decide(s.rows[0].id, "reject", reason="duplicate")
    clean = s.select(Filter(status="open", flags="none", max_ambiguity=0))
    assert 0 < len(clean) < 50
    step = s.bulk([r.id for r in clean], "accept", rule="no flags and ambiguity 0")
    assert s.counts()["accepted"] == len(clean)
    journal = (ws.candidates_dir / "decisions.jsonl").read_text().splitlines()
    assert len(journal) == 2 and json.loads(journal[1])["ids"] == step.ids
    s.undo()
    assert s.counts()["accepted"] == 0
    assert s.status(s.rows[0].id) == "rejected"  # the earlier decision is untouched
    s.close()
    assert CandidateStore(ws).load().counts()["accepted"] == 0


def test_compaction_keeps_states_and_undo(ws, monkeypatch):
    s = CandidateStore(ws)
    ids = populate(s, 30)
    for cid in ids[:12]:
        s.decide(cid, "accept")
    s.close()
    monkeypatch.setattr(journal_mod, "COMPACT_EVERY", 10)
    r = CandidateStore(ws)
    r.begin_review()  # folds 12 entries into the snapshot
    assert (ws.candidates_dir / "decisions.jsonl").read_bytes() == b""
    assert json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())["upto_seq"] == 12
    r.decide(ids[20], "reject")
    r.close()
    again = CandidateStore(ws).load()
    assert again.counts()["accepted"] == 12 and again.status(ids[20]) == "rejected"
    again.undo()
    again.undo()
    assert again.status(ids[20]) == "pending" and again.status(ids[11]) == "pending"
    assert again.counts()["accepted"] == 11


def test_a_kill_between_snapshot_and_journal_restart_double_counts_nothing(ws, monkeypatch):
    s = CandidateStore(ws)
    ids = populate(s, 10)
    for cid in ids[:4]:
        s.decide(cid, "accept")
    s.undo()
    real = journal_mod.atomic_write_bytes

    class Killed(BaseException):
        pass

    def dies_before_the_journal_restarts(path, data):
        if path.name == "decisions.jsonl":
            raise Killed
        real(path, data)

    monkeypatch.setattr(journal_mod, "atomic_write_bytes", dies_before_the_journal_restarts)
    with pytest.raises(Killed):
        s.compact()
    monkeypatch.undo()
    s.journal._lock.release()  # the dead process's locks go with it
    s.log._gen_lock.release()
    assert len((ws.candidates_dir / "decisions.jsonl").read_text().splitlines()) == 5  # the old journal
    r = CandidateStore(ws).load()
    assert r.counts()["accepted"] == 3
    assert len(r.undo_stack) == 3
    r.undo()
    assert r.counts()["accepted"] == 2


def test_filters_by_status_model_flags_video_and_text(ws):
    s = CandidateStore(ws)
    populate(s, 60, models=("gpt-4o-mini", "llama3"), flagged_every=4)
    s.decide(s.rows[0].id, "accept")
    assert len(s.select(Filter(status="all"))) == len(s.rows)
    assert [r.id for r in s.select(Filter(status="accepted"))] == [s.rows[0].id]
    llama = s.select(Filter(status="all", backend_model="openai/llama3"))
    assert llama and all(r.model == "llama3" for r in llama)
    assert all(r.flags for r in s.select(Filter(status="all", flags="ambiguous")))
    assert all(not r.flags for r in s.select(Filter(status="all", flags="none")))
    assert {r.video_uid for r in s.select(Filter(status="all", video="video-0003"))} == {"video-0003"}
    knife = s.select(Filter(status="all", text="KNIFE"))
    assert knife and all("knife" in r.query for r in knife)
    s.decide(knife[0].id, "edit", text="When did I see the spatula?")
    assert [r.id for r in s.select(Filter(status="all", text="spatula"))] == [knife[0].id]


def test_reading_does_not_need_any_lock(ws):
    s = CandidateStore(ws)
    ids = populate(s, 10)
    s.decide(ids[0], "accept")
    # both locks held by `s`; a reader (export) still reads everything
    r = CandidateStore(ws).load()
    assert r.status(ids[0]) == "accepted" and len(r.rows) == len(ids)
    s.close()


def test_progress_counts_reviewed_and_rate(ws):
    s = CandidateStore(ws)
    ids = populate(s, 20)
    for cid in ids[:4]:
        s.decide(cid, "accept")
    s.journal.session = dict(zip((st.seq for st in s.recent(4)[::-1]), [1000.0, 1900.0, 2800.0, 3600.0]))
    p = s.progress(now=3600.0)
    assert p["reviewed"] == 4 and p["total"] == 20
    assert p["per_hour"] == pytest.approx(4 / 2600 * 3600)
    assert p["eta_s"] == pytest.approx(16 / p["per_hour"] * 3600)


def test_a_sliced_scan_starts_at_the_last_decision_and_reads_the_whole_store(ws):
    s = CandidateStore(ws)
    ids = populate(s, 200)
    s.decide(ids[3], "accept")
    s.decide(ids[150], "reject")
    s.close()
    sliced = CandidateStore(ws)
    sliced.load_decisions()  # decisions first, as the review screen does
    steps = 0
    while True:
        sliced.scan(budget=4096)
        steps += 1
        if sliced.scan_done:
            break
    assert steps > 5
    # the review resumes where it was: the last decision's group first, then round the store
    assert [r.id for r in sliced.rows] == ids[150:] + ids[:150]
    assert sliced.counts() == CandidateStore(ws).load().counts()
    assert sliced.counts()["pending"] == 198
    gk, cands, rej, meta = make_group("video-new", "clip-new", 0.0, 90.0, 3.0, number0=9999)
    writer = CandidateStore(ws)
    writer.add_group_result(gk, cands, rej, meta)
    writer.close()
    assert sliced.scan() == len(cands)  # and a later scan tails the shards as before
    assert [r.id for r in sliced.rows[-len(cands) :]] == [c["id"] for c in cands]


def test_a_batch_of_groups_lands_with_one_write_and_skips_stored_ones(ws, monkeypatch):
    s = CandidateStore(ws)
    g1 = make_group("v1", "c1", 0.0, 90.0, 5.0, number0=0)
    g2 = make_group("v1", "c1", 0.0, 90.0, 40.0, number0=5)
    g3 = make_group("v2", "c2", 0.0, 90.0, 5.0, number0=10)
    assert s.add_group_result(*g1)
    syncs = []
    real = store_mod.os.fdatasync
    monkeypatch.setattr(store_mod.os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    assert s.add_group_results([g1, g2, g3, g2]) == [False, True, True, False]
    assert len(syncs) == 1
    s.close()
    assert CandidateStore(ws).done_groups() == {g1[0], g2[0], g3[0]}


def test_unknown_ambiguity_does_not_pass_an_ambiguity_rule(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    for c in cands:
        c["checks"]["ambiguity"] = -1  # generation ran without the sentence encoder
    cands[0]["window"].update(start=None, end=None, clip_rel_start=None, clip_rel_end=None)
    cands[0]["checks"]["window_problems"] = ["outside_clip"]
    s.add_group_result(gk, cands, rej, meta)
    assert s.select(Filter(status="all", max_ambiguity=0)) == []
    assert len(s.select(Filter(status="all"))) == 5
    assert not s.by_id[cands[0]["id"]].valid and s.by_id[cands[1]["id"]].valid
    assert s.by_id[cands[0]["id"]].flag_names() == ["window"]


def test_a_numeric_prompt_version_filters_like_its_text(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0, prompt_version=3)
    s.add_group_result(gk, cands, rej, meta)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 50.0, prompt_version="v2", number0=5)
    s.add_group_result(gk, cands, rej, meta)
    assert s.facets()["prompt_version"] == ["3", "v2"]
    assert len(s.select(Filter(status="all", prompt_version="3"))) == 5


def test_the_next_open_reads_first_where_the_reviewer_left_off(ws):
    s = CandidateStore(ws)
    ids = populate(s, 100)
    s.bulk(ids[:60], "accept", rule="first sixty")  # a bulk step says nothing about position
    s.remember_position(ids[60])
    s.close()
    again = CandidateStore(ws)
    again.load_decisions()
    again.scan(budget=1)  # the first slice: one group line
    assert again.rows[0].id == ids[60]
    step = again.undo()  # the position note is not a step to undo: the bulk is
    assert step.op == "bulk" and again.status(ids[0]) == "pending"


def test_a_long_session_folds_its_journal_as_it_goes(ws, monkeypatch):
    monkeypatch.setattr(journal_mod, "COMPACT_EVERY", 8)
    s = CandidateStore(ws)
    ids = populate(s, 40)
    for cid in ids[:20]:
        s.decide(cid, "accept")
        s.journal.join_fold()  # folded beside the session, not inside the keypress
    assert len((ws.candidates_dir / "decisions.jsonl").read_text().splitlines()) == 20 - 16
    s.undo()
    again = CandidateStore(ws).load()  # a reader meanwhile sees all of it
    assert again.counts()["accepted"] == 19
    s.close()


def test_a_failed_write_records_nothing_and_leaves_no_torn_line(ws, monkeypatch):
    s = CandidateStore(ws)
    ids = populate(s, 10)
    s.decide(ids[0], "accept")
    real_write = store_mod.os.write

    def half_then_full_disk(fd, data):
        real_write(fd, bytes(data)[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.os, "write", half_then_full_disk)
    with pytest.raises(WorkspaceError, match="nothing was recorded"):
        s.decide(ids[1], "accept")
    monkeypatch.undo()
    assert s.status(ids[1]) == "pending"
    s.decide(ids[2], "reject")
    s.close()
    r = CandidateStore(ws).load()
    assert r.problems == [] and r.counts()["accepted"] == 1 and r.status(ids[2]) == "rejected"


def test_a_failed_group_write_leaves_the_shard_clean_for_the_next(ws, monkeypatch):
    s = CandidateStore(ws)
    g1, g2, g3 = (make_group("v1", "c1", 0.0, 90.0, 5.0 + 20 * i, number0=5 * i) for i in range(3))
    assert s.add_group_result(*g1)
    real_write = store_mod.os.write
    monkeypatch.setattr(
        store_mod.os,
        "write",
        lambda fd, data: (real_write(fd, bytes(data)[:50]), (_ for _ in ()).throw(OSError(28, "No space left"))),
    )
    with pytest.raises(WorkspaceError, match="could not write the generated group"):
        s.add_group_result(*g2)
    monkeypatch.undo()
    assert s.add_group_result(*g3)
    assert s.add_group_result(*g2)  # a retry after the failure stores it
    s.close()
    r = CandidateStore(ws).load()
    assert r.problems == [] and r.done_groups() == {g1[0], g2[0], g3[0]}


def test_wrong_typed_lines_are_skipped_and_counted_and_the_rest_stays_reviewable(ws):
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 10)
    s.decide(ids[0], "accept")
    s.decide(ids[1], "reject", reason="ambiguous")
    s.close()
    d = ws.candidates_dir
    with open(d / "decisions.jsonl", "a") as f:
        for bad in (
            {"seq": "9", "op": "decide", "ids": [ids[2]], "status": "accepted"},
            {"seq": 10, "op": "decide", "ids": ids[2], "status": "accepted"},
            {"seq": 11, "op": "decide", "ids": [ids[2]], "status": 5},
            {"seq": 12, "op": "undo", "target": "x"},
            [1, 2, 3],
        ):
            f.write(json.dumps(bad) + "\n")
    shard = next(d.glob("groups-*.jsonl"))
    with open(shard, "a") as f:
        f.write(json.dumps({"group_key": 7, "index": [], "rejected": [], "candidates": []}) + "\n")
        f.write(json.dumps({"group_key": "g-bad", "index": [[1, 2, 3]], "rejected": [], "candidates": [{}]}) + "\n")
    r = CandidateStore(ws).load()
    assert len(r.problems) == 7 and len(r.rows) == 10
    assert r.status(ids[0]) == "accepted" and r.status(ids[1]) == "rejected" and r.status(ids[2]) == "pending"
    r.begin_review()
    r.decide(ids[3], "accept")  # still reviewable
    r.compact()
    r.close()
    snap = json.loads((d / "decisions.snapshot.json").read_text())
    snap["states"]["status"][0] = ["not", "a", "status"]
    (d / "decisions.snapshot.json").write_text(json.dumps(snap))
    again = CandidateStore(ws).load()
    assert any("wrong types skipped" in p for p in again.problems)
    assert again.counts()["accepted"] + again.counts()["rejected"] == 2  # the damaged one reads as pending


def test_an_unreadable_snapshot_is_named_kept_aside_and_review_goes_on(ws):
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 5)
    s.decide(ids[0], "accept")
    s.compact()
    s.close()
    snap = ws.candidates_dir / "decisions.snapshot.json"
    snap.write_text("[" * 100_000)  # deep nesting
    r = CandidateStore(ws)
    r.begin_review()
    assert any("decisions.snapshot.json: unreadable" in p for p in r.problems)
    r.decide(ids[1], "reject")
    r.compact()
    r.close()
    assert (ws.candidates_dir / "decisions.snapshot.json.damaged").read_text().startswith("[[[")
    assert CandidateStore(ws).load().status(ids[1]) == "rejected"


def test_a_file_where_the_candidates_folder_should_be_is_one_line(tmp_path):
    from engine.errors import WorkspaceError

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "candidates").write_text("x")
    ws = Workspace(tmp_path / "ws")  # opens; the problem is listed
    assert any("is a file where the candidates folder should be" in p for p in ws.problems)
    with pytest.raises(WorkspaceError, match="candidates folder should be; move it aside"):
        CandidateStore(ws).load()


def test_store_files_get_the_users_umask(ws):
    old = os.umask(0o022)
    try:
        s = CandidateStore(ws, reviewer="ann")
        ids = populate(s, 5)
        s.decide(ids[0], "accept")
        s.compact()
        s.close()
    finally:
        os.umask(old)
    modes = {p.name.split("-")[0]: p.stat().st_mode & 0o777 for p in ws.candidates_dir.iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_without_fdatasync_the_store_falls_back_to_fsync(ws, monkeypatch):
    monkeypatch.delattr(store_mod.os, "fdatasync")
    s = CandidateStore(ws)
    ids = populate(s, 5)
    s.decide(ids[0], "accept")
    s.close()
    assert CandidateStore(ws).load().status(ids[0]) == "accepted"


def test_lone_surrogates_in_a_candidate_are_stored_and_read_back_as_they_were(ws):
    s = CandidateStore(ws, reviewer="ann")
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    cands[0]["query"] = "where is the \ud800 cup \\\udfff?"
    cands[0]["narration"]["text"] = "#C C \udc80 holds"
    assert s.add_group_result(gk, cands, rej, meta)
    s.decide(cands[0]["id"], "edit", text="edited \ud83d")
    s.close()
    raw = next(ws.candidates_dir.glob("groups-*.jsonl")).read_bytes()
    raw.decode("utf-8")  # the shard stays valid UTF-8
    r = CandidateStore(ws).load()
    assert r.problems == [] and r.get(cands[0]["id"]).query == "where is the \ud800 cup \\\udfff?"
    assert r.get(cands[0]["id"]).narration["text"] == "#C C \udc80 holds"
    assert r.query_text(cands[0]["id"]) == "edited \ud83d"


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b"123456789012345678901234567890",
        b"[NaN, Infinity, -Infinity]",
        b"[1e400, -1e-400]",
        b'"\\ud800 lone"',
        b"\xef\xbb\xbf{}",
        b'{"q": "caf\\u00e9 \\u0000", "n": [1.0000000000000002, -0, 1E+2]}',
        b'"a\nb"',
        b"{} x",
        b"01",
        b"[1,]",
        b'"\xff"',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_the_store_reads_json_exactly_as_the_stdlib_does(data):
    # The fast decoder (orjson, else msgspec) refuses some of what the stdlib reads: `loads`
    # then asks the stdlib, so values, and the error types the store's readers catch, are its.
    from engine.store.lines import loads

    def outcome(fn):
        try:
            return "ok", repr(fn(data))
        except (ValueError, RecursionError) as exc:
            return "error", type(exc)

    assert outcome(loads) == outcome(json.loads)


def test_a_deeply_nested_line_read_on_a_small_thread_stack_is_an_error_not_a_crash(tmp_path):
    # msgspec spends more C stack per level than the stdlib: on a 256 KiB thread stack (musl's
    # default is 128 KiB) it overflowed at ~1000 levels, where the stdlib raises RecursionError.
    code = (
        "import threading; from engine.store.lines import loads\n"
        "threading.stack_size(256 << 10)\n"
        "out = []\n"
        "def read():\n"
        "    for depth in (990, 5000):\n"
        "        try:\n"
        "            loads(b'[' * depth + b']' * depth)\n"
        "        except RecursionError:\n"
        "            out.append(depth)\n"
        "t = threading.Thread(target=read); t.start(); t.join()\n"
        "print('done', out)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0 and "done" in res.stdout, res.stderr[-500:]
