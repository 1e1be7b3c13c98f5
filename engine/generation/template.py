"""The template backend: offline, deterministic NLQ questions from narrations, no model.

A narration such as "#C C picks up the knife from the table" is parsed into
actor ("I"), verb ("pick up"), object ("the knife") and place ("from the table"), and the
official NLQ template that fits the verb is filled in ("Where was the knife before I picked
it up?"). Where several templates fit, a checksum of the text picks one, so a run is
repeatable and the questions still vary. One narration per group is asked relative to its
predecessor ("... after I washed the plate?"), as the prompt asks of the LLMs.

Speed matters (every group of Ego4D, ~1.5M, in under two minutes): parsing is one compiled
regex plus dictionary look-ups, and both the parse and the stand-alone question are cached by
narration text, which repeats a lot in real data.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

from engine.generation.base import Backend, Reply, Request

# ---------------------------------------------------------------------------------------------
# words

PARTICLES = frozenset("up down out off away back around over aside apart together".split())
PREPS = (
    "from", "into", "onto", "in", "on", "at", "with", "to", "under", "inside", "beside", "near",
    "towards", "toward", "across", "through", "behind", "above", "below", "between", "along",
    "against", "beneath", "underneath", "within", "out of", "off", "for", "by", "around",
)  # fmt: skip
PLACE_PREPS = frozenset(
    "from into onto in on at under inside beside near behind above below between along against beneath "
    "underneath within off around".split()
) | {"out of"}
MOTION_PARTICLES = frozenset("around across through along".split())
PHRASAL_ON_OFF = frozenset("turn switch put take try wipe".split())
PUT = frozenset("put place drop keep leave set hang store insert lay arrange return stack throw dump pour "
                "transfer move push slide tuck".split())  # fmt: skip
TAKE = frozenset("pick take grab get lift remove collect fetch carry hold raise pull".split())
SEE = frozenset("look see watch check observe search stare inspect examine glance view scan".split())
OPEN = frozenset("open close shut unlock lock".split())
TALK = frozenset("talk converse speak chat interact greet discuss".split())
SWITCH = frozenset("turn switch".split())
MASS = frozenset("water rice flour sugar salt oil sand soil dough paint food grass cement milk tea "
                 "coffee juice sauce soup dust dirt cloth clothes hair paper money".split())  # fmt: skip

IRREGULAR_PAST = {
    "be": "was", "have": "had", "do": "did", "go": "went", "get": "got", "take": "took", "put": "put",
    "hold": "held", "cut": "cut", "see": "saw", "leave": "left", "throw": "threw", "give": "gave",
    "bring": "brought", "make": "made", "keep": "kept", "set": "set", "hang": "hung", "read": "read",
    "eat": "ate", "drink": "drank", "run": "ran", "sit": "sat", "stand": "stood", "shut": "shut",
    "spread": "spread", "find": "found", "lay": "laid", "write": "wrote", "wear": "wore", "tear": "tore",
    "break": "broke", "dig": "dug", "feed": "fed", "slide": "slid", "stick": "stuck", "sweep": "swept",
    "shake": "shook", "swing": "swung", "wring": "wrung", "lead": "led", "let": "let", "hit": "hit",
    "split": "split", "spin": "spun", "sell": "sold", "tell": "told", "say": "said", "pay": "paid",
    "buy": "bought", "catch": "caught", "fight": "fought", "think": "thought", "teach": "taught",
    "seek": "sought", "send": "sent", "spend": "spent", "bend": "bent", "build": "built", "lend": "lent",
    "meet": "met", "feel": "felt", "sleep": "slept", "lose": "lost", "ride": "rode", "rise": "rose",
    "drive": "drove", "choose": "chose", "freeze": "froze", "speak": "spoke", "steal": "stole",
    "wake": "woke", "begin": "began", "sing": "sang", "swim": "swam", "ring": "rang", "sink": "sank",
    "blow": "blew", "draw": "drew", "grow": "grew", "know": "knew", "fly": "flew", "bite": "bit",
    "hide": "hid", "light": "lit", "shoot": "shot", "come": "came", "become": "became", "fall": "fell",
    "forget": "forgot", "understand": "understood", "rewind": "rewound", "wind": "wound", "grind": "ground",
    "bind": "bound", "undo": "undid", "fold": "folded", "stir": "stirred", "rub": "rubbed",
    "scrub": "scrubbed", "mop": "mopped", "chop": "chopped", "grab": "grabbed", "stop": "stopped",
    "tap": "tapped", "wrap": "wrapped", "plug": "plugged", "drag": "dragged", "drop": "dropped",
    "dip": "dipped", "flip": "flipped", "slip": "slipped", "trim": "trimmed", "zip": "zipped",
    "unzip": "unzipped", "pat": "patted", "nod": "nodded", "pin": "pinned", "tip": "tipped",
    "snap": "snapped", "strip": "stripped", "clip": "clipped", "skip": "skipped", "hug": "hugged",
    "jog": "jogged", "knit": "knitted", "plan": "planned", "scan": "scanned", "fit": "fitted",
    "admit": "admitted", "ship": "shipped", "drip": "dripped", "sip": "sipped", "chat": "chatted",
    "unplug": "unplugged", "beg": "begged", "peel": "peeled",
}  # fmt: skip
IRREGULAR_BASE = {"is": "be", "are": "be", "has": "have", "does": "do", "goes": "go"}

# actor marker, subject, verb, optional particle, rest
_CLEAN = re.compile(r"#\s*unsure\b|#\s*summary\b", re.I)
_ACTOR = re.compile(r"^\s*#\s*([CcOo])\b[\s,.:]*")
_C_SUBJECT = re.compile(r"^(?:C|c)\b[\s,]+")
_PREP_RE = re.compile(r"\b(" + "|".join(sorted(PREPS, key=len, reverse=True)) + r")\b")
_DETS = frozenset("the a an his her their my its some this that these those one two three your our".split())
_POSSESSIVE = {"his": "my", "her": "my", "their": "my", "own": "own"}


def to_base(verb: str) -> str:
    v = verb.lower()
    if v in IRREGULAR_BASE:
        return IRREGULAR_BASE[v]
    if v.endswith("ies") and len(v) > 4:
        return v[:-3] + "y"
    if v.endswith(("ches", "shes", "sses", "xes", "zzes", "oes")):
        return v[:-2]
    if v.endswith("s") and not v.endswith("ss") and len(v) > 2:
        return v[:-1]
    return v


def to_past(base: str) -> str:
    if base in IRREGULAR_PAST:
        return IRREGULAR_PAST[base]
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and len(base) > 1 and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    return base + "ed"


def _definite(np_: str, camera_wearer: bool) -> str:
    """'a bag of rice' -> 'the bag of rice'; 'his phone' -> 'my phone'; 'knife' -> 'the knife'."""
    words = np_.split()
    if not words:
        return ""
    first = words[0].lower()
    if first in ("a", "an", "some", "one", "this", "that"):
        words[0] = "the"
    elif first in _POSSESSIVE and camera_wearer:
        words[0] = _POSSESSIVE[first]
    elif first in ("c", "c's"):
        words[0] = "me" if first == "c" else "my"
    elif first not in _DETS and not first[0].isdigit():
        words.insert(0, "the")
    return " ".join(words)


def _is_plural(np_: str) -> bool:
    words = np_.split()
    if not words:
        return False
    head = words[-1].lower()
    if " of " in np_:
        head = np_.split(" of ")[0].split()[-1].lower()
    return len(head) > 3 and head.endswith("s") and not head.endswith(("ss", "us", "is", "ics")) and head not in MASS


def _bare(np_: str) -> str:
    """'the two knives' -> 'knives' (for How many ...?)."""
    words = [w for w in np_.split() if w.lower() not in _DETS and not w.isdigit()]
    return " ".join(words)


class Parsed(tuple):
    """(camera_wearer, subject, base, particle, obj, prep, place) with names."""

    __slots__ = ()
    camera_wearer = property(lambda s: s[0])
    subject = property(lambda s: s[1])
    base = property(lambda s: s[2])
    particle = property(lambda s: s[3])
    obj = property(lambda s: s[4])
    prep = property(lambda s: s[5])
    place = property(lambda s: s[6])


@lru_cache(maxsize=1 << 18)
def parse_narration(text: str) -> Parsed | None:
    """Actor, verb, object and place of a narration, or None when it has no usable verb."""
    t = _CLEAN.sub(" ", text.replace("\u2019", "'")).strip().rstrip(".!").strip()
    m = _ACTOR.match(t)
    camera_wearer = True
    if m:
        camera_wearer = m.group(1) in "Cc"
        t = t[m.end() :]
    subject = "I"
    if camera_wearer:
        m = _C_SUBJECT.match(t)
        if m:
            t = t[m.end() :]
    else:
        subject, t = _other_subject(t)
    words = t.split()
    if not words or not words[0].isalpha():
        return None
    base = to_base(words[0])
    rest = words[1:]
    particle = ""
    if rest and rest[0].lower() in PARTICLES:
        particle = rest[0].lower()
        rest = rest[1:]
    rest_s = " ".join(rest).rstrip(",;: ")
    if particle in MOTION_PARTICLES and rest_s:  # "walks around the kitchen": a place, not an object
        rest_s = f"{particle} {rest_s}"
        particle = ""
    obj, prep, place = rest_s, "", ""
    m = _PREP_RE.search(rest_s)
    if m:
        obj = rest_s[: m.start()].strip(" ,")
        prep = m.group(1)
        place = rest_s[m.end() :].strip(" ,")
        # "a bag of cereal" style objects keep their "of"; a second preposition ends the place
        m2 = _PREP_RE.search(place)
        if m2 and m2.start() > 0:
            place = place[: m2.start()].strip(" ,")
        if not obj and prep in ("on", "off") and base in PHRASAL_ON_OFF:  # "turns on the tap"
            particle, obj, prep, place = prep, place, "", ""
    return Parsed((camera_wearer, subject, base, particle, obj, prep, place))


def _other_subject(t: str) -> tuple[str, str]:
    """("the man", rest) from "man X holds a phone": Ego4D names other people with a letter."""
    words = t.split()
    for i, w in enumerate(words[:4]):
        if len(w) == 1 and w.isupper() and w not in ("C", "I") and i > 0:
            head = [x for x in words[:i] if x.lower() not in ("a", "an", "the")]
            return (_definite(" ".join(head), False) if head else "someone"), " ".join(words[i + 1 :])
    if len(words) > 1 and words[0].lower() in ("a", "an", "the"):
        return _definite(words[1], False), " ".join(words[2:])
    if len(words) > 1 and words[0].lower() in ("someone", "somebody", "man", "woman", "person", "lady", "boy", "girl"):
        return _definite(words[0], False) if words[0].lower() not in ("someone", "somebody") else "someone", " ".join(
            words[1:]
        )
    return "someone", t


def _pick(text: str, n: int) -> int:
    return zlib.crc32(text.encode("utf-8")) % n


def _vp(p: Parsed, obj: str, past: bool = False) -> str:
    """'pick up the knife', 'picked it up': a pronoun goes before the particle, a noun after."""
    verb = to_past(p.base) if past else p.base
    if obj in ("it", "them", "me"):
        return " ".join(x for x in (verb, obj, p.particle) if x)
    return " ".join(x for x in (verb, p.particle, obj) if x)


def _question_for(p: Parsed, text: str) -> str | None:
    """The stand-alone question for one parsed narration (cached by text by the caller)."""
    obj = _definite(p.obj, p.camera_wearer) if p.obj else ""
    place = _definite(p.place, p.camera_wearer) if p.place else ""
    base = p.base
    if not p.camera_wearer:
        if place in ("the C", "C", "me"):
            return f"Who {to_past(base)}{' ' + p.particle if p.particle else ''} {p.prep} me?"
        if obj == "me":
            return f"Who did I interact with when {p.subject} {to_past(base)} {p.particle + ' ' if p.particle else ''}me?".replace(
                "  ", " "
            )
        if obj:
            return f"Who {_vp(p, obj, past=True)}?"
        if place:
            return f"Who did I see {p.prep} {place}?"
        return f"Who did I interact with when {p.subject} {to_past(base)}?"
    if base in TALK:
        if place and p.prep in PLACE_PREPS:
            return f"Who did I talk to {p.prep} {place}?"
        return f"Who did I {base} with?" if p.prep in ("", "with", "to") else "Who did I talk to?"
    if not obj:
        if place:
            if base in SEE:
                return f"What did I {base} {p.particle + ' ' if p.particle else ''}{p.prep}?".replace("  ", " ")
            return f"Where was I when I {to_past(base)}{' ' + p.particle if p.particle else ''} {p.prep} {place}?"
        return f"Where was I when I {to_past(base)}{' ' + p.particle if p.particle else ''}?"
    choices: list[str] = []
    plural = _is_plural(obj)
    was, it = ("were", "them") if plural else ("was", "it")
    if base in PUT:
        choices.append(f"Where did I {base} {obj}{' ' + p.particle if p.particle else ''}?")
        if place and p.prep in ("in", "into", "inside"):
            choices.append(f"What did I {base} in {place}?")
        if place:
            choices.append(f"Where {was} {obj} before I {to_past(base)} {it}{' ' + p.particle if p.particle else ''}?")
    elif base in TAKE:
        pr = f" {p.particle}" if p.particle else ""
        choices.append(f"Where {was} {obj} before I {to_past(base)} {it}{pr}?")
        if place and p.prep in ("from", "out of", "off"):
            choices.append(f"Where did I {base}{pr} {obj} from?")
        choices.append(f"In what location did I see {obj}?")
    elif base in SEE:
        choices.append(f"In what location did I see {obj}?")
        choices.append(f"Where {'are' if plural else 'is'} {obj}?")
    elif base in OPEN:
        choices.append(f"Did I leave {obj} {'open' if base in ('open', 'unlock') else 'closed'}?")
        choices.append(f"Where is {obj}?")
    elif base in SWITCH and p.particle in ("on", "off"):
        choices.append(f"Did I leave {obj} {p.particle}?")
    elif p.prep == "with" and place:
        tool = place
        choices.append(f"What did I {_vp(p, obj)} with?")
        choices.append(f"What did I {base}{' ' + p.particle if p.particle else ''} with {tool}?")
    else:
        if place and p.prep in PLACE_PREPS:
            choices.append(f"Where did I {_vp(p, obj)}?")
            choices.append(f"What did I {base}{' ' + p.particle if p.particle else ''} {p.prep} {place}?")
        else:
            choices.append(f"Where did I {_vp(p, obj)}?")
            choices.append(f"In what location did I see {obj}?")
    if plural:
        choices.append(f"How many {_bare(obj)} did I {base}{' ' + p.particle if p.particle else ''}?")
    return choices[_pick(text, len(choices))]


@lru_cache(maxsize=1 << 18)
def question_for_text(text: str) -> str | None:
    p = parse_narration(text)
    if p is None:
        return None
    q = _question_for(p, text)
    return q[0].upper() + q[1:] if q else None


def _relative(text: str, prev_text: str, word: str) -> str | None:
    """The question for `text`, tied to the narration before it ("... after I washed it?")."""
    p, q = parse_narration(text), parse_narration(prev_text)
    if p is None or q is None or not p.camera_wearer or not q.camera_wearer or not q.obj:
        return None
    base_q = question_for_text(text)
    if not base_q or " before " in base_q or " after " in base_q or not base_q.startswith(("Where", "What", "In what")):
        return None
    prev_obj = _definite(q.obj, True)
    if p.obj and _definite(p.obj, True) == prev_obj:
        prev_obj = "them" if _is_plural(prev_obj) else "it"
    return f"{base_q[:-1]} {word} I {_vp(q, prev_obj, past=True)}?"


_relative = lru_cache(maxsize=1 << 18)(_relative)  # the same pair recurs in overlapping groups


def questions_for_group(texts: list[str], key: str = "") -> list[str | None]:
    """One question per narration (None where the narration has no usable verb)."""
    out = [question_for_text(t) for t in texts]
    if len(texts) >= 2:
        j = 1 + _pick(key or texts[0], len(texts) - 1)
        rel = _relative(texts[j], texts[j - 1], "after")
        if rel is not None:
            out[j] = rel
    return out


def items_for_group(texts: list[str], key: str = "") -> list[tuple[int, str]]:
    """[(narration number, question)] for the narrations that have a question."""
    return [(i, q) for i, q in enumerate(questions_for_group(texts, key), 1) if q is not None]


class TemplateBackend(Backend):
    """Deterministic, offline; answers come back already structured (no JSON round trip)."""

    name = "template"
    model = "nlq-templates-v1"
    batch_size = 512
    concurrency = 1
    needs_messages = False

    async def complete(self, requests: list[Request]) -> list[Reply]:
        return [self.answer(r) for r in requests]

    def answer(self, request: Request) -> Reply:
        return Reply(text=None, items=items_for_group(request.narrations, request.group_key))
