"""The variants table from its summary file is exactly the table of a full read, whatever happened to the store."""

import json
import os
import random
import subprocess
import sys

import pytest
from review_fixtures import make_group

from engine.candidate import Candidate, candidate_id
from engine.store import CandidateStore
from engine.variant_cache import SUMMARY, TABLE
from engine.variant_summary import read_summary
from engine.variants import Variant, compare_variants, variant_table
from engine.workspace import Workspace

A = Variant("base", "openai", "gpt-4o-mini", 1, temperature=0.2, k=5)
B = Variant("hot", "openai", "gpt-4o-mini", 1, temperature=1.0, k=5)
C = Variant("third", "vllm", "llama", 2)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def groups_of(variant: Variant, n: int, start: int = 0, seed: int = 0, pending: bool = False) -> list:
    """`n` groups of `variant` with uneven stats, costs and generation rejects (the sums must add up the same)."""
    rng = random.Random(seed * 1000 + start)
    out = []
    for g in range(start, start + n):
        gk, cands, _, meta = make_group(f"video-{g % 7}", f"clip-{g % 7}", 0.0, 480.0, 5.0 + g, number0=5 * g, rng=rng)
        typed = []
        for c in cands:
            c = dict(c, backend=variant.backend, model=variant.model, prompt_version=variant.prompt_version)
            c["id"] = candidate_id(gk, c["narration"]["number"], variant.name)
            if pending:
                c["checks"] = dict(c["checks"], ambiguity=-1, pending=True)
            typed.append(Candidate.from_json(c))
        rejected = [{"narration": 9, "reason": rng.choice(["empty", "copies_narration", None])}] * (g % 3)
        meta = dict(meta, prompt_tokens=rng.randint(50, 300), completion_tokens=rng.randint(10, 99),
                    seconds=rng.uniform(0.1, 3.0), cost=rng.uniform(0, 0.01))  # fmt: skip
        out.append((gk, typed, rejected, meta))
    return out


def same(ws) -> list[dict]:
    """The summary's table and warnings against a full read's; returns the rows."""
    full = CandidateStore(ws)
    expected = variant_table(full, summary=False)
    fast = CandidateStore(ws)
    got = variant_table(fast)
    assert got == expected
    assert fast.problems == full.problems and fast.log.problem_count == full.log.problem_count
    assert not fast.rows, "the summary path leaves the store unread"
    names = [r["name"] for r in expected]
    for a in names:
        for b in names:
            for limit in (7, 200):
                want = compare_variants(CandidateStore(ws), a, b, limit, summary=False)
                assert compare_variants(CandidateStore(ws), a, b, limit) == want, (a, b, limit)
    return got


def source(ws) -> str:
    s = CandidateStore(ws)
    try:
        return read_summary(s).source
    finally:
        s.close()


def test_after_generation_review_undo_second_reviewer_and_a_second_variant(ws):
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 6), variant=A)
    s.add_failure("base", "g-never", "timeout")
    s.add_failure("base", groups_of(A, 7)[6][0], "timeout")  # stored later: no longer failed
    s.close()
    assert source(ws) == "rebuilt" and same(ws)[0]["groups_done"] == 6
    assert source(ws) == "unchanged"
    s = CandidateStore(ws, reviewer="ann").load()
    ids = [r.id for r in s.rows]
    s.decide(ids[0], "accept")
    s.decide(ids[1], "reject", reason="ambiguous")
    s.decide(ids[2], "edit", text="Where is the cup?")
    s.decide(ids[3], "reject")
    s.undo()  # the last one goes
    s.bulk(ids[10:20], "reject", reason="trivial", rule="test")
    s.bulk(ids[20:25], "accept", rule="test")
    s.undo()  # one undo reverts the bulk step
    s.decide(ids[0], "reject", reason="wrong_window")  # re-decided
    s.close()
    bob = CandidateStore(ws, reviewer="bob")
    for cid in ids[:14]:
        bob.decide(cid, "accept" if hash(cid) % 2 else "reject", second=True)
    bob.close()
    assert source(ws) == "unchanged"  # the shards did not change; the decisions are replayed
    rows = same(ws)
    assert rows[0]["agreement"]["doubly_reviewed"] == 7 and rows[0]["edited"] == 1
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(B, 4, seed=1), variant=B)
    s.add_group_results(groups_of(A, 3, start=6), variant=A)
    s.begin_review()
    s.compact()  # the journal folded into the snapshot: replayed again, the same states
    s.close()
    assert source(ws) == "folded"
    rows = same(ws)
    assert [(r["name"], r["groups_done"], r["groups_failed"]) for r in rows] == [("base", 9, 1), ("hot", 4, 0)]
    pairs = compare_variants(CandidateStore(ws), "base", "hot")
    assert len(pairs) == 20 and "Where is the cup?" in [p["a"] for p in pairs]  # the edited text


