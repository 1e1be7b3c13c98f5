"""Opening a store with many decisions: the early states, the fold beside a review, no cycles."""

import gc
import json
import random
import threading
import weakref

import pytest
from review_fixtures import make_group, populate

import engine.store.journal as journal_mod
from engine.errors import WorkspaceError
from engine.store import CandidateStore, Filter, encode_group_line
from engine.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def _random_session(s, ids, rng, steps, second_reviewer=None):
    """Decisions, bulk steps, resets, edits, undos and second opinions, as a reviewer makes them."""
    for _ in range(steps):
        x = rng.random()
        if x < 0.15:
            s.undo()
        elif x < 0.22:
            s.bulk(rng.sample(ids, 6), rng.choice(["accept", "reject", "skip", "reset"]), rule="r")
        elif x < 0.27:
            s.remember_position(rng.choice(ids))
        else:
            cid = rng.choice(ids[:30])  # a few candidates decided again and again
            action = rng.choice(["accept", "reject", "edit", "skip", "flag", "reset"])
            text = f"edited {rng.randrange(1000)}" if action == "edit" else None
            s.decide(cid, action, reason="ambiguous" if action == "flag" else None, text=text)


def _final(ws, ids):
    s = CandidateStore(ws).load()
    states = {cid: s.states[cid] for cid in ids if cid in s.states}
    cursor = s.journal.cursor
    s.close()
    return states, cursor


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_early_states_are_the_states_the_whole_replay_gives(ws, monkeypatch, seed):
    s = CandidateStore(ws)
    ids = populate(s, 80)
    rng = random.Random(seed)
    monkeypatch.setattr(journal_mod, "COMPACT_EVERY", 60)  # a snapshot (with undo steps) and a journal
    _random_session(s, ids, rng, 150)
    s.close()
    second = CandidateStore(ws, reviewer="bo")
    for cid in rng.sample(ids, 10):
        second.decide(cid, "reject", second=True)
    second.undo()
    second.close()
    with open(ws.candidates_dir / "decisions.jsonl", "ab") as f:
        f.write(b'{"seq": "x", "op": "decide"}\n')  # skipped by both
        f.write(b'{"seq": 100000, "op": "undo", "target": 3}\n')  # an undo of a step long folded
    want, cursor = _final(ws, ids)
    assert want  # the session left decisions to check

    r = CandidateStore(ws)
    r.prepare_decisions()
    assert r.journal.cursor == cursor  # the scan's hint is final before anything is applied
    r.scan()
    early = r.early_states(r.rows)
    assert not r.journal.loaded
    assert early == want
    r.load_decisions()
    assert {cid: r.states[cid] for cid in ids if cid in r.states} == want
    assert r.problems == _problems_of_a_plain_load(ws)


def _problems_of_a_plain_load(ws):
    return CandidateStore(ws).load().problems


def test_early_states_of_a_few_rows_and_the_first_open_card(ws):
    s = CandidateStore(ws)
    ids = populate(s, 40)
    s.bulk(ids[:10], "accept", rule="first ten")
    s.decide(ids[10], "skip")
    s.decide(ids[11], "accept")
    s.undo()  # ids[11] is pending again
    s.close()
    r = CandidateStore(ws)
    r.prepare_decisions()
    r.scan()
    rows = [r.by_id[cid] for cid in ids[5:15]]
    early = r.early_states(rows)
    assert set(early) == set(ids[5:11])  # ids[11]: undone, so pending, so no state
    assert early[ids[10]]["status"] == "skipped" and early[ids[5]]["status"] == "accepted"
    pred = Filter().predicate(early)
    # The scan began at the last decision's group (ids[10:15]), so that is the first open card.
    assert r.rows[0].id == ids[10]
    assert [row.id for row in r.rows[:5] if pred(row)] == ids[10:15]
    r.load_decisions()
    assert [row.id for row in r.select(Filter())][:5] == ids[10:15]


def _under_review_with_a_long_journal(ws):
    """A store of 30 candidates, 12 accepted in an earlier session, opened for review with its
    journal left unfolded (as the screen opens it); and the candidates' ids."""
    s = CandidateStore(ws)
    ids = populate(s, 30)
    for cid in ids[:12]:
        s.decide(cid, "accept")
    s.close()
    r = CandidateStore(ws)
    r.begin_review(fold=False)  # the long journal is left for later
    return r, ids


