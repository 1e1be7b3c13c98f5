"""The one NLQ walker: videos -> clips -> annotations -> language_queries of any NLQ-format file.

`walk` yields an `NLQClip` for every clip and then an `NLQQuery` for every query under it, in
file order, reporting what is wrong to a `Problems` (errors) and counting quirks (warnings).
A query the strict reader refuses still comes out, with `problem` set to the error's code, so
that lenient readers (training's `load_split`, which counts skips by its own reasons) and the
strict `load_nlq` (which keeps only queries without a problem) read the file the same way.
Inside a video or clip that is itself unusable, the walk goes on quietly: its queries carry the
problem, and no second error is reported for them (docs/ARCHITECTURE.md, "File formats").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.ego4d.problems import (
    Problems,
    as_seconds,
    clean_text,
    describe_bad_number,
    json_type,
    read_json,
    warn_surrogates,
    warn_unknown,
)
from engine.errors import DataError
from engine.index import Issue

_QUERY_KEYS = {
    "clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec",
    "video_start_frame", "video_end_frame", "template", "query",
    "slot_x", "verb_x", "slot_y", "verb_y", "raw_tags",
}  # fmt: skip
_ANNOTATION_KEYS = {"language_queries", "annotation_uid"}
_CLIP_KEYS = {
    "clip_uid", "video_start_sec", "video_end_sec", "video_start_frame", "video_end_frame",
    "clip_start_sec", "clip_end_sec", "clip_start_frame", "clip_end_frame",
    "source_clip_uid", "annotations",
}  # fmt: skip
_VIDEO_KEYS = {"video_uid", "clips", "split"}
_TOP_KEYS = {"version", "date", "description", "manifest", "videos"}
_CURLY = ("\u2018", "\u2019", "\u201c", "\u201d")
_TIMES = ("clip_start_sec", "clip_end_sec", "video_start_sec", "video_end_sec")


@dataclass
class NLQClip:
    video_uid: str
    clip_uid: str  # "" when missing or not a string
    video_start_sec: float | None  # the clip's span in the video (None: not a number)
    video_end_sec: float | None
    where: str  # JSON path, e.g. "videos[3].clips[0]"
    index: int = 0  # position in its video's clips
    problem: str | None = None  # error code of the clip or its video (its queries carry it too)


@dataclass
class NLQQuery:
    """One language query; times are None in nlq_test_unannotated.json (or when not numbers)."""

    video_uid: str
    clip_uid: str
    annotation_uid: str
    query_index: int  # position in its annotation's language_queries
    query: str | None
    template: str | None
    clip_start_sec: float | None  # answer window, relative to the clip
    clip_end_sec: float | None
    video_start_sec: float | None  # answer window, absolute in the video
    video_end_sec: float | None
    where: str  # "videos[3].clips[0].annotations[1].language_queries[2]"
    clip: NLQClip | None = None
    has_times: bool = False  # clip_start_sec and clip_end_sec are both there (not null)
    problem: str | None = None  # why the strict reader refuses it (an error code), None if usable


@dataclass
class NLQSplit:
    path: Path
    data: dict  # the parsed file, unchanged (export copies its nesting)
    video_uids: list[str]
    clips: list[NLQClip]
    queries: list[NLQQuery]
    issues: list[Issue]


class Walker:
    """One walk over a parsed NLQ file; see the module docstring.

    `not_objects`: the one-line messages of videos and clips that are not JSON objects (a
    lenient reader that cannot skip those raises the first).
    """

    def __init__(self, shown: str, rel: str, problems: Problems, annotated: bool) -> None:
        self.shown = shown
        self.rel = rel
        self.problems = problems
        self.annotated = annotated
        self.not_objects: list[str] = []
        self.video_uids: list[str] = []

    def err(self, code: str, where: str, what: str, quiet: bool = False) -> str:
        if not quiet:
            self.problems.error(code, self.rel, f"{self.shown}: {where} {what}; fix or re-download the file")
        return code

    def warn(self, code: str, what: str, where: str, quiet: bool = False) -> None:
        if not quiet:
            self.problems.warn(code, self.rel, what, where)

    def extra(self, obj: dict, known: set, where: str, quiet: bool) -> None:
        e = obj.keys() - known
        if e and not quiet:
            warn_unknown(self.problems, self.rel, e, where)  # names first: uids can be long

    def text(self, v: Any, where: str, quiet: bool) -> Any:
        if type(v) is not str:
            return v
        v, bad = clean_text(v)
        if bad and not quiet:
            warn_surrogates(self.problems, self.rel, where)
        return v

    def number(self, obj: dict, key: str, where: str, required: bool, quiet: bool) -> tuple[float | None, str | None]:
        """(seconds or None, error code or None)."""
        if key not in obj:
            return (None, self.err("missing_field", where, f"has no {key}", quiet)) if required else (None, None)
        v = obj[key]
        t = as_seconds(v)
        if t is None:
            return None, self.err(
                "bad_timestamp", f"{where}.{key}", f"is {describe_bad_number(v)}, expected a number of seconds", quiet
            )
        return t, None

    def walk(self, data: Any) -> Iterator[NLQClip | NLQQuery]:
        """Everything under `data["videos"]`; top-level problems are reported, nothing yielded."""
        if type(data) is not dict:
            self.problems.error(
                "wrong_top_type",
                self.rel,
                f"{self.shown}: top level is {json_type(data)}, expected an object with 'videos'; "
                "this is not an Ego4D NLQ file",
            )
            return
        videos = data.get("videos")
        if type(videos) is not list:
            what = "missing" if "videos" not in data else json_type(videos)
            self.problems.error(
                "no_videos",
                self.rel,
                f"{self.shown}: 'videos' is {what}, expected a list of videos; this is not an Ego4D NLQ file",
            )
            return
        self.extra(data, _TOP_KEYS, "top level", False)
        for vi, v in enumerate(videos):
            yield from self._video(vi, v)

    def _video(self, vi: int, v: Any) -> Iterator[NLQClip | NLQQuery]:
        vw = f"videos[{vi}]"
        if type(v) is not dict:
            self.not_objects.append(f"{self.shown}: {vw} is {json_type(v)}, expected an object")
            self.err("bad_video", vw, f"is {json_type(v)}, expected an object")
            return
        vu = self.text(v.get("video_uid"), f"{vw}.video_uid", False)
        problem = None
        if type(vu) is not str or not vu:
            problem = self.err("bad_video", f"{vw}.video_uid", "is missing or not a string")
            vu = "" if vu is None else str(vu)
        else:
            self.extra(v, _VIDEO_KEYS, vw, False)
            self.video_uids.append(vu)
        vclips = v.get("clips")
        if type(vclips) is not list:
            what = "missing" if vclips is None else json_type(vclips)
            self.err("bad_video", f"{vw}.clips", f"is {what}, expected a list (video {vu!r})", problem is not None)
            return
        for ci, c in enumerate(vclips):
            yield from self._clip(vu, ci, c, f"{vw}.clips[{ci}]", problem)

    def _clip(self, vu: str, ci: int, c: Any, cw: str, problem: str | None) -> Iterator[NLQClip | NLQQuery]:
        if type(c) is not dict:
            self.not_objects.append(f"{self.shown}: {cw} is {json_type(c)}, expected an object")
            self.err("bad_clip", cw, f"is {json_type(c)}, expected an object", problem is not None)
            return
        quiet = problem is not None
        self.extra(c, _CLIP_KEYS, cw, quiet)
        cu = self.text(c.get("clip_uid"), f"{cw}.clip_uid", quiet)
        cu = cu if type(cu) is str else ""
        vs, p1 = self.number(c, "video_start_sec", cw, True, quiet)
        ve, p2 = self.number(c, "video_end_sec", cw, True, quiet)
        _, p3 = self.number(c, "clip_start_sec", cw, False, quiet)
        _, p4 = self.number(c, "clip_end_sec", cw, False, quiet)
        problem = problem or p1 or p2 or p3 or p4
        clip = NLQClip(vu, cu, vs, ve, cw, ci, problem)
        yield clip
        anns = c.get("annotations")
        if anns is None:
            return
        if type(anns) is not list:
            self.err("bad_clip", f"{cw}.annotations", f"is {json_type(anns)}, expected a list", problem is not None)
            return
        for ai, a in enumerate(anns):
            yield from self._annotation(clip, a, f"{cw}.annotations[{ai}]")

    def _annotation(self, clip: NLQClip, a: Any, aw: str) -> Iterator[NLQQuery]:
        quiet = clip.problem is not None
        if type(a) is not dict:
            self.err("bad_annotation", aw, f"is {json_type(a)}, expected an object", quiet)
            return
        self.extra(a, _ANNOTATION_KEYS, aw, quiet)
        au = self.text(a.get("annotation_uid"), f"{aw}.annotation_uid", quiet)
        au = au if type(au) is str else ""
        lqs = a.get("language_queries")
        if type(lqs) is not list:
            what = "missing" if lqs is None else json_type(lqs)
            self.err("bad_annotation", f"{aw}.language_queries", f"is {what}, expected a list", quiet)
            return
        for qi, q in enumerate(lqs):
            yield self._query(clip, au, qi, q, f"{aw}.language_queries[{qi}]")

    def _query(self, clip: NLQClip, au: str, qi: int, q: Any, qw: str) -> NLQQuery:
        quiet = clip.problem is not None
        out = NLQQuery(clip.video_uid, clip.clip_uid, au, qi, None, None, None, None, None, None, qw, clip)
        out.problem = clip.problem
        if type(q) is not dict:
            out.problem = out.problem or self.err("bad_query", qw, f"is {json_type(q)}, expected an object", quiet)
            return out
        self.extra(q, _QUERY_KEYS, qw, quiet)
        out.has_times = q.get("clip_start_sec") is not None and q.get("clip_end_sec") is not None
        times = []
        for k in _TIMES:
            t, p = self.number(q, k, qw, self.annotated, quiet or out.problem is not None)
            out.problem = out.problem or p
            times.append(t)
        out.clip_start_sec, out.clip_end_sec, out.video_start_sec, out.video_end_sec = times
        quiet = quiet or out.problem is not None
        text = self.text(q.get("query"), f"{qw}.query", quiet)
        if text is None:
            self.warn("query_missing", "queries without 'query' text (skipped by training)", qw, quiet)
        elif type(text) is not str:
            out.problem = out.problem or self.err(
                "bad_query", f"{qw}.query", f"is {json_type(text)}, expected a string", quiet
            )
            text = None
        elif any(ch in text for ch in _CURLY):
            self.warn("curly_quotes", "queries with curly apostrophes or quotes", qw, quiet)
        out.query = text
        quiet = quiet or out.problem is not None
        tmpl = self.text(q.get("template"), f"{qw}.template", quiet)
        if tmpl is None:
            self.warn("template_null", "queries with template null", qw, quiet)
        elif type(tmpl) is not str:
            what = f"is {json_type(tmpl)}, expected a string or null"
            out.problem = out.problem or self.err("bad_query", f"{qw}.template", what, quiet)
            tmpl = None
        out.template = tmpl
        cs, ce = out.clip_start_sec, out.clip_end_sec
        if out.problem is None and cs is not None and ce is not None:
            if ce < cs:
                what = f"answer ends before it starts (clip_start_sec {cs} > clip_end_sec {ce})"
                out.problem = self.err("bad_window", qw, what)
            elif ce == cs:
                self.warn("zero_length_answer", "queries with a zero-length answer window", qw)
        return out


def read_nlq_json(path: Path, problems: Problems, rel: str | None = None) -> tuple[Any, str, str]:
    """(parsed data or None, shown name, rel) of an NLQ file; problems are reported."""
    rel = rel or path.name
    root = path.parent if rel == path.name else Path(str(path)[: -len(rel)].rstrip("/") or "/")
    return read_json(root, rel, problems, path.name), str(path), rel


def load_nlq(
    path: str | os.PathLike, *, annotated: bool | None = None, problems: Problems | None = None, rel: str | None = None
) -> NLQSplit | None:
    """Parse and validate an NLQ split file (nlq_train.json, nlq_val.json, nlq_test_unannotated.json).

    `annotated`: whether answer times are required (default: unless the name says
    "unannotated"). With no `problems`, the first error raises DataError; quirks are in
    `.issues` as warnings. Returns None only when errors are being collected into `problems`.
    """
    path = Path(path)
    own = problems is None
    if own:
        problems = Problems(path.parent, strict=True)
    assert problems is not None
    if annotated is None:
        annotated = "unannotated" not in path.name
    data, shown, rel = read_nlq_json(path, problems, rel)
    if data is None:
        return None
    n_err = problems.errors_in(rel)
    walker = Walker(shown, rel, problems, annotated)
    clips: list[NLQClip] = []
    queries: list[NLQQuery] = []
    for item in walker.walk(data):
        if item.problem is not None:
            continue
        (clips if isinstance(item, NLQClip) else queries).append(item)  # type: ignore[arg-type]
    if problems.errors_in(rel) > n_err or type(data) is not dict or type(data.get("videos")) is not list:
        return None
    issues = [i for i in problems.issues() if i.file == rel and i.level == "warning"] if own else []
    return NLQSplit(path=path, data=data, video_uids=walker.video_uids, clips=clips, queries=queries, issues=issues)


def nlq_video_uids(path: str | os.PathLike) -> list[str]:
    """The video uids of an NLQ file, in file order; DataError (one line) when it is unusable."""
    split = load_nlq(path, annotated=False)
    return list(split.video_uids) if split is not None else []


def iter_nlq(path: str | os.PathLike, *, missing: str = "") -> Iterator[NLQClip | NLQQuery]:
    """Every clip and query of an NLQ-format file (an official split or an export), for a lenient
    reader that counts unusable queries by its own reasons instead of refusing the file.

    Raises DataError (one line) when the file cannot be read or parsed, has no `videos` list, or
    holds a video or clip that is not an object; everything else comes out, with `problem` set
    where the strict reader would refuse it. `missing`: what to do when the file is not there.
    """
    path = Path(path)
    if missing and not path.is_file() and not path.is_dir():
        raise DataError(f"{path}: no such NLQ file; {missing}", path=str(path))
    problems = Problems(path.parent, strict=False)
    data, shown, rel = read_nlq_json(path, problems)
    if data is None:
        raise DataError(problems.errors[0].message, path=str(path))
    walker = Walker(shown, rel, problems, annotated=False)
    yield from walker.walk(data)
    fatal = [i.message for i in problems.errors if i.code in ("wrong_top_type", "no_videos")] + walker.not_objects
    if fatal:
        raise DataError(fatal[0], path=str(path))