def test_one_group_at_a_time_folded_in_adds_up_to_the_same_sums(ws):
    # Floats are summed in store order either way: the same bits, not just nearly the same.
    for i in range(12):
        s = CandidateStore(ws)
        v = (A, B, C)[i % 3]
        s.add_group_results(groups_of(v, 1, start=i, seed=i), variant=v)
        s.close()
        rows = same(ws)
        assert source(ws) == "unchanged"
    assert [r["groups_done"] for r in rows] == [4, 4, 4] and all(r["cost"] for r in rows)
    assert len(list(ws.candidates_dir.glob("groups-*.jsonl"))) == 12


def test_appended_while_open_a_torn_tail_and_a_new_shard(ws):
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 3), variant=A)
    same(ws)
    s.add_group_results(groups_of(A, 2, start=3), variant=A)  # the same writer, the same shard
    assert source(ws) == "folded"
    same(ws)
    shard = next(ws.candidates_dir.glob("groups-*.jsonl"))
    line = shard.read_bytes().splitlines(keepends=True)[-1]
    s.close()
    with open(shard, "ab") as f:
        f.write(line[: len(line) // 2])  # a kill mid-write
    assert same(ws)[0]["groups_done"] == 5
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 2, start=5), variant=A)  # cuts the torn tail, writes a new shard
    s.close()
    # The cut rewrote the shard where it stood (its change time moved, its size did not grow): once
    # rebuilt, as after any write in place.
    assert source(ws) == "rebuilt" and same(ws)[0]["groups_done"] == 7
    assert source(ws) == "unchanged"


def test_late_checks_before_and_after_their_candidates(ws):
    s = CandidateStore(ws)
    groups = groups_of(A, 3, pending=True)
    s.add_group_results(groups[:2], variant=A)
    ids = [c.id for _, cands, _, _ in groups for c in cands]
    same(ws)
    s.add_checks("base", [(ids[0], {"near_duplicate_of": ids[1], "ambiguity": 2})])
    s.add_checks("base", [(ids[12], {"near_duplicate_of": None, "ambiguity": 3})])  # its group is not stored yet
    assert same(ws)[0]["flagged"] == {"ambiguous": 1, "checks-pending": 9, "near-duplicate": 1}
    s.add_group_results(groups[2:], variant=A)
    s.add_checks("base", [(i, {"near_duplicate_of": None, "ambiguity": 0}) for i in ids[1:10]])
    s.add_checks("base", [(ids[0], {"near_duplicate_of": None, "ambiguity": 0})])  # the latest wins
    s.close()
    assert source(ws) == "folded"
    assert same(ws)[0]["flagged"] == {"ambiguous": 1, "checks-pending": 4}


def test_deleting_a_variant_rebuilds(ws):
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.add_group_results(groups_of(B, 3, seed=2), variant=B)
    s.add_checks("hot", [(s.rows[-1].id, {"near_duplicate_of": None, "ambiguity": 2})])
    s.decide(s.rows[-1].id, "accept")
    s.close()
    assert len(same(ws)) == 2
    assert CandidateStore(ws).delete_variant("hot") == 15
    assert [r["name"] for r in same(ws)] == ["base"]
    s = CandidateStore(ws)
    s.add_group_results(groups_of(B, 1, seed=3), variant=B)  # made again under the name
    s.close()
    assert [r["accepted"] for r in same(ws)] == [0, 0]


def test_a_shard_growing_before_a_later_one_or_rewritten_rebuilds(ws):
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 2), variant=A)
    s.close()
    first = next(ws.candidates_dir.glob("groups-*.jsonl"))
    s = CandidateStore(ws)
    s.add_group_results(groups_of(B, 2, seed=1), variant=B)
    s.close()
    same(ws)
    line = first.read_bytes().splitlines(keepends=True)[0]
    with open(first, "ab") as f:  # the same group again, in the earlier shard: a full read keeps this one
        f.write(line.replace(b'"video-0:', b'"video-9:'))
    assert source(ws) == "rebuilt"
    same(ws)
    first.write_bytes(first.read_bytes().replace(b"Where did I", b"Where had I"))  # same size, other bytes
    assert source(ws) == "rebuilt"
    same(ws)