def test_a_fold_beside_the_review_keeps_what_was_decided_meanwhile(ws, monkeypatch):
    r, ids = _under_review_with_a_long_journal(ws)
    assert len((ws.candidates_dir / "decisions.jsonl").read_text().splitlines()) == 12
    real = journal_mod.encode_snapshot
    meanwhile = []

    def encode_while_the_reviewer_decides(image):
        data = real(image)
        # The mutex is free while the snapshot is encoded and written: a keypress lands.
        assert r.log.mutex.acquire(blocking=False)
        r.log.mutex.release()
        meanwhile.append(r.decide(ids[20], "reject"))
        meanwhile.append(r.undo())  # undoes the reject
        meanwhile.append(r.decide(ids[21], "flag"))
        return data

    monkeypatch.setattr(journal_mod, "encode_snapshot", encode_while_the_reviewer_decides)
    assert r.journal.compact_if_due(r.log.mutex, every=10)
    monkeypatch.undo()
    snap = json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())
    assert snap["upto_seq"] == 12
    journal = [json.loads(x) for x in (ws.candidates_dir / "decisions.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in journal] == [13, 14, 15]
    assert r.counts()["accepted"] == 12 and r.status(ids[21]) == "flagged"
    assert not r.journal.compact_if_due(r.log.mutex, every=10)  # 3 entries: nothing due
    r.close()
    again = CandidateStore(ws).load()
    assert again.counts()["accepted"] == 12 and again.status(ids[20]) == "pending"
    assert again.status(ids[21]) == "flagged"
    assert again.undo().ids == [ids[21]]
    assert again.undo().ids == [ids[11]]  # across the fold, the undo steps are all there
    assert again.status(ids[11]) == "pending"


def test_a_fold_waits_for_nothing_and_close_waits_for_the_fold(ws):
    r, ids = _under_review_with_a_long_journal(ws)
    folded = []
    t = threading.Thread(target=lambda: folded.append(r.journal.compact_if_due(r.log.mutex, every=10)))
    t.start()
    r.decide(ids[25], "accept")
    r.close()  # after the fold (it holds the lock the fold needs)
    t.join()
    assert folded == [True]
    assert CandidateStore(ws).load().counts()["accepted"] == 13


def test_a_store_let_go_is_freed_without_the_cyclic_collector(ws):
    s = CandidateStore(ws)
    populate(s, 20)
    s.close()
    r = CandidateStore(ws).load()
    r.begin_review()
    r.decide(r.rows[0].id, "accept")
    r.close()
    gone = weakref.ref(r)
    collecting = gc.isenabled()
    gc.disable()
    try:
        del r
        assert gone() is None  # freed by reference counting: no cycle through the store
    finally:
        if collecting:
            gc.enable()


def test_the_review_lock_can_be_taken_before_anything_is_read(ws):
    s = CandidateStore(ws)
    ids = populate(s, 20)
    s.decide(ids[0], "accept")
    s.close()
    r = CandidateStore(ws, reviewer="ann")
    r.lock_review()  # as the screen does: then nobody writes between its read and its decisions
    with pytest.raises(WorkspaceError, match="ann"):
        CandidateStore(ws, reviewer="bo").begin_review()
    r.prepare_decisions()
    r.scan()
    r.load_decisions()
    r.begin_review(fold=False)
    r.decide(ids[1], "reject")
    r.close()
    again = CandidateStore(ws).load()
    assert again.status(ids[0]) == "accepted" and again.status(ids[1]) == "rejected"
    again.begin_review()  # the lock went with the close
    again.close()


def test_a_fold_whose_new_journal_cannot_be_written_keeps_the_old_one_and_every_later_decision(
    ws, monkeypatch, tmp_path
):
    import errno

    r, ids = _under_review_with_a_long_journal(ws)
    real = journal_mod.atomic_write_bytes

    def full_disk(path, data, *a, **kw):
        if path.name == "decisions.jsonl":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *a, **kw)

    monkeypatch.setattr(journal_mod, "atomic_write_bytes", full_disk)
    with pytest.raises((OSError, WorkspaceError)):
        r.journal.compact_if_due(r.log.mutex, every=10)
    monkeypatch.setattr(journal_mod, "atomic_write_bytes", real)
    with open(tmp_path / "unrelated.txt", "wb"):  # takes the lowest free descriptor
        r.decide(ids[20], "reject")
        r.close()
    assert (tmp_path / "unrelated.txt").read_bytes() == b""  # the decision went to the journal, not here
    again = CandidateStore(ws).load()
    assert again.status(ids[20]) == "rejected" and again.counts()["accepted"] == 12


def _decided_by_ann(ws, seed=5):
    """A store of two variants where ann decided (one by one and in bulk) and bob gave a few
    second opinions already; returns every candidate id."""
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 600, models=("gpt-4o-mini", "llama-3"))
    rng = random.Random(seed)
    for cid in rng.sample(ids, 40):
        s.decide(cid, rng.choice(["accept", "reject", "edit"]), text="ann's words", reason="ambiguous")
    s.bulk(rng.sample(ids, 12), "accept", rule="r")
    s.close()
    bob = CandidateStore(ws, reviewer="bob").load()
    for row in bob.second_opinion_queue("bob", seed=1)[:5]:
        bob.decide(row.id, "accept", second=True)
    bob.close()
    return ids


