"""A synthetic, learnable Ego4D tree: the `nlq-tui sample` generator and `sample_data/`.

The videos are sequences of actions (verb, object, place), each with an extent in time.
Every action is narrated Ego4D-style ("#C C picks up the knife from the table"), with the
timestamp inside its extent, and leaves a signature in the 256-d features over that extent:
a fixed random vector per object (strong), per verb and per place (weaker) on top of slowly
varying per-video noise. Official NLQ queries ask about actions whose answer is unique in
their clip; the answer window is the action's extent. So a localisation model can learn the
mapping from words to signatures, and questions generated from the narrations of the train
videos teach the same mapping on many more examples than the small official train split.

Two profiles: "compact" (the default, <= 100 videos: 3-6 minute videos with 1-3 short clips,
what `sample_data/` holds) and "ego4d" (longer videos, ~210 narrations per pass, 5-8 minute
clips, for benchmarks at Ego4D scale with `--no-features`).

Everything is deterministic from the seed: same arguments, same bytes (annotation files) and
same tensors (features).
"""

from __future__ import annotations

import functools
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import sample_vocab as vocab
from engine.ego4d import layout
from engine.errors import UserError
from engine.sample_records import FPS, _ego_clips, _ego_video, _nlq_clips, _uid

DEFAULT_SEED = 20211013  # the day Ego4D was announced
DEFAULT_VIDEOS = 48
FEATURE_DIR = layout.DEFAULT_FEATURES
FEATURE_DIM = 256
FEATURES_PER_SEC = 30.0 / 16.0
COMPACT_MAX_VIDEOS = 100

# Feature recipe (per-dimension std of the noise, norm of the signatures).
_BG_SMOOTH_STD = 0.25
_BG_WHITE_STD = 0.10
_OFFSET_NORM = 1.0
_SIG_AMP_C = 3.0
_SIG_AMP_O = 1.5
_W_OBJ, _W_VERB, _W_PLACE = 1.0, 0.5, 0.4


@dataclass(frozen=True)
class Profile:
    name: str
    duration: tuple[float, float]  # video length (s); "ego4d" derives it from n_actions
    n_actions: tuple[int, int]  # only for "ego4d"
    clip_len: tuple[float, float]
    clip_gap: tuple[float, float]
    max_clips: int
    p_no_clips: float
    frac_val: float
    frac_test: float
    p_train_in_nlq: float
    queries_train: tuple[int, int]
    queries_eval: tuple[int, int]
    eval_clips_with_queries: int  # at most this many clips per val/test video carry queries


COMPACT = Profile(
    "compact",
    duration=(170.0, 330.0),
    n_actions=(0, 0),
    clip_len=(60.0, 150.0),
    clip_gap=(3.0, 25.0),
    max_clips=3,
    p_no_clips=0.0,
    frac_val=0.17,
    frac_test=0.11,
    p_train_in_nlq=0.6,
    queries_train=(5, 9),
    queries_eval=(7, 11),
    eval_clips_with_queries=3,
)
EGO4D = Profile(
    "ego4d",
    duration=(0.0, 0.0),
    n_actions=(150, 270),
    clip_len=(300.0, 480.0),
    clip_gap=(0.0, 12.0),
    max_clips=99,
    p_no_clips=0.03,
    frac_val=0.104,
    frac_test=0.104,
    p_train_in_nlq=0.1,
    queries_train=(8, 14),
    queries_eval=(3, 6),
    eval_clips_with_queries=1,
)


@dataclass
class Action:
    start: float
    end: float
    verb: str  # a Verb.key, or "other" for `#O`
    obj: str | None
    place: str | None
    actor: str  # "C" or the `#O` actor ("man X")
    amp: float
    t1: float = 0.0  # pass-1 narration time
    t2: float = 0.0  # pass-2 narration time
    text1: str = ""
    text2: str = ""


