"""Variants side by side in one store, their figures (accept rate, Cohen's kappa), and the variants command."""

import json
import os
import subprocess
import sys

import pytest
from review_fixtures import make_group, populate, write_data_root

from engine.candidate import Candidate, candidate_id
from engine.errors import ConfigError
from engine.export import export, parse_statuses
from engine.store import CandidateStore, Filter
from engine.variants import Variant, cohen_kappa, compare_variants, variant_table, wilson
from engine.workspace import Workspace


def as_variant(group, variant: Variant, query_prefix: str = ""):
    """The fixture group re-made as another variant's output: its own ids, backend and model."""
    gk, cands, rej, meta = group
    out = []
    for c in cands:
        c = dict(c, backend=variant.backend, model=variant.model, prompt_version=variant.prompt_version)
        c["id"] = candidate_id(gk, c["narration"]["number"], variant.name)
        c["query"] = query_prefix + c["query"]
        out.append(Candidate.from_json(c))
    return gk, out, rej, dict(meta, backend=variant.backend, model=variant.model, prompt_tokens=100, seconds=0.5)


A = Variant("base", "openai", "gpt-4o-mini", 1, temperature=0.2, k=5)
B = Variant("hot", "openai", "gpt-4o-mini", 1, temperature=1.0, k=5)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def test_kappa_matches_a_hand_computed_case():
    # first reviewer accepts 6 of 10, second 5; they agree on 7 (4 accepts, 3 rejects):
    # p_o = 0.7, p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5, kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    first = [True] * 6 + [False] * 4
    second = [True, True, True, True, False, False, False, False, False, True]
    agree, kappa = cohen_kappa(list(zip(first, second)))
    assert agree == pytest.approx(0.7) and kappa == pytest.approx(0.4)
    assert cohen_kappa([(True, True)] * 3) == (1.0, None)  # chance agreement 1: kappa undefined
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None


def test_a_second_variant_over_done_groups_makes_new_candidates_beside_the_first(ws):
    s = CandidateStore(ws)
    groups = [make_group("v1", "c1", 0.0, 90.0, 5.0 + 20 * i, number0=5 * i) for i in range(3)]
    s.register_variant(A)
    assert s.add_group_results([as_variant(g, A) for g in groups], variant=A) == [True] * 3
    before = {r.id: r.query for r in s.rows}
    assert s.done_groups("hot") == set()  # a new variant resumes from nothing
    s.register_variant(B)
    assert s.add_group_results([as_variant(g, B, "Hot: ") for g in groups[:2]], variant=B) == [True, True]
    # resume within B: its done groups only; a repeat within B is refused, A's stay as they were
    assert s.done_groups("hot") == {groups[0][0], groups[1][0]} and s.done_groups("base") == {g[0] for g in groups}
    assert s.add_group_results([as_variant(groups[0], B, "Hot: ")], variant=B) == [False]
    s.close()
    r = CandidateStore(ws).load()
    assert {row.id: row.query for row in r.rows if row.variant == "base"} == before
    assert len([row for row in r.rows if row.variant == "hot"]) == 10
    assert {v.name for v in r.variants()} == {"base", "hot"}
    assert r.get(r.rows[-1].id).variant == "hot" and r.get(r.rows[0].id).variant == "base"
    side = compare_variants(r, "base", "hot")
    assert len(side) == 10 and side[0]["b"] == "Hot: " + side[0]["a"] and side[0]["narration"].startswith("#C C ")
    assert len(r.select(Filter(status="all", variants=frozenset({"hot"})))) == 10


def test_a_variant_name_with_other_settings_is_refused(ws):
    s = CandidateStore(ws)
    s.register_variant(A)
    with pytest.raises(ConfigError, match=r"variant 'base' exists with other settings \(temperature"):
        s.register_variant(Variant("base", "openai", "gpt-4o-mini", 1, temperature=0.9, k=5))
    assert s.register_variant(Variant("base", "openai", "gpt-4o-mini", 1, temperature=0.2, k=5)) == A
    s.close()