def test_a_second_opinion_reads_the_decided_groups_first_and_draws_from_them_all(ws):
    ids = _decided_by_ann(ws)
    full = CandidateStore(ws, reviewer="bob").load()
    expected = {r.id for r in full.second_opinion_queue("bob")}
    assert len(expected) > 30
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is True
    assert len(s.rows) < len(ids) / 2  # only the groups of the sample were read
    queue = s.second_opinion_queue("bob")
    assert {r.id for r in queue} == expected
    for row in queue[:10]:
        assert s.get(row.id).to_json() == full.get(row.id).to_json()
    while not s.scan_done:  # the rest of the store, as the screen reads it meanwhile
        s.scan(budget=64 << 10)
    assert sorted(r.id for r in s.rows) == sorted(ids) and len(s.by_id) == len(ids)
    assert s.counts() == full.counts() and s.problems == []
    s.close()
    full.close()


def test_a_second_opinion_is_drawn_from_the_decisions_alone_and_its_first_card_peeked(ws):
    _decided_by_ann(ws)
    full = CandidateStore(ws, reviewer="bob").load()
    expected = [r.id for r in full.second_opinion_queue("bob", seed=3)]
    s = CandidateStore(ws, reviewer="bob")
    draw = s.second_opinion_draw("bob", seed=3)
    assert s.rows == [] and draw == s.second_opinion_draw("bob", seed=3)  # no line read; one seed, one order
    assert sorted(draw) == sorted(expected)
    located = s.journal.locations()
    first = next(cid for cid in draw if cid in located)  # decided by a keypress: its line is known
    row, c = s.peek(first)
    assert s.rows == [] and not s.log.scan_started  # read, not taken in: the store is as it was
    assert c.to_json() == full.get(first).to_json() and row.query == full.by_id[first].query
    assert [s.journal.location_of(cid) for cid in draw] == [located.get(cid) for cid in draw]
    bulk = next(cid for cid in draw if cid not in located)
    assert s.peek(bulk) is None and s.peek("no-such-group#0") is None
    assert s.read_second_opinion_groups("bob", draw) is True
    queue = s.second_opinion_queue("bob", draw=draw)
    assert [r.id for r in queue] == expected == draw  # the screen's queue is the draw, in its order
    s.close()
    full.close()


def test_a_damaged_candidate_is_not_peeked_and_is_reported_once(ws):
    s = CandidateStore(ws, reviewer="ann")
    ids = populate(s, 60)
    s.decide(ids[7], "accept")
    shard, offset = s.journal.location_of(ids[7])
    s.close()
    path = ws.candidates_dir / shard
    data = bytearray(path.read_bytes())
    mark = data.index(b', "candidates": ', offset)
    data[mark + 20 : mark + 21] = b"\x01"  # inside the candidates, the line's head intact
    path.write_bytes(bytes(data))
    bob = CandidateStore(ws, reviewer="bob")
    assert bob.second_opinion_draw("bob") == [ids[7]]  # the decisions in, as the screen has them
    assert bob.peek(ids[7]) is None and bob.problems == []
    assert bob.read_second_opinion_groups("bob") is True
    bob.get(ids[7])
    assert len(bob.problems) == 1 and "unreadable" in bob.problems[0]
    bob.close()