@dataclass
class SampleSummary:
    root: Path
    profile: str
    seed: int
    videos: int = 0
    clips: int = 0
    narrations: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    queries: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0, "test": 0})
    split_videos: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0, "test": 0})
    feature_files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "root": str(self.root),
            "profile": self.profile,
            "seed": self.seed,
            "videos": self.videos,
            "clips": self.clips,
            "narrations_pass_1": self.narrations[1],
            "narrations_pass_2": self.narrations[2],
            "queries": dict(self.queries),
            "split_videos": dict(self.split_videos),
            "feature_files": self.feature_files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
        }


# ---------------------------------------------------------------- helpers


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _uids(rng: np.random.Generator, n: int) -> list[str]:
    """n UUID-4-shaped strings, vectorised (the Ego4D-scale tree needs millions)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 15]
    hexed[:, 12] = ord("4")
    hexed[:, 16] = ord("a")
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18], out[:, 19:23], out[:, 24:36] = (
        hexed[:, 0:8],
        hexed[:, 8:12],
        hexed[:, 12:16],
        hexed[:, 16:20],
        hexed[:, 20:32],
    )
    text = out.tobytes().decode("ascii")
    return [text[i : i + 36] for i in range(0, 36 * n, 36)]


_vec_cache: dict[tuple[int, str], np.ndarray] = {}


def signature_vector(seed: int, name: str) -> np.ndarray:
    """The fixed unit vector of a vocabulary name ("knife", "verb:cut", "scenario:Cooking")."""
    key = (seed, name)
    v = _vec_cache.get(key)
    if v is None:
        r = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        v = r.standard_normal(FEATURE_DIM)
        v /= np.linalg.norm(v)
        _vec_cache[key] = v
    return v


def action_signature(seed: int, verb: str, obj: str | None, place: str | None) -> np.ndarray:
    """Unit direction an action adds to the features over its extent."""
    s = _W_VERB * signature_vector(seed, "verb:" + verb)
    if obj:
        s = s + _W_OBJ * signature_vector(seed, obj)
    if place:
        # a place that is the action's only noun (opening the fridge) is seen as strongly as an object
        s = s + (_W_PLACE if obj else _W_OBJ) * signature_vector(seed, place)
    return s / np.linalg.norm(s)


class _Scenario:
    """Per-scenario lookup: which objects and places each verb may take."""

    def __init__(self, name: str) -> None:
        objs, places = vocab.SCENARIOS[name]
        self.name = name
        self.objects = list(objs)
        self.places = list(places)
        self.object_names = np.array(self.objects, dtype=object)
        self.place_names = np.array(self.places, dtype=object)
        self.verbs: list[tuple[vocab.Verb, list[int], list[int]]] = []  # verb, object idx, place idx
        for verb in vocab.VERBS:
            o_idx = self._objects_for(verb)
            p_idx = self._places_for(verb)
            if o_idx is None or p_idx is None:
                continue
            self.verbs.append((verb, o_idx, p_idx))
        w = np.array([v.weight for v, _, _ in self.verbs])
        self.verb_cdf = np.cumsum(w) / w.sum()

    def _objects_for(self, verb: vocab.Verb) -> list[int] | None:
        if verb.objects == "none":
            return []
        if verb.objects == "any":
            return list(range(len(self.objects)))
        if verb.objects == "use":
            idx = [i for i, o in enumerate(self.objects) if vocab.OBJECT_BY_NAME[o].use]
        else:
            allowed = set(verb.objects.split(","))
            idx = [i for i, o in enumerate(self.objects) if o in allowed or vocab.OBJECT_BY_NAME[o].category in allowed]
        return idx or None

    def _places_for(self, verb: vocab.Verb) -> list[int] | None:
        if verb.place == "none":
            return []
        if verb.place == "any":
            idx = [i for i, p in enumerate(self.places) if p not in ("bin", "chopping board")]
        elif verb.place == "container":
            idx = [i for i, p in enumerate(self.places) if vocab.PLACE_BY_NAME[p].container]
        else:
            idx = [i for i, p in enumerate(self.places) if p == verb.place]
        return idx or None


_SCENARIOS: dict[str, _Scenario] = {}


def _scenario(name: str) -> _Scenario:
    if name not in _SCENARIOS:
        _SCENARIOS[name] = _Scenario(name)
    return _SCENARIOS[name]


_AN = re.compile(r"\ba ([aeiou])")


@functools.cache
def _narr_text(verb_key: str, variant: int, obj: str | None, place: str | None) -> str:
    tpl = vocab.VERB_BY_KEY[verb_key].narr[variant]
    p = vocab.PLACE_BY_NAME[place] if place else None
    use = vocab.OBJECT_BY_NAME[obj].use.format(o=obj) if obj else ""
    text = "#C C " + tpl.format(o=obj or "", p=place or "", prep=p.prep if p else "", use=use)
    return _AN.sub(r"an \1", text)


def _other_text(actor: str, variant: int, obj: str | None, place: str | None) -> str:
    tpl = vocab.OTHER_NARR[variant % len(vocab.OTHER_NARR)]
    p = vocab.PLACE_BY_NAME[place] if place else vocab.PLACE_BY_NAME["table"]
    return f"#O {actor} " + tpl.format(o=obj or "cup", p=p.name, prep=p.prep)


# ---------------------------------------------------------------- one video


@dataclass
class _Video:
    uid: str
    split: str
    scenario: str
    duration: float
    actions: list[Action]
    others: list[Action]
    clips: list[tuple[str, float, float]]  # clip_uid, video_start_sec, video_end_sec
    in_nlq: bool
    quirks: set[str]


def _make_actions(rng: np.random.Generator, prof: Profile, sc: _Scenario) -> tuple[float, list[Action]]:
    if prof.name == "ego4d":
        n_target = int(rng.integers(prof.n_actions[0], prof.n_actions[1] + 1))
        duration = None
    else:
        duration = float(rng.uniform(*prof.duration))
        n_target = int(duration / 1.2) + 8
    lengths = rng.uniform(1.5, 6.0, n_target)
    gaps = rng.exponential(0.5, n_target)
    start0 = float(rng.uniform(0.5, 3.0))
    starts = start0 + np.concatenate([[0.0], np.cumsum(lengths + gaps)[:-1]])
    ends = starts + lengths
    if duration is None:
        duration = float(ends[-1] + rng.uniform(1.0, 20.0))
    keep = ends <= duration - 0.5
    starts, ends = starts[keep], ends[keep]
    n = len(starts)
    # A per-video taste for some objects and places makes repeats (and non-unique answers) natural.
    obj_w = rng.dirichlet(np.full(len(sc.objects), 0.8))
    place_w = rng.dirichlet(np.full(len(sc.places), 1.0))
    u = rng.random((n, 3))
    amps = rng.uniform(0.85, 1.15, n)
    verb_idx = np.minimum(np.searchsorted(sc.verb_cdf, u[:, 0], side="right"), len(sc.verbs) - 1)
    objs = np.full(n, None, dtype=object)
    places = np.full(n, None, dtype=object)
    for vi in np.unique(verb_idx):
        rows = np.nonzero(verb_idx == vi)[0]
        _, o_idx, p_idx = sc.verbs[vi]
        if o_idx:
            w = obj_w[o_idx]
            pick = np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), u[rows, 1], side="right"), len(o_idx) - 1)
            objs[rows] = sc.object_names[np.asarray(o_idx)[pick]]
        if p_idx:
            w = place_w[p_idx]
            pick = np.minimum(np.searchsorted(np.cumsum(w) / w.sum(), u[rows, 2], side="right"), len(p_idx) - 1)
            places[rows] = sc.place_names[np.asarray(p_idx)[pick]]
    t1 = np.round(starts + (ends - starts) * rng.uniform(0.15, 0.85, n), 4).tolist()
    t2 = np.round(starts + (ends - starts) * rng.uniform(0.1, 0.9, n), 4).tolist()
    var1 = rng.integers(0, 4, n).tolist()
    var2 = rng.integers(0, 4, n).tolist()
    amp = (amps * _SIG_AMP_C).tolist()
    actions = []
    for i, vi, o, p, a, b in zip(
        range(n), verb_idx.tolist(), objs.tolist(), places.tolist(), starts.tolist(), ends.tolist()
    ):
        verb = sc.verbs[vi][0]
        v1 = var1[i]
        # the second annotator words it differently
        v2 = var2[i] if len(verb.narr) < 2 else v1 + 1 + var2[i] % (len(verb.narr) - 1)
        actions.append(
            Action(
                a,
                b,
                verb.key,
                o,
                p,
                "C",
                amp[i],
                t1[i],
                t2[i],
                _narr_text(verb.key, v1 % len(verb.narr), o, p),
                _narr_text(verb.key, v2 % len(verb.narr), o, p),
            )
        )
    return duration, actions


def _make_others(rng: np.random.Generator, sc: _Scenario, actions: list[Action], force_dup: bool) -> list[Action]:
    """`#O` narrations: other people around C. Some share a timestamp with a `#C` narration."""
    n = max(1 if force_dup else 0, int(rng.binomial(len(actions), 0.05)))
    out = []
    for j in range(n):
        host = actions[int(rng.integers(0, len(actions)))]
        variant = int(rng.integers(0, len(vocab.OTHER_NARR)))
        tpl = vocab.OTHER_NARR[variant]
        obj = sc.objects[int(rng.integers(0, len(sc.objects)))] if "{o}" in tpl else None
        place = sc.places[int(rng.integers(0, len(sc.places)))] if "{p}" in tpl else None
        actor = vocab.OTHER_ACTORS[int(rng.integers(0, len(vocab.OTHER_ACTORS)))]
        dup = (force_dup and j == 0) or rng.random() < 0.3
        t = host.t1 if dup else round(float(rng.uniform(host.start, host.end)), 4)
        a = Action(
            t - 1.0,
            t + 1.5,
            "other",
            obj,
            place,
            actor,
            _SIG_AMP_O,
            t,
            t,
            _other_text(actor, variant, obj, place),
            _other_text(actor, variant, obj, place),
        )
        out.append(a)
    return out


def _make_clips(rng: np.random.Generator, prof: Profile, duration: float) -> list[tuple[float, float]]:
    clips: list[tuple[float, float]] = []
    t = float(rng.uniform(0.0, 20.0 if prof.name == "compact" else 5.0))
    while len(clips) < prof.max_clips:
        length = float(rng.uniform(*prof.clip_len))
        if t + length > duration:
            # the last clip may be shorter, as long as it is still a usable clip
            length = duration - t - 0.01
            if length < prof.clip_len[0] * 0.5:
                break
        clips.append((round(t, 3), round(t + length, 3)))
        t += length + float(rng.uniform(*prof.clip_gap))
        if prof.name == "compact" and rng.random() < 0.1:
            break
    return clips


def _features(seed: int, rng: np.random.Generator, v: _Video) -> np.ndarray:
    rows = math.ceil(v.duration * FEATURES_PER_SEC)
    white = rng.standard_normal((rows, FEATURE_DIM))
    spec = np.fft.rfft(white, axis=0)
    spec *= np.exp(-((np.fft.rfftfreq(rows) / 0.03) ** 2))[:, None]  # ~15 s correlation
    smooth = np.fft.irfft(spec, n=rows, axis=0)
    smooth *= _BG_SMOOTH_STD / (smooth.std() + 1e-12)
    offset = 0.5 * signature_vector(seed, "scenario:" + v.scenario) + 0.5 * rng.standard_normal(FEATURE_DIM) / 16
    offset *= _OFFSET_NORM / np.linalg.norm(offset)
    feats = smooth + offset + _BG_WHITE_STD * rng.standard_normal((rows, FEATURE_DIM))
    row_start = np.arange(rows) / FEATURES_PER_SEC
    row_end = row_start + 1.0 / FEATURES_PER_SEC
    for a in v.actions + v.others:
        r0 = max(0, int(math.floor(a.start * FEATURES_PER_SEC)))
        r1 = min(rows, int(math.ceil(a.end * FEATURES_PER_SEC)))
        if r1 <= r0:
            continue
        cover = (np.minimum(row_end[r0:r1], a.end) - np.maximum(row_start[r0:r1], a.start)) * FEATURES_PER_SEC
        sig = action_signature(seed, a.verb, a.obj, a.place)
        feats[r0:r1] += np.clip(cover, 0.0, 1.0)[:, None] * (a.amp * sig)[None, :]
    return feats.astype(np.float16)


# ---------------------------------------------------------------- narrations


def _narration_pass(rng: np.random.Generator, v: _Video, pass_no: int, unsure_force: bool) -> dict:
    acts = v.actions
    if pass_no == 2:
        # the second annotator skips a few actions
        keep = rng.random(len(acts)) < 0.93
        acts = [a for a, k in zip(acts, keep.tolist()) if k]
    items = [(a.t1 if pass_no == 1 else a.t2, a.text1 if pass_no == 1 else a.text2) for a in acts]
    items += [(o.t1, o.text1) for o in v.others]
    items.sort(key=lambda x: x[0])  # stable: a `#C` narration stays before an `#O` one at the same time
    n = len(items)
    unsure = rng.random(n) < 0.02
    if unsure_force and n:
        unsure[n // 2] = True
    unsure = unsure.tolist()
    uids = _uids(rng, n)
    extra = (rng.random(n) < 0.01).tolist()
    times = [t for t, _ in items]
    frames = np.rint(np.asarray(times) * FPS).astype(np.int64).tolist()
    narrs = []
    for i, (t, text) in enumerate(items):
        if unsure[i]:
            text += " #unsure"
        d = {"timestamp_sec": t, "timestamp_frame": frames[i], "narration_text": text, "annotation_uid": uids[i]}
        if extra[i]:
            # a field outside the official schema (`_unmapped_timestamp_sec` is in it), as real files have
            d["_extra_note"] = "checked twice"
        narrs.append(d)
    if pass_no == 1 and ("unsorted" in v.quirks or rng.random() < 0.15) and n > 6:
        # real files are not always in time order: swap a few neighbours
        for _ in range(1 + int(rng.integers(0, 2))):
            i = int(rng.integers(1, n - 2))
            narrs[i], narrs[i + 1] = narrs[i + 1], narrs[i]
    summary = {
        "start_sec": 0.0,
        "end_sec": round(v.duration, 3),
        "start_frame": 0,
        "end_frame": int(v.duration * FPS),
        "summary_text": f"#summary C {_SUMMARY[v.scenario]}",
        "annotation_uid": _uid(rng),
    }
    return {"narrations": narrs, "summaries": [summary]}


_SUMMARY = {
    "Cooking": "prepared food in the kitchen",
    "Carpenter": "worked on a wooden frame in the workshop",
    "Cleaning / laundry": "cleaned the house and did the laundry",
    "Working at desk": "worked at the desk in the room",
    "Gardening": "tended the plants in the garden",
}


# ---------------------------------------------------------------- the tree


def profile_for(videos: int) -> Profile:
    return COMPACT if videos <= COMPACT_MAX_VIDEOS else EGO4D


def _splits(rng: np.random.Generator, n: int, prof: Profile) -> list[str]:
    n_val = max(1, round(n * prof.frac_val)) if n >= 3 else 0
    n_test = max(1, round(n * prof.frac_test)) if n >= 3 else 0
    labels = ["val"] * n_val + ["test"] * n_test
    labels += ["train"] * (n - len(labels))
    order = rng.permutation(n)
    return [labels[i] for i in np.argsort(order)]


def _make_video(rng: np.random.Generator, prof: Profile, split: str, first_train: bool, no_clips: bool) -> _Video:
    """One video's scenario, actions and clips, drawn in this order from its own generator."""
    scen_names = list(vocab.SCENARIOS)
    scenario = scen_names[int(rng.integers(0, len(scen_names)))]
    sc = _scenario(scenario)
    uid = _uid(rng)
    duration, actions = _make_actions(rng, prof, sc)
    quirks = {"unsorted", "dup", "unsure"} if first_train else set()
    others = _make_others(rng, sc, actions, "dup" in quirks)
    clip_spans = [] if no_clips or rng.random() < prof.p_no_clips else _make_clips(rng, prof, duration)
    clips = [(_uid(rng), a, b) for a, b in clip_spans]
    in_nlq = split != "train" or rng.random() < prof.p_train_in_nlq or first_train
    return _Video(uid, split, scenario, round(duration, 3), actions, others, clips, in_nlq, quirks)