def test_old_candidates_read_as_one_default_variant_and_their_raw_once_per_group(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    cands[0]["raw"] = "x" * 10_000  # an old-style per-candidate raw answer, too long
    s.add_group_result(gk, cands, rej, meta)
    s.close()
    line = next(ws.candidates_dir.glob("groups-*.jsonl")).read_text()
    rec = json.loads(line)
    assert rec["raw"]["length"] == 10_000 and len(rec["raw"]["text"]) == 4096 and rec["raw"]["truncated"]
    assert all("raw" not in c for c in rec["candidates"])
    r = CandidateStore(ws).load()
    assert {row.variant for row in r.rows} == {"openai-gpt-4o-mini-v1"}
    assert r.done_groups("openai-gpt-4o-mini-v1") == {gk}
    assert len(r.candidate(cands[1]["id"])["raw"]) == 4096


def test_failed_groups_are_kept_per_variant_until_stored(ws):
    s = CandidateStore(ws)
    g = make_group("v1", "c1", 0.0, 90.0, 5.0)
    s.add_failure("base", g[0], "timeout", "no answer in 30 s")
    assert s.failed_groups("base") == {g[0]: "timeout"} and s.failed_groups("hot") == {}
    s.add_group_results([as_variant(g, A)], variant=A)
    assert s.failed_groups("base") == {}
    s.close()


def test_variant_table_counts_review_outcomes_and_agreement(ws):
    s = CandidateStore(ws, reviewer="ann")
    groups = [make_group("v1", "c1", 0.0, 90.0, 5.0 + 20 * i, number0=5 * i) for i in range(2)]
    s.add_group_results([as_variant(g, A) for g in groups], variant=A)
    ids = [r.id for r in s.rows]
    first = [True] * 6 + [False] * 4
    second = [True, True, True, True, False, False, False, False, False, True]
    for cid, ok in zip(ids, first):
        s.decide(cid, "accept" if ok else "reject", reason="ambiguous")
    s.close()
    bob = CandidateStore(ws, reviewer="bob")
    queue = bob.second_opinion_queue("bob", seed=1)
    assert sorted(r.id for r in queue) == sorted(ids) and [r.id for r in queue] != ids  # blind and shuffled
    for r in queue:
        ok = second[ids.index(r.id)]
        bob.decide(r.id, "accept" if ok else "reject", second=True)
    assert bob.status(ids[4]) == "accepted"  # the first decision stands
    bob.close()
    (row,) = variant_table(CandidateStore(ws))
    assert row["accepted"] == 6 and row["rejected_in_review"] == {"ambiguous": 4} and row["pending"] == 0
    assert row["accept_rate"] == 0.6 and row["accept_rate_ci95"] == [round(x, 4) for x in wilson(6, 10)]
    assert row["agreement"] == {"doubly_reviewed": 10, "raw": 0.7, "kappa": 0.4}
    assert row["groups_done"] == 2 and row["tokens"] == 200 and row["questions_valid"] == 10


def test_export_takes_the_first_decision_unless_a_reviewer_is_named(ws, tmp_path):
    root = write_data_root(tmp_path / "ego4d")
    s = CandidateStore(ws, reviewer="ann")
    populate(s, 10, videos=2)
    ids = [r.id for r in s.rows]
    s.decide(ids[0], "accept")
    s.decide(ids[1], "reject")
    s.close()
    bob = CandidateStore(ws, reviewer="bob")
    bob.decide(ids[0], "reject", second=True)
    bob.decide(ids[1], "accept", second=True)
    bob.close()
    first = json.loads(export(ws, tmp_path / "a.json", data_root=root).manifest.read_text())
    assert [q["candidate_id"] for q in first["queries"]] == [ids[0]]
    theirs = json.loads(export(ws, tmp_path / "b.json", data_root=root, reviewer="bob").manifest.read_text())
    assert [q["candidate_id"] for q in theirs["queries"]] == [ids[1]] and theirs["queries"][0]["reviewer"] == "bob"


def test_export_by_variant_records_the_variant_and_counts_match_the_flat_export(ws, tmp_path):
    root = write_data_root(tmp_path / "ego4d")
    s = CandidateStore(ws, reviewer="ann")
    groups = [make_group(f"video-000{i}", f"clip-000{i}-0", 0.0, 90.0, 5.0, number0=5 * i) for i in range(2)]
    s.add_group_results([as_variant(g, A) for g in groups], variant=A)
    s.add_group_results([as_variant(g, B, "Hot: ") for g in groups], variant=B)
    s.bulk([r.id for r in s.rows], "accept", rule="all")
    s.close()
    both = export(ws, tmp_path / "both.json", data_root=root)
    hot = export(ws, tmp_path / "hot.json", data_root=root, variants={"hot"})
    assert both.exported == 20 and hot.exported == 10 and hot.variants == {"hot": 10}
    m = json.loads(hot.manifest.read_text())
    assert m["variant"] == "hot" and {q["variant"] for q in m["queries"]} == {"hot"}
    assert [v["name"] for v in m["variants"]] == ["hot"] and m["variants"][0]["temperature"] == 1.0
    flat = export(ws, tmp_path / "hot.jsonl", data_root=root, variants={"hot"}, fmt="jsonl")
    rows = [json.loads(line) for line in flat.file.read_text().splitlines()]
    from engine.export_formats import FLAT_COLUMNS

    assert len(rows) == hot.exported and all(list(r) == list(FLAT_COLUMNS) for r in rows)
    assert {r["candidate_id"] for r in rows} == {q["candidate_id"] for q in m["queries"]}
    assert all(r["query"].startswith("Hot: ") and r["status"] == "accepted" for r in rows)
    card = flat.card.read_text()
    fm = json.loads(flat.manifest.read_text())
    assert f"- exported queries: {len(rows)}" in card and fm["card"]["exported"] == len(rows)
    assert sum(fm["card"]["templates"].values()) == len(rows) and fm["sha256"] in card
    with pytest.raises(ConfigError, match="--variant nope: no such variant"):
        export(ws, tmp_path / "x.json", data_root=root, variants={"nope"})


def test_parquet_without_pyarrow_is_one_line_else_it_has_every_column(ws, tmp_path, monkeypatch):
    root = write_data_root(tmp_path / "ego4d")
    s = CandidateStore(ws, reviewer="ann")
    populate(s, 10, videos=2)
    s.close()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyarrow", None)  # as on an install without the [parquet] extra
        with pytest.raises(ConfigError, match=r"--format parquet needs pyarrow: pip install 'nlq-tui\[parquet\]'"):
            export(ws, tmp_path / "x.parquet", data_root=root, statuses=parse_statuses("all"), fmt="parquet")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.manifest.json").exists()
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (the [parquet] extra)")
    from engine.export_formats import FLAT_COLUMNS

    r = export(ws, tmp_path / "x.parquet", data_root=root, statuses=parse_statuses("all"), fmt="parquet")
    table = pq.read_table(r.file)
    assert table.column_names == list(FLAT_COLUMNS) and table.num_rows == r.exported == 10
    assert table.column("flags").type.value_type == "string"


def test_datasets_reads_the_jsonl_export_into_its_columns(ws, tmp_path):
    datasets = pytest.importorskip("datasets", reason="`datasets` is not installed in this environment")
    root = write_data_root(tmp_path / "ego4d")
    s = CandidateStore(ws, reviewer="ann")
    populate(s, 10, videos=2)
    s.close()
    r = export(ws, tmp_path / "x.jsonl", data_root=root, statuses=parse_statuses("all"), fmt="jsonl")
    ds = datasets.load_dataset("json", data_files=str(r.file), split="train")
    from engine.export_formats import FLAT_COLUMNS

    assert ds.num_rows == r.exported and set(ds.column_names) == set(FLAT_COLUMNS)


def test_variants_cli_lists_and_deletes_and_never_creates_a_workspace(ws, tmp_path):
    s = CandidateStore(ws, reviewer="ann")
    groups = [make_group("v1", "c1", 0.0, 90.0, 5.0 + 20 * i, number0=5 * i) for i in range(2)]
    s.add_group_results([as_variant(g, A) for g in groups], variant=A)
    s.add_group_results([as_variant(g, B) for g in groups], variant=B)
    hot_id = next(r.id for r in s.rows if r.variant == "hot")
    s.decide(hot_id, "accept")
    s.add_failure("hot", "g-x", "timeout")
    s.add_failure("base", "g-y", "timeout")
    s.close()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "nlq_tui", *args], capture_output=True, text=True, env=env)

    out = cli("variants", "--workspace", str(ws.path), "--json")
    assert out.returncode == 0, out.stderr
    assert [(r["name"], r["groups_done"], r["accepted"]) for r in json.loads(out.stdout)] == [
        ("base", 2, 0),
        ("hot", 2, 1),
    ]
    assert "base" in cli("variants", "--workspace", str(ws.path)).stdout
    refused = cli("variants", "--workspace", str(ws.path), "--delete", "hot")
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    gone = cli("variants", "--workspace", str(ws.path), "--delete", "hot", "--yes")
    assert gone.returncode == 0 and "10 candidates" in gone.stdout
    r = CandidateStore(ws).load()
    assert {row.variant for row in r.rows} == {"base"} and hot_id not in r.states and len(r.rows) == 10
    assert "hot" not in (ws.candidates_dir / "failures.jsonl").read_text()  # its failures went with it
    missing = tmp_path / "nothing-here"
    out = cli("variants", "--workspace", str(missing))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and not missing.exists()


DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)]),
    "garbage": lambda p: p.write_bytes(p.read_bytes() + b"\x00\xff{{not json\n"),
    "wrong_types": lambda p: p.write_bytes(p.read_bytes() + b'{"seq": [], "group_key": 5, "name": 7, "index": {}}\n'),
    "deep": lambda p: p.write_bytes(b"[" * 50_000 + b"\n"),
    "folder": lambda p: (p.unlink(), p.mkdir()),
}
FILES = (
    "workspace.json",
    "candidates/decisions.jsonl",
    "candidates/decisions.snapshot.json",
    "candidates/variants.jsonl",
    "candidates/failures.jsonl",
    "SHARD",
)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_workspace_files_give_one_line_or_a_counted_skip_never_a_traceback(tmp_path, damage, capsys):
    from nlq_tui.cli import main

    root = write_data_root(tmp_path / "ego4d")
    for name in FILES:
        ws = Workspace(tmp_path / name.replace("/", "_") / "ws")
        ws.set("data_root", str(root))
        s = CandidateStore(ws, reviewer="ann")
        g = make_group("video-0000", "clip-0000-0", 0.0, 90.0, 5.0)
        s.add_group_results([as_variant(g, A)], variant=A)
        s.add_failure("base", "other-group", "timeout")
        s.decide(s.rows[0].id, "accept")
        s.compact()
        s.decide(s.rows[1].id, "accept")
        s.close()
        path = next(ws.candidates_dir.glob("groups-*.jsonl")) if name == "SHARD" else ws.path / name
        DAMAGES[damage](path)
        for argv in (
            ["variants", "--workspace", str(ws.path), "--json"],
            ["export", "--workspace", str(ws.path), "--out", str(ws.path / "x.json"), "--data", str(root)],
        ):
            code = main(argv)
            err = capsys.readouterr().err
            assert code in (0, 2), (name, argv[0], err)
            if code == 2:
                assert err.count("\n") == 1 and err.startswith("nlq-tui: error: "), (name, err)