def test_a_peeked_first_card_does_not_choose_which_copy_of_a_repeated_id_counts(ws):
    # Two group lines holding one candidate id (a merged or hand-made shard): the first stored
    # counts, even when the second opinion's first card lies on the other line.
    ws.candidates_dir.mkdir(parents=True, exist_ok=True)
    gk_a, cands_a, rej_a, meta_a = make_group("video-a", "clip-a", 0.0, 90.0, 5.0, 2, number0=0)
    gk_b, cands_b, rej_b, meta_b = make_group("video-b", "clip-b", 0.0, 90.0, 5.0, 2, number0=10)
    shared = cands_a[0]["id"]
    cands_b[0] = dict(cands_b[0], id=shared, group_key=gk_b, query="The other copy's text?")
    lines = encode_group_line(gk_a, cands_a, rej_a, meta_a) + encode_group_line(gk_b, cands_b, rej_b, meta_b)
    (ws.candidates_dir / "groups-0000000000001-1.jsonl").write_bytes(lines)
    ann = CandidateStore(ws, reviewer="ann").load()
    kept = ann.by_id[shared].query
    ann.decide(shared, "accept")
    ann.decide(cands_b[1]["id"], "accept")  # on the second line
    ann.close()
    s = CandidateStore(ws, reviewer="bob")
    s.load_decisions()
    assert s.peek(cands_b[1]["id"]) is not None
    assert s.read_second_opinion_groups("bob") is True
    assert s.get(shared).query == kept != "The other copy's text?"
    s.close()


def test_a_second_opinion_finds_keys_json_escapes_and_lines_in_another_form(ws):
    """A group key with characters JSON escapes; a group whose first stored line has its keys
    in another order (the first stored result wins); a damaged later copy of a wanted line,
    reported once, by the scan."""
    from review_fixtures import make_group

    _decided_by_ann(ws)
    s = CandidateStore(ws, reviewer="ann")
    gk, cands, rej, meta = make_group('video-"q\\', "clip-\\n\u00e9", 0.0, 90.0, 5.0)
    s.add_group_result(gk, cands, rej, meta)
    odd = [r.id for r in s.load().rows if r.group_key == gk]
    s.decide(odd[0], "reject", reason="ambiguous")
    plain = next(r for r in s.rows if r.group_key != gk and s.status(r.id) != "pending")
    first = s.log.group_line(plain)
    s.close()
    shard = sorted(ws.candidates_dir.glob("groups-*.jsonl"))[0]
    lines = shard.read_bytes().splitlines(keepends=True)
    at = next(i for i, x in enumerate(lines) if x.startswith(json.dumps({"group_key": plain.group_key})[:-1].encode()))
    moved = {"variant": first["variant"], **first}  # the same line, its keys in another order
    moved["candidates"][plain.pos]["query"] = "the first stored text"
    lines[at] = json.dumps(moved).encode() + b"\n"
    lines.append(json.dumps(plain.group_key)[:-1].join(['{"group_key": ', '", "index": [[\n']).encode())
    shard.write_bytes(b"".join(lines))
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is True
    queue = {r.id for r in s.second_opinion_queue("bob")}
    assert odd[0] in queue and plain.id in queue
    assert s.get(plain.id).query == "the first stored text"
    s.scan()
    assert sum("unreadable group line" in p for p in s.problems) == 1
    s.close()


def test_a_second_opinion_on_ids_of_another_form_decided_in_bulk_reads_the_whole_store_first(ws):
    from review_fixtures import make_group

    _decided_by_ann(ws)
    s = CandidateStore(ws, reviewer="ann")
    for g in range(2):
        gk, cands, rej, meta = make_group(f"video-x{g}", "clip-x", 0.0, 90.0, 5.0)
        for i, c in enumerate(cands):
            c["id"] = f"hand-made-{g}-{i}"  # no "#<n>": its group cannot be told from the id
        s.add_group_result(gk, cands, rej, meta)
    s.load()
    s.decide("hand-made-0-0", "accept")  # a keypress: the journal knows where its line is
    s.bulk(["hand-made-1-0"], "accept", rule="r")  # a bulk step does not
    s.close()
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is False
    queue = {r.id for r in s.second_opinion_queue("bob")}
    assert s.scan_done and {"hand-made-0-0", "hand-made-1-0"} <= queue
    s.close()


