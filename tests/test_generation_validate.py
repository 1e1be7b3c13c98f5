"""Parsing, validation, the template backend, quality flags and prompt versions (no network)."""

from __future__ import annotations

import json

import pytest

from engine.generation.parse import ParseFailure, parse_answer
from engine.generation.prompt import (
    DEFAULT_PROMPT,
    build_messages,
    current_prompt,
    list_prompts,
    save_prompt,
    use_prompt,
)
from engine.generation.quality import OTHER_TEMPLATE, Item, QualityChecker, closest_template
from engine.generation.template import parse_narration, question_for_text, questions_for_group
from engine.generation.validate import copies_narration, validate
from engine.index import FLAG_UNSURE
from engine.workspace import Workspace

NARRS = ["#C C picks up the knife from the table", "#C C cuts the onion with the knife", "#C C opens the fridge"]
GOOD = {"questions": [
    {"narration": 1, "query": "Where was the knife before I picked it up?"},
    {"narration": 2, "query": "What did I cut with the knife?"},
    {"narration": 3, "query": "Did I leave the fridge open?"},
]}  # fmt: skip


# ----------------------------------------------------------------------------- parsing


def test_answer_in_code_fence_with_prose_around_is_parsed():
    text = "Here you go:\n```json\n" + json.dumps(GOOD) + "\n```\nThanks!"
    assert [n for n, _ in parse_answer(text)] == [1, 2, 3]


def test_json_embedded_in_prose_without_fence_is_parsed():
    text = "Sure. " + json.dumps(GOOD) + " Hope that helps {not json}."
    assert parse_answer(text)[1] == (2, "What did I cut with the knife?")


def test_bare_list_and_question_key_and_string_numbers_are_accepted():
    text = json.dumps([{"index": "1", "question": "Where is the knife?"}])
    assert parse_answer(text) == [(1, "Where is the knife?")]


def test_prose_only_is_not_json_and_wrong_object_is_wrong_shape():
    with pytest.raises(ParseFailure) as e:
        parse_answer("I cannot do that.")
    assert e.value.reason == "not_json"
    with pytest.raises(ParseFailure) as e:
        parse_answer('{"answers": 3}')
    assert e.value.reason == "wrong_shape"


# ----------------------------------------------------------------------------- validation


def test_good_answer_gives_one_accepted_question_per_narration():
    v = validate("g", NARRS, [0, 0, 0], text=json.dumps(GOOD))
    assert [n for n, _ in v.accepted] == [1, 2, 3] and v.rejected == []


@pytest.mark.parametrize(
    "items, reason",
    [
        ([{"narration": 4, "query": "Where is the knife?"}], "index_out_of_range"),
        (
            [{"narration": 1, "query": "Where is the knife?"}, {"narration": 1, "query": "Where is the pan?"}],
            "extra_question",
        ),
        ([{"narration": 1, "query": "The knife is on the table."}], "not_a_question"),
        ([{"narration": 1, "query": "Knife?"}], "too_short"),
        ([{"narration": 1, "query": "Where " + "really " * 45 + "is it?"}], "too_long"),
        ([{"narration": 1, "query": "Where did C put the knife?"}], "narration_markers"),
        ([{"narration": 1, "query": "Where did #C put the knife?"}], "narration_markers"),
        ([{"narration": 1, "query": "Did I pick up the knife from the table?"}], "copies_narration"),
        ([{"narration": 1, "query": 42}], "not_a_question"),
    ],
)
def test_each_bad_question_is_rejected_with_its_reason(items, reason):
    v = validate("g", NARRS, [0, 0, 0], text=json.dumps({"questions": items}))
    assert reason in v.counts()
    # the narrations without a question are counted too, never silently dropped
    answered = {i["narration"] for i in items if isinstance(i.get("narration"), int) and 1 <= i["narration"] <= 3}
    assert v.counts().get("missing_question", 0) == 3 - len(answered)


def test_question_for_unsure_narration_is_rejected():
    v = validate("g", NARRS, [0, FLAG_UNSURE, 0], text=json.dumps(GOOD))
    assert v.counts() == {"unsure_narration": 1}
    assert [n for n, _ in v.accepted] == [1, 3]


def test_unusable_answer_is_one_rejection_keeping_the_raw_text():
    v = validate("g", NARRS, [0, 0, 0], text="<html>502</html>")
    assert v.accepted == [] and v.rejected[0]["reason"] == "not_json" and "502" in v.rejected[0]["raw"]
    assert v.rejected[0]["group_key"] == "g" and v.rejected[0]["narration"] is None


def test_wh_question_is_not_a_copy_but_yes_no_restatement_is():
    n = "#C C folds the paper"
    assert not copies_narration("Where did I fold the paper?", n)
    assert copies_narration("Did I fold the paper?", n)
    assert copies_narration("When C folds the paper?", n)
    assert not copies_narration("Did I leave the box open?", "#C C opens the box")


# ----------------------------------------------------------------------------- template backend


def test_narration_is_parsed_into_actor_verb_object_place():
    p = parse_narration("#C C picks up the knife from the table")
    assert (p.camera_wearer, p.base, p.particle, p.obj, p.prep, p.place) == (
        True,
        "pick",
        "up",
        "the knife",
        "from",
        "the table",
    )
    o = parse_narration("#O man X holds a phone")
    assert (o.camera_wearer, o.subject, o.base, o.obj) == (False, "the man", "hold", "a phone")