def test_late_checks_fill_in_flags_and_ambiguity_of_stored_candidates(ws):
    s = CandidateStore(ws)
    gk, cands, rej, meta = as_variant(make_group("v1", "c1", 0.0, 90.0, 5.0), A)
    for c in cands:
        c.checks.ambiguity, c.checks.pending = -1, True
    s.add_group_results([(gk, cands, rej, meta)], variant=A)
    ids = [c.id for c in cands]
    assert s.pending_checks("base") == ids and all(s.by_id[i].flag_names() == ["checks-pending"] for i in ids)
    reader = CandidateStore(ws).load()  # a review session open meanwhile
    s.add_checks("base", [(ids[0], {"near_duplicate_of": ids[1], "ambiguity": 2})])
    s.add_checks("base", [(i, {"near_duplicate_of": None, "ambiguity": 0}) for i in ids[1:]])
    assert s.pending_checks() == [] and s.by_id[ids[0]].flag_names() == ["near-duplicate", "ambiguous"]
    reader.refresh()  # picks the checks up with the next look
    assert reader.by_id[ids[0]].ambiguity == 2 and reader.get(ids[0]).checks.near_duplicate_of == ids[1]
    s.close()
    again = CandidateStore(ws).load()
    c = again.get(ids[0])
    assert not c.checks.pending and c.checks.ambiguity == 2 and again.by_id[ids[2]].flags == 0
    assert again.select(Filter(status="all", flags="ambiguous")) == [again.by_id[ids[0]]]