def _in_review(ws, monkeypatch, every: int):
    """A store of 40 candidates open for review, a fold due every `every` journal entries."""
    monkeypatch.setattr(journal_mod, "COMPACT_EVERY", every)
    s = CandidateStore(ws)
    ids = populate(s, 40)
    s.begin_review()
    return s, ids


def test_a_fold_due_in_a_session_runs_beside_it_and_the_keypress_waits_for_nothing(ws, monkeypatch):
    s, ids = _in_review(ws, monkeypatch, every=10)
    real, release, entered = journal_mod.encode_snapshot, threading.Event(), threading.Event()

    def slow_encode(image):  # a fold that takes as long as the test wants
        entered.set()
        assert release.wait(10)
        return real(image)

    monkeypatch.setattr(journal_mod, "encode_snapshot", slow_encode)
    for cid in ids[:10]:
        s.decide(cid, "accept")  # the 10th makes a fold due: it starts beside
    assert entered.wait(10)
    for cid in ids[10:15]:  # decided while the fold is still writing
        s.decide(cid, "reject")
    assert s.status(ids[14]) == "rejected"
    release.set()
    s.journal.join_fold(10)
    snap = json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())
    assert snap["upto_seq"] == 10
    assert len((ws.candidates_dir / "decisions.jsonl").read_text().splitlines()) == 5
    s.close()
    again = CandidateStore(ws).load()
    assert again.counts()["accepted"] == 10 and again.counts()["rejected"] == 5


def test_a_fold_beside_that_fails_loses_nothing_says_so_once_and_is_tried_again_later(ws, monkeypatch):
    s, ids = _in_review(ws, monkeypatch, every=20)  # tried again every 2 entries
    real = journal_mod.atomic_write_bytes
    full = [True]

    def full_disk(path, data):
        if full[0]:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(journal_mod, "atomic_write_bytes", full_disk)
    tried = []
    real_fold = s.journal._fold_in_thread
    monkeypatch.setattr(s.journal, "_fold_in_thread", lambda: (tried.append(s.journal.entries), real_fold()))
    for cid in ids[:23]:
        s.decide(cid, "accept")
        s.journal.join_fold()
        if len(s.journal.states) == 21:
            full[0] = False  # room again, before the 22nd
    assert tried == [20, 22]  # the second try succeeded
    assert sum("not folded" in p for p in s.problems) == 1
    assert json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())["upto_seq"] == 22
    s.close()
    assert CandidateStore(ws).load().counts()["accepted"] == 23


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 12289])
def test_the_snapshot_encodes_long_columns_in_pieces_to_the_same_bytes(n):
    from engine.store.snapshot import dumps, dumps_list

    rng = random.Random(n)
    items = [rng.choice([None, 1.5, 7, 'a\u00e9"\\\n', "\ud800", "x" * rng.randrange(30)]) for _ in range(n)]
    assert dumps_list(items) == dumps(items)
    assert json.loads(dumps_list(items).decode("utf-8", "surrogatepass")) == json.loads(
        dumps(items).decode("utf-8", "surrogatepass")
    )


def test_a_second_opinion_reads_the_lines_the_journal_located_even_after_a_fold(ws, monkeypatch):
    """Keypress decisions name their line (kept in the snapshot by a fold): only those lines are
    read, no walk over the store; a place that is stale or not a line's start is only a hint."""
    from engine.store import early

    ids = _decided_by_ann(ws)
    s = CandidateStore(ws, reviewer="ann")
    s.load()
    s.begin_review()
    s.compact()  # the journal's places now live in the snapshot
    s.close()
    snap = json.loads((ws.candidates_dir / "decisions.snapshot.json").read_text())
    assert len(snap["located"]["ids"]) >= 40
    full = CandidateStore(ws, reviewer="bob").load()
    expected = {r.id for r in full.second_opinion_queue("bob")}
    walked = []
    real = early.read_groups
    monkeypatch.setattr(early, "read_groups", lambda log, keys, *a: walked.append(keys) or real(log, keys, *a))
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is True
    located_keys = {cid.rpartition("#")[0] for cid in snap["located"]["ids"]}
    unlocated = {cid.rpartition("#")[0] for cid in expected} - located_keys  # the bulk step's alone
    assert unlocated and walked == [unlocated]
    assert {r.id for r in s.second_opinion_queue("bob")} == expected
    s.close()
    # Damaged places: one mid-line, one past the end, one in a shard that is not there.
    loc = snap["located"]
    loc["offset"][0] += 3
    loc["offset"][1] = 10**12
    loc["shard"][2] = "groups-none.jsonl"
    (ws.candidates_dir / "decisions.snapshot.json").write_text(json.dumps(snap))
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is True
    assert {r.id for r in s.second_opinion_queue("bob")} == expected
    while not s.scan_done:
        s.scan(budget=64 << 10)
    assert sorted(r.id for r in s.rows) == sorted(ids) and s.problems == []
    s.close()
    full.close()


