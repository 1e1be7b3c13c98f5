"""Pilot tests of the Review screen inside the real app: the whole flow, keys to disk."""

import gc
import json
import threading
import weakref

import pytest
from review_fixtures import make_group, populate, write_data_root

from engine.store import CandidateStore
from engine.workspace import Workspace
from nlq_tui.app import NLQApp
from nlq_tui.context import AppContext
from nlq_tui.screens.review import ReviewScreen


@pytest.fixture
def ws(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    populate(s, 40, flagged_every=3)
    s.close()
    return ws


def make_app(ws, root=None, reviewer="ann"):
    ctx = AppContext(ws, root, "egovlp_fp16", reviewer)
    return NLQApp(ctx, "review", load_on_start=False)


async def opened(pilot):
    screen = pilot.app.screen
    for _ in range(200):
        await pilot.pause(0.02)
        if screen.store is not None and (screen.current is not None or not screen.queue):
            return screen
    raise AssertionError("the review screen did not open its store")


def on_disk(ws):
    """The statuses as a fresh reader sees them: what survives the process."""
    s = CandidateStore(ws).load()
    return s


async def test_accept_reject_with_reason_and_skip_are_on_disk_at_once(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        # Widget.loading is Textual's own "cover me with a spinner" switch; in a real terminal
        # a screen with it set never paints. The reader's state must live elsewhere.
        assert screen.loading is False
        first = screen.current.id
        await pilot.press("a")
        second = screen.current.id
        assert second != first
        assert on_disk(ws).status(first) == "accepted"
        await pilot.press("x", "2")  # reason 2: ambiguous
        third = screen.current.id
        st = on_disk(ws).state(second)
        assert st["status"] == "rejected" and st["reason"] == "ambiguous" and st["reviewer"] == "ann"
        await pilot.press("x", "enter")  # the default reason
        assert on_disk(ws).state(third)["reason"] == "other"
        fourth = screen.current.id
        await pilot.press("space")
        assert on_disk(ws).status(fourth) == "skipped"
        await pilot.press("f")
        assert on_disk(ws).counts()["flagged"] == 1
        assert "reviewed 3 / 40" in str(screen.query_one("#progress").render())


async def test_reject_then_escape_decides_nothing(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        first = screen.current.id
        await pilot.press("x", "escape")
        assert screen.current.id == first
        assert on_disk(ws).counts()["pending"] == 40


async def test_edit_in_place_keeps_the_original_and_accepts(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        cid = screen.current.id
        original = screen.store.by_id[cid].query
        await pilot.press("e")
        box = screen.query_one("#edit")
        assert box.has_focus and box.value == original
        await pilot.press("!")  # typed at the end, not over a selection of the whole question
        assert box.value == original + "!" and "Esc cancels" in str(box.border_subtitle)
        box.value = ""
        await pilot.press(*"Where did I leave the keys?")  # typed letters must not trigger a/x/e/f
        await pilot.press("enter")
        s = on_disk(ws)
        assert s.status(cid) == "edited" and s.query_text(cid) == "Where did I leave the keys?"
        assert s.candidate(cid)["query"] == original
        assert s.counts()["accepted"] == 0 and s.counts()["edited"] == 1
        assert screen.current.id != cid


async def test_undo_steps_back_many_levels(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        a = screen.current.id
        await pilot.press("a")
        b = screen.current.id
        await pilot.press("x", "1")
        c = screen.current.id
        await pilot.press("a")
        await pilot.press("u")
        assert screen.current.id == c and on_disk(ws).status(c) == "pending"
        await pilot.press("backspace")
        assert screen.current.id == b and on_disk(ws).status(b) == "pending"
        await pilot.press("u")
        assert screen.current.id == a
        assert on_disk(ws).counts()["pending"] == 40
        journal = (ws.candidates_dir / "decisions.jsonl").read_text().splitlines()
        assert [json.loads(x)["op"] for x in journal] == ["decide"] * 3 + ["undo"] * 3


async def test_the_filters_match_count_follows_each_decision_and_undo(ws):
    """The open queue's count drops with each decision and comes back with its undo (it stayed
    at the queue's length, while the progress line moved on)."""
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)

        def count() -> str:
            return str(screen.query_one("#filter-text").render()).rsplit("\n", 1)[-1].split("  (still")[0]

        n = len(screen.queue)
        assert count() == f"{n} match"
        await pilot.press("a")
        await pilot.press("x", "1")
        assert count() == f"{n - 2} of {n} still match"
        await pilot.press("space")  # a skipped one is still open: it still matches
        assert count() == f"{n - 2} of {n} still match"
        await pilot.press("u")  # the skip
        assert count() == f"{n - 2} of {n} still match"
        await pilot.press("u")  # the reject
        assert count() == f"{n - 1} of {n} still match"
        await pilot.press("u")
        assert count() == f"{n} match"


async def test_bulk_accept_by_rule_previews_confirms_and_undoes_in_one_step(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        await pilot.press("x", "3")  # a decision before the bulk step stays as it was
        rejected = next(iter(screen.store.states))
        expected = len(screen.store.select(screen.filter.__class__(status="open", flags="none", max_ambiguity=0)))
        assert 0 < expected < 39
        await pilot.press("b")
        bulk = app.screen
        assert f"{expected:,}" in str(bulk.query_one("#b-preview").render())
        bulk.apply()
        await pilot.pause()
        confirm = app.screen
        assert f"{expected:,}" in str(confirm.query_one("#confirm-text").render())
        await pilot.press("y")
        s = on_disk(ws)
        assert s.counts()["accepted"] == expected
        assert all(not s.by_id[cid].flags for cid, st in s.states.items() if st["status"] == "accepted")
        await pilot.press("u")
        s = on_disk(ws)
        assert s.counts()["accepted"] == 0 and s.status(rejected) == "rejected"
        # the undone bulk's candidates are open again, so back in the queue and its count
        assert len(screen.queue) == 39 and "\n39 match" in str(screen.query_one("#filter-text").render())


async def test_bulk_declined_at_confirmation_changes_nothing(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        await opened(pilot)
        await pilot.press("b")
        app.screen.apply()
        await pilot.pause()
        await pilot.press("n")
        assert (
            not (ws.candidates_dir / "decisions.jsonl").exists()
            or (ws.candidates_dir / "decisions.jsonl").read_text() == ""
        )


async def test_filters_narrow_the_queue_by_text_flags_and_status(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        await pilot.press("a")
        await pilot.press("slash")
        dialog = app.screen
        dialog.query_one("#f-text").value = "knife"
        await pilot.press("enter")
        assert screen.queue and all("knife" in r.query for r in screen.queue)
        assert "knife" in screen.current.query
        screen.set_filter(screen.filter.__class__(status="accepted"))
        await pilot.pause()
        assert len(screen.queue) == 1 and screen.store.status(screen.current.id) == "accepted"
        screen.set_filter(screen.filter.__class__(flags="ambiguous"))
        await pilot.pause()
        assert screen.queue and all(r.flags & 4 for r in screen.queue)


async def test_a_recent_decision_can_be_changed_from_the_side_list(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        first = screen.current.id
        await pilot.press("a", "a", "a")
        await pilot.press("tab")
        recent = screen.query_one("#recent")
        assert recent.option_count == 3
        recent.highlighted = 2  # the oldest of the three: the first one
        await pilot.press("enter")
        assert screen.current.id == first
        await pilot.press("x", "4")
        assert on_disk(ws).state(first)["reason"] == "wrong_target"
        assert screen.current.id != first  # back to the queue


async def test_second_app_on_the_same_workspace_is_read_only(ws):
    holder = CandidateStore(ws, reviewer="bob")
    holder.begin_review()
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        assert screen.read_only and "pid" in screen.read_only
        await pilot.press("a")
        assert on_disk(ws).counts()["pending"] == 40
    holder.close()


async def test_new_candidates_from_a_running_generation_are_picked_up(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        gen = CandidateStore(ws)  # a generation job beside the review session
        gk, cands, rej, meta = make_group("video-new", "clip-new", 0.0, 90.0, 3.0, number0=777)
        assert gen.add_group_result(gk, cands, rej, meta)
        gen.close()
        await pilot.press("r")
        assert len(screen.queue) == 45
        assert [r.id for r in screen.queue[-5:]] == [c["id"] for c in cands]


async def test_new_candidates_appear_without_a_key_in_an_empty_queue(tmp_path, monkeypatch):
    import nlq_tui.screens.review as review

    monkeypatch.setattr(review, "REFRESH_S", 0.2)  # read when the screen mounts
    ws = Workspace(tmp_path / "empty")
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        gen = CandidateStore(ws)  # the Generate screen or a CLI job, after review opened
        gk, cands, rej, meta = make_group("video-new", "clip-new", 0.0, 90.0, 3.0)
        assert gen.add_group_result(gk, cands, rej, meta)
        gen.close()
        for _ in range(100):
            if screen.current is not None:
                break
            await pilot.pause(0.05)
        assert screen.current is not None and screen.current.id == cands[0]["id"]
        assert len(screen.queue) == 5


async def test_export_button_writes_the_nlq_file(ws, tmp_path):
    root = write_data_root(tmp_path / "ego4d")
    app = make_app(ws, root)
    async with app.run_test(size=(160, 50)) as pilot:
        await opened(pilot)
        await pilot.press("a", "a")
        await pilot.press("ctrl+e")
        out = tmp_path / "from_tui.json"
        app.screen.query_one("#e-path").value = str(out)
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        doc = json.loads(out.read_text())
        assert sum(len(c["annotations"]) for v in doc["videos"] for c in v["clips"]) == 2
        assert (tmp_path / "from_tui.json.manifest.json").exists()


async def test_an_empty_workspace_says_what_to_do(tmp_path):
    app = make_app(Workspace(tmp_path / "empty"))
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        for _ in range(50):
            if not screen.reading:
                break
            await pilot.pause(0.02)
        assert "No candidates yet" in str(screen.query_one("#question").render())
        await pilot.press("a", "u")  # nothing to decide or undo; nothing breaks
        assert screen.current is None


async def test_a_candidate_without_a_usable_window_is_shown_with_its_problem(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("v1", "c1", 0.0, 90.0, 5.0)
    cands[0]["window"].update(start=None, end=None, clip_rel_start=None, clip_rel_end=None)
    cands[0]["checks"].update(window_problems=["outside_clip"], ambiguity=-1)
    s.add_group_result(gk, cands, rej, meta)
    s.close()
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        assert screen.current.id == cands[0]["id"]
        badges = str(screen.query_one("#badges").render())
        assert "window: outside_clip" in badges and "ambiguity ?" in badges
        assert "no usable window" in str(screen.query_one("#narrations").render())
        await pilot.press("x", "1")
        assert CandidateStore(ws).load().state(cands[0]["id"])["reason"] == "wrong_window"


async def test_an_unreadable_stored_line_is_reported_and_the_rest_reviewed(ws):
    shard = next(ws.candidates_dir.glob("groups-*.jsonl"))
    with open(shard, "ab") as f:
        f.write(b'{"group_key": "broken", "index": [oops]}\n')  # a complete but corrupt line
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        for _ in range(50):
            if not screen.reading:
                break
            await pilot.pause(0.02)
        await pilot.pause()
        assert len(screen.store.rows) == 40
        assert any("unreadable group line skipped" in n.message for n in app._notifications)


async def test_a_taller_card_after_a_short_one_is_laid_out_in_full(tmp_path):
    # Cards update without a layout pass while their heights stay the same; one that needs
    # more rows (more narrations, a question that wraps) must still get them all.
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    s.add_group_result(*make_group("video-a", "clip-a", 0.0, 480.0, 10.0, 2, number0=0))
    gk, cands, rej, meta = make_group("video-b", "clip-b", 0.0, 480.0, 10.0, 6, number0=100)
    for c in cands:
        c["query"] = "where did I put the " + " and the ".join(["red cup"] * 30) + "?"
    s.add_group_result(gk, cands, rej, meta)
    s.close()
    app = make_app(ws)
    async with app.run_test(size=(120, 50)) as pilot:
        screen = await opened(pilot)
        assert screen.query_one("#narrations").size.height == 2 + 1  # narrations + the window line
        question = screen.query_one("#question").size.height
        await pilot.press("a", "a")
        assert screen.current.id == cands[0]["id"]
        await pilot.pause()
        assert screen.query_one("#narrations").size.height == 6 + 1
        assert screen.query_one("#timeline").size.height == 2 + 6
        assert screen.query_one("#question").size.height > question  # the long one wraps
        await pilot.press("a")  # the same heights again: still all drawn
        await pilot.pause()
        assert screen.current.id == cands[1]["id"]
        assert screen.query_one("#narrations").size.height == 6 + 1


async def test_a_bulk_step_changes_exactly_the_previewed_set_and_flagged_only_when_included(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        held = screen.current.id
        await pilot.press("f")  # set aside for a later look
        screen.set_filter(screen.filter.__class__(status="all"))
        await pilot.pause()
        await pilot.press("b")
        bulk = app.screen
        bulk.query_one("#b-flags").value = "any"
        bulk.query_one("#b-ambiguity").value = ""
        await pilot.pause()
        preview = list(bulk.ids)
        assert held not in preview and len(preview) == 39  # "all" less the flagged one
        assert "status=pending,accepted,edited,rejected,skipped" in str(bulk.query_one("#b-preview").render())
        bulk.apply()
        await pilot.pause()
        await pilot.press("y")
        s = on_disk(ws)
        assert {cid for cid, st in s.states.items() if st["status"] == "accepted"} == set(preview)
        assert s.status(held) == "flagged" and s.counts()["flagged"] == 1
        assert f"{len(screen.queue):,} match" in str(screen.query_one("#filter-text").render())
        await pilot.press("u")
        await pilot.press("b")
        bulk = app.screen
        bulk.query_one("#b-flags").value = "any"
        bulk.query_one("#b-ambiguity").value = ""
        bulk.query_one("#b-held").value = "include"
        await pilot.pause()
        assert held in bulk.ids and len(bulk.ids) == 40
        bulk.apply()
        await pilot.pause()
        await pilot.press("y")
        assert on_disk(ws).status(held) == "accepted"


async def test_a_bulk_rule_on_accepted_candidates_never_widens_to_the_open_ones(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        await pilot.press("a", "a", "f")
        screen.set_filter(screen.filter.__class__(status="accepted"))
        await pilot.pause()
        await pilot.press("b")
        bulk = app.screen
        bulk.query_one("#b-action").value = "reject"
        bulk.query_one("#b-flags").value = "any"
        bulk.query_one("#b-ambiguity").value = ""
        await pilot.pause()
        assert len(bulk.ids) == 2 and "status=accepted" in str(bulk.query_one("#b-preview").render())
        bulk.apply()
        await pilot.pause()
        await pilot.press("y")
        c = on_disk(ws).counts()
        assert c["rejected"] == 2 and c["accepted"] == 0 and c["flagged"] == 1 and c["pending"] == 37


def second_opinion_app(ws, reviewer):
    """The app on the Review screen as `reviewer` asking for a blind second opinion."""
    ctx = AppContext(ws, None, "egovlp_fp16", reviewer)
    ctx.second_opinion = True
    return NLQApp(ctx, "review", load_on_start=False)


async def test_a_second_opinion_is_blind_random_and_kept_beside_the_first(ws):
    s = CandidateStore(ws, reviewer="ann")
    ids = [r.id for r in s.load().rows]
    for cid in ids[:6]:
        s.decide(cid, "reject", reason="ambiguous")
    s.decide(ids[6], "edit", text="Where did ann leave the cup?")
    s.close()
    app = second_opinion_app(ws, "bob")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        assert sorted(r.id for r in screen.queue) == sorted(ids[:7])
        for _ in range(7):
            head = str(screen.query_one("#where").render())
            assert "SECOND OPINION" in head and "REJECTED" not in head and "by ann" not in head
            assert "ann leave" not in str(screen.query_one("#question").render())
            await pilot.press("a")
        assert screen.current is None
    s = on_disk(ws)
    assert s.counts()["rejected"] == 6 and s.counts()["edited"] == 1  # the first decisions stand
    assert {cid for cid, by in s.opinions.items() if by["bob"]["status"] == "accepted"} == set(ids[:7])


async def test_a_second_opinions_filter_count_leaves_out_what_this_reviewer_judged(ws):
    """A filter set during a second opinion takes its queue from the store's select, which keeps
    the candidates this reviewer already judged; the count does not (they no longer match)."""
    s = CandidateStore(ws, reviewer="ann")
    ids = [r.id for r in s.load().rows]
    for cid in ids[:6]:
        s.decide(cid, "reject", reason="ambiguous")
    s.close()
    app = second_opinion_app(ws, "bob")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.press("a", "a")  # bob's opinion on two of ann's six
        screen.set_filter(screen.filter.__class__(status="rejected"))
        await pilot.pause()
        assert len(screen.queue) == 6
        assert "\n4 of 6 still match" in str(screen.query_one("#filter-text").render())


async def test_a_second_opinion_shows_its_first_card_blind_before_the_queue_is_read(ws, monkeypatch):
    s = CandidateStore(ws, reviewer="ann")
    ids = [r.id for r in s.load().rows]
    for cid in ids[:5]:
        s.decide(cid, "edit", text="Where did ann leave the cup?")
    s.close()
    painted = []
    real = ReviewScreen._paint_card

    def paint(self, row, c, where, status, state, text, blind):
        painted.append((row.id, where, blind, text, self.store is None))
        real(self, row, c, where, status, state, text, blind)

    monkeypatch.setattr(ReviewScreen, "_paint_card", paint)
    app = second_opinion_app(ws, "bob")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        early, first = painted[0], painted[1]
        assert early[1] == "counting the queue…" and early[4] and early[2]  # before the store, blind
        assert "ann leave" not in early[3] and early[0] == first[0] == screen.queue[0].id
        assert first[1].startswith("1 of 5")
        head = str(screen.query_one("#where").render())
        assert "SECOND OPINION" in head and "EDITED" not in head


async def test_recent_decisions_show_the_reject_reason_and_the_rate_is_net_of_undo(ws):
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        await pilot.press("x", "2", "a", "a")
        recent = screen.query_one("#recent")
        assert "several moments would answer it" in str(recent.get_option_at_index(2).prompt)
        assert len(screen.store.session_decisions) == 3
        await pilot.press("u")
        assert len(screen.store.session_decisions) == 2


async def test_hostile_text_in_a_candidate_is_shown_as_text(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    gk, cands, rej, meta = make_group("video-[/]evil\x1b]2;title\x07", "clip-\x1b[2J", 0.0, 90.0, 5.0)
    cands[0]["query"] = "[bold red]x[/] \x1b]52;c;Zm9v\x07 [@click=app.quit] [$accent] where?"
    for n in cands[0]["group_narrations"]:
        n["text"] = "#C C [/] \x1b[?1049l opens \x1b]8;;file:///etc/passwd\x1b\\link\x1b]8;;\x1b\\"
    cands[0]["checks"]["window_problems"] = ["[/]\x1b[31m"]
    s.add_group_result(gk, cands, rej, meta)
    s.close()
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        shown = "".join(
            str(screen.query_one(sel).render()) for sel in ("#where", "#question", "#badges", "#narrations")
        )
        assert "\x1b" not in shown and "[/]" in shown and "[bold red]x[/]" in shown
        await pilot.press("x", "1", "tab")
        assert "\x1b" not in str(screen.query_one("#recent").get_option_at_index(0).prompt)
        assert app.is_running


async def test_a_read_only_workspace_opens_for_browsing(ws, monkeypatch):
    import builtins
    import errno

    real = builtins.open

    def read_only(path, *a, **k):  # as on a read-only mount: no lock file can be made
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(path, *a, **k)

    monkeypatch.setattr(builtins, "open", read_only)
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        assert screen.read_only and "can only be read" in screen.read_only
        assert screen.current is not None and "in queue" in str(screen.query_one("#where").render())


def test_the_second_opinion_flag_reaches_the_screens_context(ws):
    from nlq_tui.cli import build_parser

    argv = ["--workspace", str(ws.path), "--reviewer", "bob", "--screen", "review", "--second-opinion"]
    ctx = AppContext.from_args(build_parser().parse_args(argv))
    assert ctx.second_opinion is True and ctx.reviewer == "bob"
    assert AppContext.from_args(build_parser().parse_args(argv[:-1])).second_opinion is False


async def test_export_from_review_keeps_the_filters_variant_in_the_chosen_format(tmp_path):
    from engine.store import Filter

    root = write_data_root(tmp_path / "ego4d")
    ws = Workspace(tmp_path / "ws")
    s = CandidateStore(ws)
    populate(s, 20, videos=2, models=("gpt-4o-mini", "llama3"))
    s.bulk([r.id for r in s.rows], "accept", rule="all")
    s.close()
    app = make_app(ws, root)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        screen.set_filter(Filter(status="all", variants=frozenset({"openai-llama3-v1"})))
        await pilot.pause()
        await pilot.press("ctrl+e")
        out = tmp_path / "llama.jsonl"
        app.screen.query_one("#e-path").value = str(out)
        app.screen.query_one("#e-format").value = "jsonl"
        await pilot.pause()
        app.screen.go()
        await app.workers.wait_for_complete()
        await pilot.pause()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10 and {r["variant"] for r in rows} == {"openai-llama3-v1"}
    assert (tmp_path / "llama.jsonl.README.md").exists()


async def test_the_first_card_shows_before_the_journal_is_applied_and_is_the_one_the_queue_gives(ws, monkeypatch):
    s = CandidateStore(ws, reviewer="ann")
    ids = [r.id for r in s.load().rows]
    s.bulk(ids[:10], "accept", rule="first ten")
    s.decide(ids[10], "skip")  # the last decision: its group is read first, and it is still open
    s.decide(ids[11], "accept")
    s.close()
    gate = threading.Event()
    real = CandidateStore.load_decisions

    def held_in_the_worker(self):
        if threading.current_thread() is not threading.main_thread():
            assert gate.wait(10)
        real(self)

    monkeypatch.setattr(CandidateStore, "load_decisions", held_in_the_worker)
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = pilot.app.screen
        for _ in range(200):
            await pilot.pause(0.02)
            if screen.first_shown_at is not None:
                break
        assert screen.store is None  # the journal is not applied yet
        head = str(screen.query_one("#where").render())
        assert "SKIPPED" in head and "counting" in head and ids[10] in head
        assert "reading the decisions" in str(screen.query_one("#progress").render())
        await pilot.press("a")  # no store yet: a notice, nothing decided
        assert on_disk(ws).status(ids[10]) == "skipped"
        gate.set()
        screen = await opened(pilot)
        assert screen.current.id == ids[10]  # the card the queue gives first is the one shown
        assert "reviewed 11 / 40" in str(screen.query_one("#progress").render())
        await pilot.press("a")
        assert on_disk(ws).status(ids[10]) == "accepted"
        assert screen.current.id == ids[12]  # ids[11] is decided: the queue goes past it


async def test_leaving_the_screen_frees_the_store_at_once(ws):
    # Left to the cyclic collector, a million rows would be walked and freed in one pause,
    # in the middle of whatever comes next (such as the screen opened again).
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        while screen.reading:
            await pilot.pause(0.02)
        store = weakref.ref(screen.store)
        rows = weakref.ref(screen.store.log)  # what holds the rows
    collecting = gc.isenabled()
    gc.disable()
    try:
        assert store() is None and rows() is None
    finally:
        if collecting:
            gc.enable()


async def test_at_80x24_the_card_gets_the_room_and_its_head_one_line(ws):
    app = make_app(ws)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot)
        await pilot.pause()
        assert screen.has_class("-narrow")
        assert screen.query_one("#side").outer_size.width == 26
        assert screen.query_one("#where").size.height == 1  # the id is cut, not wrapped
        assert "PENDING" in str(screen.query_one("#where").render())
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        await pilot.pause()
        assert not screen.has_class("-narrow") and screen.query_one("#side").outer_size.width == 48


async def test_a_fold_that_fails_on_open_warns_and_the_review_goes_on(ws, monkeypatch):
    import errno

    def full_disk(self):  # the path in the error is outside text: markup and an escape sequence in it
        raise OSError(errno.ENOSPC, "No space left on device", "ws[link=file:///etc/passwd]x[/]\x1b]2;T\x07")

    monkeypatch.setattr(CandidateStore, "compact_if_due", full_disk)
    app = make_app(ws)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        for _ in range(200):
            await pilot.pause(0.02)
            if not screen.reading:
                break
        assert not screen.reading  # the scan went on to the end: queue and counts are in
        (warning,) = [str(n.message) for n in app._notifications if "decisions not folded" in str(n.message)]
        assert "[link=file:///etc/passwd]x[/]" in warning and "\x1b" not in warning  # shown as the characters it is
        first = screen.current.id
        await pilot.press("a")
        assert on_disk(ws).status(first) == "accepted"


async def test_a_filter_set_during_a_second_opinion_takes_the_rows_read_after_it(ws, monkeypatch):
    """The blind queue shows before the whole store is read; a filter set meanwhile replaces
    it, and the rows read later join that filter's queue (reviewer's find)."""
    from engine.store import Filter

    s = CandidateStore(ws, reviewer="ann")
    ids = [r.id for r in s.load().rows]
    for cid in ids[:3]:
        s.decide(cid, "accept")
    s.close()
    gate, real = threading.Event(), CandidateStore.scan

    def held(self, budget=None):  # the screen's background slices wait for the filter
        if budget is not None:
            assert gate.wait(10)
        return real(self, budget)

    monkeypatch.setattr(CandidateStore, "scan", held)
    app = second_opinion_app(ws, "bob")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await opened(pilot)
        assert screen.reading and len(screen.store.rows) < len(ids)
        assert sorted(r.id for r in screen.queue) == sorted(ids[:3])  # the blind sample
        screen.set_filter(Filter(status="pending"))
        gate.set()
        for _ in range(300):
            await pilot.pause(0.02)
            if not screen.reading:
                break
        assert len(screen.queue) == len(ids) - 3


async def test_a_fold_that_fails_beside_the_session_is_said_once_on_the_next_key(ws, monkeypatch):
    """The fold every 10,000 decisions runs beside the session: a full disk there is shown on
    the keypress after it, once (reviewer's find: it went only to the store's problem list)."""
    import engine.store.journal as journal_mod

    monkeypatch.setattr(journal_mod, "COMPACT_EVERY", 5)
    real = journal_mod.atomic_write_bytes

    def full_disk(path, data):
        if path.name == "decisions.snapshot.json":
            raise OSError(28, "No space left on device")
        real(path, data)

    app = make_app(ws)
    async with app.run_test(size=(160, 50), notifications=True) as pilot:
        screen = await opened(pilot)
        while screen.reading:
            await pilot.pause(0.02)
        monkeypatch.setattr(journal_mod, "atomic_write_bytes", full_disk)
        for _ in range(8):
            await pilot.press("a")
            screen.store.journal.join_fold(5)
        said = [str(n.message) for n in app._notifications]
        assert sum("not folded" in m for m in said) == 1
    assert on_disk(ws).counts()["accepted"] == 8  # every decision is in the journal
