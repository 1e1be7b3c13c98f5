"""The synthetic tree's records: a video's entries in ego4d.json, and its NLQ queries (templates
filled from the video's own actions, with answer windows on the clip), as engine.sample writes
them (docs/ARCHITECTURE.md, "File formats")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engine import sample_vocab as vocab

if TYPE_CHECKING:
    from engine.sample import Action, Profile, SampleSummary, _Video

FPS = 30.0


def _uid(rng: np.random.Generator) -> str:
    h = rng.bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _pick(cdf: np.ndarray, u: float) -> int:
    return min(int(np.searchsorted(cdf, u, side="right")), len(cdf) - 1)


_CATEGORY_WORD = {
    "utensil": "utensil",
    "vegetable": "vegetable",
    "fruit": "fruit",
    "dish": "dish",
    "cookware": "cooking vessel",
    "container": "container",
    "food": "food",
    "tool": "tool",
    "material": "material",
    "clothing": "clothing item",
    "cleaning": "cleaning item",
    "device": "device",
    "stationery": "stationery item",
    "personal": "personal item",
    "garden": "garden item",
}
_VERB_BASE = {
    "cut": "cut",
    "wash": "wash",
    "pick": "pick up",
    "peel": "peel",
    "hold": "hold",
    "fold": "fold",
    "open_obj": "open",
    "pour": "pour water into",
    "take": "take out of the {p}",
    "throw": "throw away",
}
_PUT_VERBS = ("put", "carry")


def _counts(acts: list[Action], key) -> dict:
    c: dict = {}
    for a in acts:
        k = key(a)
        if k is not None:
            c[k] = c.get(k, 0) + 1
    return c


def _query_candidates(acts: list[Action]) -> list[tuple[float, str, tuple, dict]]:
    """(weight, template, answer action indices, slots) for every well-posed question in a clip."""
    cands: list[tuple[float, str, tuple, dict[str, Any]]] = []
    obj_n = _counts(acts, lambda a: a.obj)
    put_n = _counts(acts, lambda a: a.obj if a.actor == "C" and a.verb in _PUT_VERBS else None)
    putin_n = _counts(
        acts,
        lambda a: (
            a.place
            if a.actor == "C" and a.verb == "put" and a.place and vocab.PLACE_BY_NAME[a.place].prep == "in"
            else None
        ),
    )
    cat_n = _counts(
        acts,
        lambda a: (
            (a.verb, vocab.OBJECT_BY_NAME[a.obj].category)
            if a.actor == "C" and a.obj and a.verb in _VERB_BASE
            else None
        ),
    )
    vo_n = _counts(acts, lambda a: (a.verb, a.obj) if a.actor == "C" and a.obj else None)
    state_n = _counts(acts, lambda a: (a.verb, a.place) if a.verb in ("open", "close") else None)
    for i, a in enumerate(acts):
        if a.actor != "C":
            if a.obj and obj_n[a.obj] == 1 and a.verb == "other" and "C" in a.text1[3:]:
                cands.append((0.3, vocab.T_WHO, (i,), {"o": a.obj, "actor": a.actor}))
            continue
        if a.obj and a.verb in _PUT_VERBS and put_n[a.obj] == 1:
            cands.append((3.0, vocab.T_PUT, (i,), {"o": a.obj, "p": a.place}))
        if a.obj and obj_n[a.obj] == 1:
            cands.append((3.0, vocab.T_SEE, (i,), {"o": a.obj}))
        if a.verb == "put" and a.place and putin_n.get(a.place) == 1:
            cands.append((1.5, vocab.T_PUT_IN, (i,), {"o": a.obj, "p": a.place}))
        if a.obj and a.verb in _VERB_BASE and cat_n.get((a.verb, vocab.OBJECT_BY_NAME[a.obj].category)) == 1:
            cands.append((1.5, vocab.T_WHAT_X_Y, (i,), {"o": a.obj, "p": a.place, "v": a.verb}))
        if a.obj and obj_n[a.obj] <= 2 and all(b.obj != a.obj for b in acts[i + 1 :]):
            cands.append((1.0, vocab.T_WHERE_MY, (i,), {"o": a.obj}))
        if a.verb in ("open", "close") and state_n.get((a.verb, a.place)) == 1:
            cands.append((0.4, vocab.T_STATE, (i,), {"p": a.place, "v": a.verb}))
        if a.obj and vo_n[(a.verb, a.obj)] in (2, 3) and a.verb in _VERB_BASE:
            same = [j for j, b in enumerate(acts) if b.actor == "C" and b.verb == a.verb and b.obj == a.obj]
            if same[0] == i and acts[same[-1]].end - a.start <= 30.0:
                cands.append((0.4, vocab.T_HOW_MANY, tuple(same), {"o": a.obj, "v": a.verb, "p": a.place}))
    # "Where is object X before / after event Y?": X's last action before Y, or first after it
    for j, b in enumerate(acts):
        if b.actor != "C" or b.verb in ("use", "walk", "other"):
            continue
        for direction in ("before", "after"):
            rng_idx = range(j - 1, -1, -1) if direction == "before" else range(j + 1, len(acts))
            for i in rng_idx:
                a = acts[i]
                if abs(a.start - b.start) > 40.0:
                    break
                if a.actor == "C" and a.obj and a.obj != b.obj and a.place and obj_n[a.obj] <= 2:
                    cands.append((0.15, vocab.T_BEFORE_AFTER, (i,), {"o": a.obj, "event": b, "dir": direction}))
                    break
    return cands


def _query_text(rng: np.random.Generator, template: str, s: dict, curly: bool) -> tuple[str, dict]:
    """Annotator-style wording (close to, not the same as, template questions from narrations)."""
    o: Any = s.get("o")  # None in a template that names no object (kept so in the slots)
    p: Any = s.get("p")
    choice = lambda opts: opts[int(rng.integers(0, len(opts)))]  # noqa: E731
    slots = {"slot_x": o, "verb_x": "[verb_not_applicable]", "slot_y": None, "verb_y": None}
    if template == vocab.T_PUT:
        q = choice(
            [
                f"Where did I put the {o}?",
                f"where did I leave the {o}",
                f"Where did I keep the {o}?",
                f"where did i place the {o}?",
                f"Where did I put the {o} ?",
            ]
        )
        slots["verb_x"] = "put"
    elif template == vocab.T_SEE:
        q = choice(
            [
                f"In what location did I see the {o}?",
                f"where did I see the {o}?",
                f"In what location did I see the {o} ?",
                f"Where was the {o}?",
            ]
        )
    elif template == vocab.T_PUT_IN:
        q = choice([f"What did I put in the {p}?", f"what did I keep in the {p}", f"What did I place in the {p}?"])
        slots.update(slot_x=p, verb_x="put")
    elif template == vocab.T_WHAT_X_Y:
        cat = _CATEGORY_WORD[vocab.OBJECT_BY_NAME[o].category]
        base = _VERB_BASE[s["v"]].format(p=p or "")
        q = choice([f"What {cat} did I {base}?", f"which {cat} did I {base}?", f"What {cat} did I {base}"])
        slots.update(slot_x=cat, verb_x=base)
    elif template == vocab.T_WHERE_MY:
        q = choice([f"Where is my {o}?", f"Where’s my {o}?", f"where is the {o}?", f"Where is the {o}"])
    elif template == vocab.T_STATE:
        q = {
            "open": choice([f"Did I open the {p}?", f"did I leave the {p} open?"]),
            "close": choice([f"Did I close the {p}?", f"Did I shut the {p} door?"]),
        }[s["v"]]
        slots.update(slot_x=p, verb_x=s["v"])
    elif template == vocab.T_HOW_MANY:
        plural = vocab.OBJECT_BY_NAME[o].plural
        q = choice(
            [
                f"How many {plural} did I {_VERB_BASE[s['v']].format(p=p or '')}?",
                f"how many {plural} did I {_VERB_BASE[s['v']].format(p=p or '')}",
            ]
        )
        slots.update(verb_x=s["v"])
    elif template == vocab.T_WHO:
        q = choice(
            [
                f"Who did I interact with when I got the {o}?",
                f"Who handed me the {o}?",
                f"who did I talk to about the {o}?",
            ]
        )
        slots.update(slot_x="person", verb_x="interact", slot_y=o)
    elif template == vocab.T_BEFORE_AFTER:
        ev: Action = s["event"]
        verb = vocab.VERB_BY_KEY[ev.verb]
        pl = vocab.PLACE_BY_NAME[ev.place] if ev.place else None
        phrase = verb.past.format(o=ev.obj or "", p=ev.place or "", prep=pl.prep if pl else "")
        q = choice([f"Where was the {o} {s['dir']} I {phrase}?", f"where is the {o} {s['dir']} I {phrase}?"])
        slots.update(slot_y=ev.obj or ev.place, verb_y=verb.key.split("_")[0])
    else:  # pragma: no cover - every template above
        raise AssertionError(template)
    if curly or rng.random() < 0.03:
        # annotators typed curly apostrophes now and then
        q = {
            vocab.T_PUT: f"Where’d I put the {o}?",
            vocab.T_SEE: f"Where’s the {o} I saw?",
            vocab.T_WHERE_MY: f"Where’s my {o}?",
        }.get(template, q)
    if rng.random() < 0.1:
        q = q.lower()
    return q, slots


def _clip_queries(
    rng: np.random.Generator, v: _Video, clip: tuple[str, float, float], n_q: int, split: str, force: set[str]
) -> list[dict]:
    _, c0, c1 = clip
    acts = sorted((a for a in v.actions + v.others if a.start >= c0 and a.end <= c1), key=lambda a: a.start)
    cands = _query_candidates(acts)
    out: list[dict] = []
    used: set[int] = set()
    while cands and len(out) < n_q:
        w = np.array([c[0] for c in cands])
        k = _pick(np.cumsum(w) / w.sum(), float(rng.random()))
        weight, template, idx, slots = cands.pop(k)
        if used & set(idx):
            continue
        used |= set(idx)
        curly = split != "test" and "curly" in force and template in (vocab.T_PUT, vocab.T_SEE, vocab.T_WHERE_MY)
        if curly:
            force.discard("curly")
        q, slot_fields = _query_text(rng, template, slots, curly)
        # annotators mark a little around the action
        s = max(c0, min(acts[i].start for i in idx) - float(rng.uniform(0.0, 0.8)))
        e = min(c1, max(acts[i].end for i in idx) + float(rng.uniform(0.0, 0.8)))
        # at most one forced quirk per query, so that each stays visible on its own
        forced = next((f for f in ("null_template", "zero", "no_query") if f in force), None)
        if forced == "no_query" and split != "train":
            forced = None
        if forced:
            force.discard(forced)
        if forced == "zero" or rng.random() < 0.02:
            e = s
        lq: dict = {}
        if split != "test":
            cs, ce = round(s - c0, 3), round(e - c0, 3)
            lq.update(
                clip_start_sec=cs,
                clip_end_sec=ce,
                video_start_sec=round(c0 + cs, 3),
                video_end_sec=round(c0 + ce, 3),
                video_start_frame=int(round((c0 + cs) * FPS)),
                video_end_frame=int(round((c0 + ce) * FPS)),
            )
        lq["template"] = None if forced == "null_template" or rng.random() < 0.02 else template
        no_query = split == "train" and (forced == "no_query" or rng.random() < 0.01)
        if not no_query:
            lq["query"] = q
        if split != "test":
            lq.update(slot_fields)
            lq["raw_tags"] = [template] + [x for x in slot_fields.values() if x]
        out.append(lq)
    return out


def _nlq_clip(rng: np.random.Generator, v: _Video, clip: tuple[str, float, float], queries: list[dict]) -> dict:
    uid, c0, c1 = clip
    # one or two annotators per clip, like the real files
    cut = len(queries) if len(queries) < 4 or rng.random() < 0.5 else len(queries) // 2
    anns = [{"language_queries": queries[:cut], "annotation_uid": _uid(rng)}]
    if cut < len(queries):
        anns.append({"language_queries": queries[cut:], "annotation_uid": _uid(rng)})
    return {
        "clip_uid": uid,
        "video_start_sec": c0,
        "video_end_sec": c1,
        "video_start_frame": int(round(c0 * FPS)),
        "video_end_frame": int(round(c1 * FPS)),
        "clip_start_sec": 0.0,
        "clip_end_sec": round(c1 - c0, 3),
        "clip_start_frame": 0,
        "clip_end_frame": int(round((c1 - c0) * FPS)),
        "source_clip_uid": uid,
        "annotations": anns,
    }


def _nlq_clips(rng: np.random.Generator, v: _Video, prof: Profile, force: set[str], summary: SampleSummary) -> list:
    """The video's clips with their queries, in the NLQ file of its split."""
    lo, hi = prof.queries_train if v.split == "train" else prof.queries_eval
    nlq_clips = []
    for ci, clip in enumerate(v.clips):
        if v.split != "train" and ci >= prof.eval_clips_with_queries:
            break
        qs = _clip_queries(rng, v, clip, int(rng.integers(lo, hi + 1)), v.split, force)
        if qs:
            nlq_clips.append(_nlq_clip(rng, v, clip, qs))
            summary.queries[v.split] += len(qs)
    return nlq_clips


def _ego_video(v: _Video, vi: int) -> dict:
    """The video's entry in ego4d.json."""
    return {
        "video_uid": v.uid,
        "duration_sec": v.duration,
        "scenarios": [v.scenario],
        "video_metadata": {
            "fps": FPS,
            "num_frames": int(v.duration * FPS),
            "mp4_duration_sec": v.duration,
            "display_resolution_width": 1920,
            "display_resolution_height": 1080,
        },
        "split_em": v.split,
        "is_stereo": False,
        "origin_video_id": f"sample_{vi:05d}",
    }


def _ego_clips(v: _Video) -> list[dict]:
    """The video's clips in ego4d.json."""
    return [
        {
            "clip_uid": cu,
            "video_uid": v.uid,
            "video_start_sec": a,
            "video_end_sec": b,
            "video_start_frame": int(round(a * FPS)),
            "video_end_frame": int(round(b * FPS)),
            "split_nlq": v.split if v.in_nlq else None,
        }
        for cu, a, b in v.clips
    ]