def test_an_id_placed_twice_in_a_hand_edited_snapshot_has_one_place(ws):
    """location_of (the early card's peek) and locations (the second opinion's read) agree on
    an id a hand-edited snapshot places twice: the last place, as a dict of them keeps it."""
    _decided_by_ann(ws)
    s = CandidateStore(ws, reviewer="ann")
    s.load()
    s.begin_review()
    s.compact()
    s.close()
    path = ws.candidates_dir / "decisions.snapshot.json"
    snap = json.loads(path.read_text())
    loc = snap["located"]
    cid = loc["ids"][0]
    loc["ids"].append(cid)
    loc["shard"].append(loc["shard"][1])
    loc["offset"].append(loc["offset"][1])
    path.write_text(json.dumps(snap))
    s = CandidateStore(ws, reviewer="bob")
    s.load()
    assert s.journal.location_of(cid) == s.journal.locations()[cid]
    assert s.journal.location_of(cid)[1] == loc["offset"][1] != loc["offset"][0]
    s.close()


def test_places_that_are_no_places_are_ignored_and_a_deleted_variant_forgets_them(ws):
    """Offsets past any file (hand-edited, in the snapshot or a journal line) never stop a
    second opinion from opening; deleting a variant rewrites the shards, so every place goes."""
    from engine.store.snapshot import located_columns

    assert located_columns({"shards": ["a"], "ids": ["x"], "shard": [0], "offset": [1 << 63]}) is None
    assert located_columns({"shards": ["a"], "ids": ["x"], "shard": [1], "offset": [5]}) is None
    assert located_columns({"shards": ["a"], "ids": ["x"], "shard": [True], "offset": [5]}) is None
    assert located_columns({"shards": ["a"], "ids": ["x"], "shard": [0], "offset": [5]}) is not None
    ids = _decided_by_ann(ws)
    shard = sorted(ws.candidates_dir.glob("groups-*.jsonl"))[0].name
    with open(ws.candidates_dir / "decisions.jsonl", "a") as f:
        for i, off in enumerate([1 << 63, (1 << 64) - 1, -5]):
            entry = {"seq": 10_000 + i, "op": "decide", "ids": [ids[i]], "status": "accepted", "reviewer": "ann"}
            f.write(json.dumps({**entry, "t": 1.0, "at": [shard, off]}) + "\n")
    s = CandidateStore(ws, reviewer="bob")
    assert s.read_second_opinion_groups("bob") is True
    assert set(ids[:3]) <= {r.id for r in s.second_opinion_queue("bob")}
    s.close()
    s = CandidateStore(ws, reviewer="ann").load()
    assert s.journal.locations()
    s.begin_review()
    s.journal.forget(set(ids[:1]))
    assert s.journal.locations() == {}
    s.close()


def test_a_fold_beside_that_dies_of_anything_is_said_and_backs_off(ws, monkeypatch):
    s, ids = _in_review(ws, monkeypatch, every=20)
    tried = []

    def dies(image):
        tried.append(s.journal.entries)
        raise MemoryError("no room for the snapshot")

    monkeypatch.setattr(journal_mod, "encode_snapshot", dies)
    for cid in ids[:25]:
        s.decide(cid, "accept")
        s.journal.join_fold()
    assert tried == [20, 22, 24]  # not one per keypress
    assert s.take_fold_problem() and s.take_fold_problem() is None
    assert sum("not folded" in p for p in s.problems) == 1
    monkeypatch.undo()
    s.close()
    assert CandidateStore(ws).load().counts()["accepted"] == 25