@pytest.mark.parametrize(
    "text, template",
    [
        (
            "#C C puts the cup in the sink",
            (
                "Place: Where did I put X?",
                "Objects: What did I put in X?",
                "Objects: Where is object X before / after event Y?",
            ),
        ),
        ("#C C washes the plates", ("How many", "In what location", "What X did I Y")),
        ("#C C looks at the phone", ("What X did I Y",)),
        ("#O a woman Y talks to C", ("People",)),
    ],
)
def test_template_question_fits_an_official_template_in_first_person(text, template):
    q = question_for_text(text)
    assert q.endswith("?") and "#" not in q and " C " not in f" {q} "
    assert any(t in closest_template(q) for t in template), (q, closest_template(q))


def test_template_questions_are_deterministic_and_one_relates_two_narrations():
    texts = ["#C C washes the knife", "#C C puts the knife in the drawer", "#C C opens the fridge"]
    a = questions_for_group(texts, "k1")
    assert a == questions_for_group(texts, "k1")
    assert any(" after I " in q for q in a)
    v = validate(
        "k1", texts, [0, 0, 0], parsed={"questions": [{"narration": i, "query": q} for i, q in enumerate(a, 1)]}
    )
    assert len(v.accepted) == 3, v.rejected


# ----------------------------------------------------------------------------- quality


def test_closest_template_names_official_templates():
    assert closest_template("Where did I put the scissors?") == "Place: Where did I put X?"
    assert closest_template("How many cups did I wash?").startswith("Objects: How many")
    assert closest_template("Where was the knife before I cut the onion?").endswith("before / after event Y?")
    assert closest_template("Tell me a story?") == OTHER_TEMPLATE


def test_exact_duplicates_in_a_clip_are_flagged_not_dropped():
    qc = QualityChecker(embeddings=False)
    items = [Item("a#1", "clip1", "Where is the knife?", 0, None), Item("a#2", "clip1", "where is the  KNIFE?", 1, None),
             Item("b#1", "clip2", "Where is the knife?", 0, None)]  # fmt: skip
    qc.check_batch(items)
    assert [it.checks["duplicate_of"] for it in items] == [None, "a#1", None]
    assert all(it.checks["ambiguity"] == -1 for it in items)


@pytest.mark.slow
def test_question_matching_many_narrations_of_its_clip_is_ambiguous():
    clip = ["#C C picks up the cup", "#C C picks up the cup", "#C C picks up the cup", "#C C plays the guitar",
            "#C C drives the car"]  # fmt: skip
    qc = QualityChecker(embeddings=True)
    a = Item("g#1", "clip", "Where was the cup before I picked it up?", 0, clip)
    b = Item("g#4", "clip", "What instrument did I play?", 3, clip)
    c = Item("g#5", "clip", "Where was the cup right before I picked it up?", 1, clip)
    qc.check_batch([a, b, c])
    assert a.checks["ambiguity"] >= 2
    assert b.checks["ambiguity"] == 0
    assert c.checks["near_duplicate_of"] == "g#1"


# ----------------------------------------------------------------------------- prompts


def test_user_message_lists_narrations_as_numbered_lines():
    msgs = build_messages(DEFAULT_PROMPT.system, DEFAULT_PROMPT.user, ["#C C a\nb", "#C C c"])
    assert msgs[0]["role"] == "system" and "1. #C C a b\n2. #C C c" in msgs[1]["content"]


def test_saving_a_changed_prompt_adds_a_version_and_old_versions_stay(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert current_prompt(ws).version == 1
    p2 = save_prompt(ws, "Be brief.", "Narrations:\n{narrations}")
    assert p2.version == 2 and current_prompt(Workspace(ws.path)).version == 2
    assert save_prompt(ws, "Be brief.", "Narrations:\n{narrations}").version == 2  # same text: no new version
    assert [p.version for p in list_prompts(ws)] == [1, 2]
    assert use_prompt(ws, 1).system == DEFAULT_PROMPT.system and current_prompt(ws).version == 1


def test_hostile_answers_cost_milliseconds_and_end_as_counted_rejections():
    import time

    deep_inner = json.dumps({"questions": [{"narration": 1, "query": [[[[[[[[["x"]]]]]]]]]}]})
    cases = {
        "prose then deep": "Here: " + "[" * 200_000 + "]" * 200_000,
        "many starts": "{ [ " * 200_000,
        "deep object": "{" + '"a": {' * 50_000 + "}" * 50_001,
        "a nested query": deep_inner,
        "a huge index": json.dumps({"questions": [{"narration": "9" * 5000, "query": "Where is it now?"}]}),
    }
    for name, text in cases.items():
        t0 = time.perf_counter()
        v = validate("g", NARRS, [0, 0, 0], text=text)
        assert time.perf_counter() - t0 < 1.0, name
        assert not v.accepted and v.rejected, name
        for r in v.rejected:
            assert not isinstance(r["raw"], (list, dict)) and len(str(r["raw"])) <= 4000, name


def test_a_policy_keeps_a_reason_as_a_flag_but_never_a_worse_one():
    from engine.generation.validate import policy_keep

    keep = policy_keep({"copies_narration": "flag", "not_json": "flag", "too_short": "reject"})
    assert keep == frozenset({"copies_narration"})  # a whole-answer reason cannot be a flag
    items = [(1, "Did I pick up the knife from the table?"), (2, "Cut?"), (3, "Did I open the fridge?")]
    v = validate("g", NARRS, [0, 0, 0], items=items, keep=keep)
    assert [n for n, _ in v.accepted] == [1, 3] and v.flagged == {1: ["copies_narration"], 3: ["copies_narration"]}
    assert v.counts() == {"too_short": 1}
    strict = validate("g", NARRS, [0, 0, 0], items=items)
    assert strict.counts() == {"copies_narration": 2, "too_short": 1} and not strict.flagged