def _prepare(out: Path) -> Path:
    """Make room for a tree in `out` (see _clear_previous); returns its feature folder."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder to write the sample tree into")
    _clear_previous(out)
    feat_dir = layout.feature_dir(out, FEATURE_DIR)
    try:
        layout.annotations_dir(out).mkdir(parents=True, exist_ok=True)
        feat_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out}: {exc.strerror}; choose a writable folder") from exc
    return feat_dir


def _write_features(pt: Path, seed: int, rng: np.random.Generator, v: _Video, features: bool) -> None:
    if features:
        import torch

        torch.save(torch.from_numpy(_features(seed, rng, v)), pt)
    else:
        pt.write_bytes(b"")  # the window engine only needs the file to exist


def write_sample(
    out: Path,
    videos: int = DEFAULT_VIDEOS,
    features: bool = True,
    seed: int = DEFAULT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> SampleSummary:
    """Write an Ego4D-layout tree under `out`; returns what was written."""
    import time

    t_start = time.perf_counter()
    if videos < 1:
        raise UserError(f"--videos must be at least 1 (got {videos})")
    out = Path(out)
    feat_dir = _prepare(out)

    prof = profile_for(videos)
    summary = SampleSummary(out, prof.name, seed)
    top = np.random.default_rng([seed, 0])
    splits = _splits(top, videos, prof)
    train_idx = [i for i, s in enumerate(splits) if s == "train"]
    # Quirks every tree has at least once (so readers and their tests always meet them).
    no_clip_video = train_idx[-1] if len(train_idx) >= 3 else None
    pass2_only_video = train_idx[-2] if len(train_idx) >= 3 else None
    first = {s: next((i for i, x in enumerate(splits) if x == s), None) for s in ("train", "val", "test")}

    ego_videos, ego_clips = [], []
    nlq: dict[str, list] = {"train": [], "val": [], "test": []}
    narr_path = out / layout.NARRATION_JSON
    with open(narr_path, "w", encoding="utf-8") as nf:
        nf.write("{")
        for vi in range(videos):
            rng = np.random.default_rng([seed, 1, vi])
            v = _make_video(rng, prof, splits[vi], vi == first["train"], vi == no_clip_video)
            uid, split, clips, quirks = v.uid, v.split, v.clips, v.quirks

            passes = {}
            if vi != pass2_only_video:
                passes["narration_pass_1"] = _narration_pass(rng, v, 1, "unsure" in quirks)
            passes["narration_pass_2"] = _narration_pass(rng, v, 2, False)
            for k in (1, 2):
                summary.narrations[k] += len(passes.get(f"narration_pass_{k}", {"narrations": []})["narrations"])
            nf.write(("" if vi == 0 else ", ") + json.dumps(uid) + ": " + json.dumps(passes, ensure_ascii=False))

            ego_videos.append(_ego_video(v, vi))
            ego_clips += _ego_clips(v)
            summary.clips += len(clips)
            summary.split_videos[split] += 1

            if v.in_nlq and clips:
                force: set[str] = set()
                if vi == first["train"]:
                    force = {"zero", "null_template", "no_query", "curly"}
                elif vi == first["val"]:
                    force = {"zero", "null_template", "curly"}
                nlq_clips = _nlq_clips(rng, v, prof, force, summary)
                if nlq_clips:
                    nlq[split].append({"video_uid": uid, "clips": nlq_clips, "split": split})

            _write_features(layout.feature_file(feat_dir, uid), seed, rng, v, features)
            summary.feature_files += 1
            if progress:
                progress(vi + 1, videos)
        nf.write("}")

    summary.videos = videos
    meta = {"version": "v1", "date": "211013", "description": f"nlq-tui synthetic sample (seed {seed})"}
    _write_json(out / layout.EGO4D_JSON, {**meta, "videos": ego_videos, "clips": ego_clips})
    for split, rel in layout.NLQ_FILES.items():
        _write_json(out / rel, {**meta, "manifest": f"sample://nlq/{split}", "videos": nlq[split]})
    _write_readme(out, summary, features)
    summary.bytes = sum(p.stat().st_size for p in _own_files(out))
    summary.seconds = time.perf_counter() - t_start
    return summary


_README_TITLE = "# Synthetic Ego4D sample"
_TREE_FILES = (layout.EGO4D_JSON, "README.md", layout.NARRATION_JSON, *layout.NLQ_FILES.values())


def _own_files(out: Path) -> list[Path]:
    """The files a sample tree consists of (a reader's cache folder beside them is not ours)."""
    files = [out / rel for rel in _TREE_FILES]
    feat = layout.feature_dir(out, FEATURE_DIR)
    if feat.is_dir():
        files += sorted(feat.glob("*.pt"))
    return [p for p in files if p.is_file()]


def _clear_previous(out: Path) -> None:
    """Make room in `out`: empty, or an earlier sample tree (whose stale feature files go)."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    readme = out / "README.md"
    try:
        ours = readme.read_text(encoding="utf-8").startswith(_README_TITLE)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        # never write over what might be a real Ego4D root
        raise UserError(f"{out} is not empty and is not a sample tree; give an empty or new folder")
    for p in _own_files(out):
        p.unlink()


def _write_readme(out: Path, s: SampleSummary, features: bool) -> None:
    args = "" if s.videos == DEFAULT_VIDEOS else f" --videos {s.videos}"
    args += "" if features else " --no-features"
    args += "" if s.seed == DEFAULT_SEED else f" --seed {s.seed}"
    q = s.queries
    feats = "fp16 tensors (rows, 256), 1.875 rows per second" if features else "empty files"
    ann = layout.ANNOTATIONS
    name = {k: Path(v).name for k, v in layout.NLQ_FILES.items()}
    text = f"""{_README_TITLE}

Made by `nlq-tui sample OUT{args}` (seed {s.seed}, "{s.profile}" profile); the same command
writes the same files. Not real video: every narrated action (verb, object, place) leaves a
signature in the features over its time span, so a model trained on the queries can learn
to localise them. Real-file quirks are included on purpose (null `template`, a query without
`query`, zero-length answers, curly apostrophes, `#unsure`/`#O` narrations, unsorted and
duplicate timestamps, a video without clips, a video with only `narration_pass_2`, extra fields).

- {s.videos} videos (train {s.split_videos["train"]}, val {s.split_videos["val"]}, \
test {s.split_videos["test"]}), {s.clips} clips in `{layout.EGO4D_JSON}`
- `{layout.NARRATION_JSON}`: {s.narrations[1]} narrations in pass 1, {s.narrations[2]} in pass 2 \
(val and test videos are narrated too; leave them out when generating training data)
- `{ann}/{name["train"]}` {q["train"]} queries, `{name["val"]}` {q["val"]}, \
`{name["test"]}` {q["test"]} (no answer times)
- `{layout.feature_rel(FEATURE_DIR)}/<video_uid>.pt`: {feats}
"""
    (out / "README.md").write_text(text, encoding="utf-8")


def _write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False))