DAMAGED_SUMMARIES = {
    "garbage": lambda p: p.write_bytes(b"\x00\xff{{not json"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "edited": lambda p: p.write_bytes(p.read_bytes().replace(b'"tokens":', b'"tokens":1', 1)),
    "wrong_types": lambda p: p.write_bytes(b'{"version": 1, "digest": 5}\n[]'),
    "folder": lambda p: (p.unlink(), p.mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_SUMMARIES))
def test_a_damaged_summary_is_rebuilt_without_a_word(ws, damage):
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.decide(s.rows[0].id, "accept")
    s.close()
    before = same(ws)
    DAMAGED_SUMMARIES[damage](ws.candidates_dir / SUMMARY)
    assert source(ws) == "rebuilt"
    assert same(ws) == before
    assert source(ws) == ("rebuilt" if damage == "folder" else "unchanged")  # a folder there: read every time
    DAMAGED_SUMMARIES[damage](ws.candidates_dir / TABLE)  # the rows as last computed: a miss, then kept again
    assert same(ws) == before and same(ws) == before
    assert (ws.candidates_dir / TABLE).is_dir() == (damage == "folder")


STORE_DAMAGES = {
    "garbage": lambda p: p.write_bytes(p.read_bytes() + b"\x00\xff{{not json\n"),
    "wrong_types": lambda p: p.write_bytes(p.read_bytes() + b'{"seq": [], "group_key": 5, "name": 7, "index": {}}\n'),
    "bad_rows": lambda p: p.write_bytes(
        p.read_bytes() + b'{"group_key": "g", "variant": "base", "index": [[1, 2], ["x"]], "rejected": []}\n'
    ),
    "deep": lambda p: p.write_bytes(b"[" * 50_000 + b"\n"),
    "mixed": lambda p: p.write_bytes(  # a full read warns of unreadable lines first, then of rows
        p.read_bytes() + b'{"group_key": "g2", "variant": "base", "index": [[3]], "rejected": []}\n' + b"{oops\n"
    ),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
}
STORE_FILES = (
    "SHARD",
    "decisions.jsonl",
    "decisions.snapshot.json",
    "variants.jsonl",
    "failures.jsonl",
    "checks.jsonl",
)


@pytest.mark.parametrize("damage", sorted(STORE_DAMAGES))
@pytest.mark.parametrize("name", STORE_FILES)
def test_damaged_store_files_give_the_same_rows_and_warnings(ws, damage, name):
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.add_failure("base", "other-group", "timeout")
    s.add_checks("base", [(s.rows[0].id, {"near_duplicate_of": None, "ambiguity": 2})])
    s.decide(s.rows[0].id, "accept")
    s.compact()
    s.decide(s.rows[1].id, "reject")
    s.close()
    same(ws)
    path = next(ws.candidates_dir.glob("groups-*.jsonl")) if name == "SHARD" else ws.candidates_dir / name
    STORE_DAMAGES[damage](path)
    same(ws)  # after the damage: folded or rebuilt
    same(ws)  # and read from the summary alone
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 1, start=3), variant=A)
    s.close()
    same(ws)


def test_a_workspace_that_cannot_take_the_summary_is_read_every_time(ws):
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 2), variant=A)
    s.close()
    (ws.candidates_dir / SUMMARY).mkdir()  # the rename onto it fails, as in a read-only folder
    same(ws)
    assert [p.name for p in ws.candidates_dir.iterdir() if p.name.startswith(".")] == []  # no temp left behind
    if os.geteuid() != 0:  # root writes anyway
        (ws.candidates_dir / SUMMARY).rmdir()
        os.chmod(ws.candidates_dir, 0o555)
        try:
            same(ws)
            assert not (ws.candidates_dir / SUMMARY).exists()
        finally:
            os.chmod(ws.candidates_dir, 0o755)


def test_the_cli_prints_the_same_table_and_warnings_from_the_summary(ws):
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.decide(s.rows[0].id, "accept")
    s.close()
    shard = next(ws.candidates_dir.glob("groups-*.jsonl"))
    shard.write_bytes(shard.read_bytes() + b"not json\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "nlq_tui", "variants", "--workspace", str(ws.path), "--json"]
    outs = [subprocess.run(cmd, capture_output=True, text=True, env=env) for _ in range(2)]
    assert (ws.candidates_dir / SUMMARY).exists()
    full = CandidateStore(ws)
    expected = variant_table(full, summary=False)
    for out in outs:
        assert out.returncode == 0 and json.loads(out.stdout) == expected
        assert out.stderr.splitlines() == [f"warning: {full.problems[0]}"]


def test_a_line_read_half_written_is_folded_in_once_it_is_whole(ws):
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 2), variant=A)
    s.close()
    same(ws)
    shard = next(ws.candidates_dir.glob("groups-*.jsonl"))
    line = shard.read_bytes().splitlines(keepends=True)[0].replace(b'"video-0:', b'"video-8:').replace(b"#1@", b"#1x@")
    with open(shard, "ab") as f:
        f.write(line[:100])  # a writer mid-line: not a line yet
        f.flush()
        assert source(ws) == "unchanged" and same(ws)[0]["groups_done"] == 2
        f.write(line[100:])
    assert source(ws) == "folded" and same(ws)[0]["groups_done"] == 3


