"""Quality checks that flag a candidate but keep it (shown in review).

- duplicate_of: an earlier candidate of the same clip with the same normalised question text.
- near_duplicate_of: an earlier candidate of the same clip whose question embedding is at least
  NEAR_DUPLICATE similar (MiniLM cosine).
- ambiguity: how many *other* narrations of the clip match the question about as well as its own
  target does (cosine within AMBIGUITY_MARGIN of the target's, or better). An NLQ question must
  point at one moment, so 0 is what we want. -1 means "not measured" (checks="fast").
- template: the closest official NLQ template, by the question's wording.
- window_problems: the lab's reasons for the target narration's window (engine.windows).

Embeddings are computed in batches by `QualityChecker.check_batch`, which the pipeline runs in a
thread off the request path; narration embeddings are cached per clip.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from engine.generation.validate import normalise

NEAR_DUPLICATE = 0.92
AMBIGUITY_MARGIN = 0.05
CLIP_CACHE = 512  # clips whose narration embeddings are kept
TEXT_CACHE = 100_000  # distinct texts whose vectors are kept (~150 MB at most)
CLIP_MEMORY = 8192  # clips whose earlier questions are remembered for duplicate checks; a job
# works through groups in index order, so a clip it has left rarely comes back

# Official Ego4D NLQ templates (the "template" field of nlq_train.json), with the wording that
# identifies each. Order matters: the first match wins.
TEMPLATES: tuple[tuple[str, re.Pattern], ...] = tuple(
    (name, re.compile(pat, re.I))
    for name, pat in (
        ("Objects: Where is object X before / after event Y?", r"^(where|in what location).*\b(before|after)\b"),
        ("Objects: What did I put in X?", r"^what (did|have) i (put|place|keep|store|drop|pour) (in|into|inside)\b"),
        ("Place: Where did I put X?", r"^where (did|have) i (put|place|keep|leave|store|drop|set|hang|lay)\b"),
        ("Objects: How many X’s? (quantity question)", r"^how (many|much)\b"),
        (
            "Objects: In what location did I see object X ?",
            r"^(in )?(what|which) (location|place|room|area)\b|^where did i see\b",
        ),
        ("Objects: Where is my object X?", r"^where (is|are|was|were) my\b"),
        ("Objects: Where is object X?", r"^where (is|are|was|were)\b(?!.*\bwhen i\b)"),
        ("People: Who did I talk to in location X?", r"^who did i (talk|speak|chat|converse)\b"),
        ("People: Who did I interact with when I did activity X?", r"^who\b.*\b(interact|when i)\b|^who\b"),
        ("People: When did I interact with person with role X?", r"^when did i (interact|talk|speak|meet)\b"),
        ("Objects: State of an object", r"^(did|is|was|were|are|have|has) (i|the|my)\b"),
        ("Objects: What X is Y?", r"^what (color|colour|type|kind|size|brand|shape)?\s*\w* (is|was|are|were)\b"),
        ("Objects: What X did I Y?", r"^(what|which)\b.*\bdid i\b"),
        ("Objects: In what location did I see object X ?", r"^where (did|was|were) i\b"),
    )
)
OTHER_TEMPLATE = "Other"


@lru_cache(maxsize=1 << 16)
def closest_template(query: str) -> str:
    q = " ".join(str(query).split())
    for name, pat in TEMPLATES:
        if pat.search(q):
            return name
    return OTHER_TEMPLATE


_MARK = re.compile(r"#\s*\w+")
_LEAD_C = re.compile(r"^\s*[Cc]\b\s*")


def plain_narration(text: str) -> str:
    """A narration without markers, in the first person, for embedding."""
    t = _MARK.sub(" ", text).strip()
    t = _LEAD_C.sub("I ", t)
    return " ".join(t.split())


@dataclass
class Item:
    """One accepted question waiting for its checks."""

    cid: str
    clip_key: str  # clip uid: duplicates are looked for within it
    query: str
    target: int  # position of the target narration in `clip_texts`
    clip_texts: list[str] | None  # the clip's narrations (only needed for ambiguity)
    checks: dict = field(default_factory=dict)
    narr_key: str | None = None  # cache key of `clip_texts` (clip and pass); default clip_key

    @property
    def texts_key(self) -> str:
        return self.narr_key or self.clip_key


class QualityChecker:
    """Duplicate, near-duplicate, ambiguity and template checks across a whole run."""

    def __init__(self, embeddings: bool = True, encoder=None, device: str = "auto", threads: int | None = None) -> None:
        self.embeddings = embeddings
        self._threads = threads
        self._encoder = encoder
        self._device = device
        self._exact: OrderedDict[str, dict[str, str]] = OrderedDict()  # clip -> normalised query -> first id
        self._vecs: OrderedDict[str, tuple[list[str], np.ndarray]] = OrderedDict()  # clip -> (ids, vectors)
        self._clip_vecs: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_vecs: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def encoder(self):
        if self._encoder is None:
            from transformers.utils import logging as hf_logging  # heavy: torch + transformers

            from engine.minilm import SentenceEncoder

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a progress line
            import torch

            if self._device == "auto":
                self._device = "cuda" if torch.cuda.is_available() else "cpu"
            if self._threads:
                torch.set_num_threads(self._threads)
            elif self._device == "cpu":
                # The checks share the CPU with the request loop (and, on a small box, with
                # everything else): one thread per spare core, at most 4, measured twice as
                # fast as torch's default on a busy 2-core machine.
                torch.set_num_threads(max(1, min(4, (os.cpu_count() or 2) - 1)))
            self._encoder = SentenceEncoder(self._device)
        return self._encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for texts; each distinct text is encoded once per run (they repeat a lot)."""
        cache = self._text_vecs
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            # similar lengths in one batch: padding to the longest costs less
            todo.sort(key=len)
            vecs = self.encoder.encode(todo)
            for t, v in zip(todo, vecs):
                cache[t] = v
            while len(cache) > TEXT_CACHE:
                cache.popitem(last=False)
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([cache[t] for t in texts])

    def seed(self, rows) -> None:
        """Earlier candidates (store rows with .clip_uid, .query, .id) count for duplicates."""
        for r in rows:
            self._exact.setdefault(r.clip_uid, {}).setdefault(normalise(r.query), r.id)

    def check_batch(self, items: list[Item], embeddings: bool | None = None) -> None:
        """Fill `item.checks` (duplicate_of, near_duplicate_of, ambiguity, template) in place.

        `embeddings=False`: the text checks only; `check_embeddings` adds the rest later.
        """
        self.check_text(items)
        if (self.embeddings if embeddings is None else embeddings) and items:
            self.check_embeddings(items)
        else:
            for it in items:
                it.checks.setdefault("near_duplicate_of", None)
                it.checks.setdefault("ambiguity", -1)

    def check_text(self, items: list[Item]) -> None:
        """Exact duplicates within the clip and the closest template: cheap, on every path."""
        for it in items:
            key = normalise(it.query)
            seen = self._exact.setdefault(it.clip_key, {})
            self._exact.move_to_end(it.clip_key)
            dup = seen.get(key)
            if dup is None:
                seen[key] = it.cid
            while len(self._exact) > CLIP_MEMORY:
                self._exact.popitem(last=False)
            it.checks.update(duplicate_of=dup, template=closest_template(it.query))

    def check_embeddings(self, items: list[Item]) -> None:
        """Near-duplicates and ambiguity (MiniLM), in item order; needs `check_text` first for
        `duplicate_of` (a near-duplicate is never the exact duplicate again)."""
        if not items:
            return
        qvecs = self.embed([it.query for it in items])
        self._encode_clips(items)
        for i, it in enumerate(items):
            dup = it.checks.get("duplicate_of")
            near = None
            ambiguity = -1
            v = qvecs[i]
            ids, mat = self._vecs.get(it.clip_key, ([], np.zeros((0, v.shape[0]), np.float32)))
            if len(ids):
                sims = mat @ v
                j = int(np.argmax(sims))
                if sims[j] >= NEAR_DUPLICATE and ids[j] != dup:
                    near = ids[j]
            self._vecs[it.clip_key] = (ids + [it.cid], np.vstack([mat, v[None, :]]))
            self._vecs.move_to_end(it.clip_key)
            cv = self._clip_vecs.get(it.texts_key)
            if cv is not None and 0 <= it.target < len(cv):
                sims = cv @ v
                others = np.delete(sims, it.target)
                ambiguity = int((others >= sims[it.target] - AMBIGUITY_MARGIN).sum())
            while len(self._vecs) > CLIP_MEMORY:
                self._vecs.popitem(last=False)
            it.checks.update(near_duplicate_of=near, ambiguity=ambiguity)

    def _encode_clips(self, items: list[Item]) -> None:
        todo: dict[str, list[str]] = {}
        for it in items:
            if it.clip_texts is None:
                continue
            if it.texts_key in self._clip_vecs:
                self._clip_vecs.move_to_end(it.texts_key)
            elif it.texts_key not in todo:
                todo[it.texts_key] = it.clip_texts
        if not todo:
            return
        flat = [plain_narration(t) for texts in todo.values() for t in texts]
        vecs = self.embed(flat)
        at = 0
        for key, texts in todo.items():
            self._clip_vecs[key] = vecs[at : at + len(texts)]
            at += len(texts)
        while len(self._clip_vecs) > CLIP_CACHE:
            self._clip_vecs.popitem(last=False)