def test_ids_and_group_keys_holding_a_newline_or_a_lone_surrogate(ws):
    s = CandidateStore(ws)
    odd = []
    for n, video in enumerate(("video\nnine", "video\udc80ten")):
        gk, cands, rej, meta = make_group(video, "clip", 0.0, 90.0, 5.0, number0=5 * n)
        typed = [Candidate.from_json(dict(c, id=candidate_id(gk, c["narration"]["number"], "base"))) for c in cands]
        odd.append((gk, typed, rej, meta))
    s.add_group_results(odd + groups_of(A, 2), variant=A)
    s.close()
    assert same(ws)[0]["groups_done"] == 4
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 1, start=2), variant=A)
    s.close()
    assert source(ws) == "folded" and same(ws)[0]["groups_done"] == 5


def test_candidates_older_than_variants_read_as_their_default_variant(ws):
    s = CandidateStore(ws)
    for n in range(3):
        gk, cands, rej, meta = make_group(f"video-{n}", "clip", 0.0, 90.0, 5.0, model=f"m{n % 2}", number0=5 * n)
        s.add_group_result(gk, cands, rej, meta)  # no variant: the default one of backend, model and prompt
    gk, _, _, meta = make_group("video-9", "clip", 0.0, 90.0, 5.0, model="m1", number0=50)
    s.add_group_result(gk, [], [{"narration": 1, "reason": "empty"}], meta)  # every narration rejected
    s.close()
    rows = same(ws)
    assert [(r["name"], r["groups_done"]) for r in rows] == [("openai-m0-v1", 2), ("openai-m1-v1", 2)]
    assert all(r["params"] == {"temperature": None, "max_tokens": None, "k": None, "stride": None,
                               "min_window": None} for r in rows)  # fmt: skip


def test_a_comparison_is_read_again_only_when_what_it_shows_may_have_changed(ws, monkeypatch):
    import engine.variant_summary as vs

    reads = []
    real = vs._compare_lines
    monkeypatch.setattr(vs, "_compare_lines", lambda *a: reads.append(a[-3:]) or real(*a))
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.add_group_results(groups_of(B, 3), variant=B)
    s.close()

    def compare() -> list[dict]:
        got = compare_variants(CandidateStore(ws), "base", "hot", 7)
        assert got == compare_variants(CandidateStore(ws), "base", "hot", 7, summary=False)
        return got

    compare()
    s = CandidateStore(ws, reviewer="ann").load()
    s.add_group_results(groups_of(A, 1, start=3), variant=A)  # past the compared groups
    compare()
    assert len(reads) == 1
    s.decide(s.rows[0].id, "edit", text="Where is the knife now?")  # shown: read again
    assert compare()[0]["a"] == "Where is the knife now?" and len(reads) == 2
    s.close()


@pytest.mark.parametrize("bad", [{"tokens": "x"}, {"seconds": [1]}, {"cost": True, "tokens": 1e400}, {"cost": "$3"}])
def test_a_hand_damaged_stats_field_counts_as_nothing_in_both_reads(ws, bad):
    s = CandidateStore(ws)
    s.add_group_results(groups_of(A, 4), variant=A)
    s.close()
    shard = next(ws.candidates_dir.glob("groups-*.jsonl"))
    lines = shard.read_text().splitlines()
    first = json.loads(lines[0])
    first["stats"] = dict(first.get("stats") or {}, **bad)
    lines[0] = json.dumps(first)
    shard.write_text("\n".join(lines) + "\n")
    rows = same(ws)  # no ValueError from int("x"); the summary agrees with the full read
    row = rows[0]
    assert isinstance(row["tokens"], int) and row["tokens"] >= 0 and row["groups_done"] == 4
    assert row["cost"] is None or isinstance(row["cost"], float)


def test_a_same_size_rewrite_with_its_mtime_set_back_is_seen(ws):
    # `cp -p`, `rsync -t --inplace`, `touch -r` restore a file's mtime; its change time moves anyway.
    s = CandidateStore(ws, reviewer="ann")
    s.add_group_results(groups_of(A, 3), variant=A)
    s.load()
    s.begin_review()
    for r in list(s.rows)[:4]:
        s.decide(r.id, "accept")
    s.close()
    same(ws)  # the caches now hold these rows
    journal = ws.candidates_dir / "decisions.jsonl"
    before = os.stat(journal)
    data = journal.read_bytes()
    assert data.count(b'"accepted"') >= 2
    journal.write_bytes(data.replace(b'"accepted"', b'"rejected"', 2))  # the same size
    os.utime(journal, ns=(before.st_atime_ns, before.st_mtime_ns))
    rows = same(ws)
    assert rows[0]["accepted"] == 2 and sum(rows[0]["rejected_in_review"].values()) == 2
