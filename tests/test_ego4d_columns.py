"""The columnar msgspec reader (engine/ego4d/columns.py): on crafted narration.json files it
gives the streaming reader's index, warnings and error lines, and hands over what it cannot
read exactly (each trigger pinned here)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from ego4d_fixtures import NARRATION, parallel, quirky_tree, write_tree  # noqa: F401 - parallel: a fixture

from engine.ego4d import ReadPolicy, check, load_index
from engine.errors import DataError

SERIAL = ReadPolicy(parallel_min_bytes=1 << 62, decoder="stdlib")
FAST = ReadPolicy(parallel_min_bytes=1 << 62, decoder="msgspec", chunk=1 << 16)
PARALLEL_FAST = ReadPolicy(parallel_min_bytes=0, parallel_min_chunk=1, workers=3, fork_ok=True, decoder="auto")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))


class _Seen(list):
    reader = ""


@pytest.fixture(params=["scanner", "msgspec"])
def columnar(request, monkeypatch):
    """Per chunk handed to the columnar readers: whether one read the chunk itself. Each test
    runs twice: with the C scanner first (engine/ego4d/_scan.c; where it is built), and with
    the msgspec columnar reader alone (where no compiler built the scanner)."""
    from engine.ego4d import columns, fast

    seen = _Seen()
    seen.reader = request.param
    if request.param == "scanner":
        if columns._native_scan() is None:
            pytest.skip("the C scanner is not built here (no compiler at install time)")
        real_scan = columns.scan_pieces

        def scan_spy(*a, **kw):
            out = real_scan(*a, **kw)
            if out is not None:
                seen.append(True)
            return out

        monkeypatch.setattr(fast, "scan_pieces", scan_spy)
    else:
        monkeypatch.setattr(fast, "scan_pieces", lambda *a, **kw: None)
    real = columns.chunk_pieces

    def spy(*a, **kw):
        out = real(*a, **kw)
        seen.append(out is not None)
        return out

    real_decode = columns.Columns.decode

    def decode(self, data):
        out = real_decode(self, data)
        if out is None or out is columns.STOP:
            seen.append(False)
        return out

    monkeypatch.setattr(fast, "chunk_pieces", spy)
    monkeypatch.setattr(columns.Columns, "decode", decode)
    return seen


def _narr(t, text='"#C C cuts"', uid=None, extra=""):
    fields = [f'"timestamp_sec": {t}', '"timestamp_frame": 3']
    if text is not None:
        fields.append(f'"narration_text": {text}')
    if uid is not None:
        fields.append(f'"annotation_uid": {uid}')
    return "{" + ", ".join(fields) + extra + "}"


def _tree(tmp_path: Path, videos: dict[str, str]) -> Path:
    """A tree whose narration.json is exactly `{uid: <raw JSON of the video>}` as given."""
    root = write_tree(tmp_path / "d", videos=[])
    body = ", ".join(f"{json.dumps(uid)}: {raw}" for uid, raw in videos.items())
    (root / NARRATION).write_text("{" + body + "}", "utf-8")
    return root


def _video(*passes: str | None) -> str:
    parts = [f'"narration_pass_{pn}": {p}' for pn, p in enumerate(passes, 1) if p is not None]
    return "{" + ", ".join(['"status": "complete"', *parts]) + "}"


def _pass(*narrs: str, extra: str = "") -> str:
    return (
        '{"narrations": [' + ", ".join(narrs) + '], "summaries": [{"start_sec": 0, "summary_text": "s"}]' + extra + "}"
    )


def _same(root: Path, policy: ReadPolicy = FAST) -> None:
    """This reader's check report, counts and index are the streaming reader's."""
    got = check(root, use_cache=False, policy=policy)
    want = check(root, use_cache=False, policy=SERIAL)
    assert [(i.level, i.code, i.message, i.count) for i in got.issues] == [
        (i.level, i.code, i.message, i.count) for i in want.issues
    ]
    assert got.counts == want.counts
    if not want.ok:
        with pytest.raises(DataError) as slow:
            load_index(root, use_cache=False, policy=SERIAL)
        with pytest.raises(DataError) as fast:
            load_index(root, use_cache=False, policy=policy)
        assert str(fast.value) == str(slow.value)
        return
    a, b = load_index(root, use_cache=False, policy=policy), load_index(root, use_cache=False, policy=SERIAL)
    assert a.video_uids == b.video_uids
    for pn in (1, 2):
        x, y = a.passes[pn], b.passes[pn]
        for name in ("video_offsets", "time", "flags"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"{pn}.{name}")
        assert x.time.tobytes() == y.time.tobytes()  # the very same doubles (signs of zero too)
        assert bytes(x.text.blob) == bytes(y.text.blob) and bytes(x.uid.blob) == bytes(y.uid.blob)
        np.testing.assert_array_equal(x.text.offsets, y.text.offsets)
        np.testing.assert_array_equal(x.uid.offsets, y.uid.offsets)


def test_every_text_and_uid_shape_the_schema_allows(tmp_path, columnar):
    texts = ['"plain"', '""', "null", None, '"caf\\u00e9 \\"q\\" a\\\\b\\n\\t"', '"\\ud83d\\ude00 emoji"']
    texts += ['"  #O leading space"', '"\u00a0#C no-break space"', '"#c lower"', '"#o x"', '"x #UnSuRe y"']
    texts += ['"the fridge\u2019s door"', '"\u201cquoted\u201d"', '":starts with a colon"', '"#C"', '"#"']
    uids = ['"u1"', "null", None, '""', '"\u00fcber"', '"a\\u0041"']
    narrs = [_narr(float(i), texts[i % len(texts)], uids[i % len(uids)]) for i in range(3 * len(texts))]
    root = _tree(tmp_path, {"v-a": _video(_pass(*narrs), _pass(*narrs[5:])), "v-b": _video(None, _pass(*narrs[:4]))})
    _same(root)
    assert columnar and all(columnar)


def test_numbers_as_the_streaming_reader_reads_them(tmp_path, columnar):
    times = ["0", "-0", "-0.0", "1e-320", "12345678901234567890123", "2.2250738585072011e-308", "7", "1E2", "0.1e1"]
    narrs = [_narr(t) for t in times]
    _same(_tree(tmp_path, {"v": _video(_pass(*narrs))}))
    assert columnar and all(columnar)


def test_unsorted_passes_with_gaps_and_duplicates(tmp_path, columnar):
    p1 = _pass(_narr(5.0), _narr(1.0, None), _narr(3.0, '"a"'), _narr(3.0, "null"), _narr(3.0, '"b"'), _narr(0.5))
    p2 = _pass(_narr(2.0), _narr(2.0), _narr(1.0, '"z"', '"u"'))
    root = _tree(tmp_path, {"v1": _video(p1, p2), "v2": _video(_pass(), p1), "v3": _video('{"narrations": null}')})
    _same(root)
    assert columnar and all(columnar)


def test_unknown_narration_fields_are_learnt_and_named_as_the_streaming_reader_names_them(tmp_path, columnar):
    first = _pass(_narr(1.0), _narr(2.0, extra=', "zeta": 1, "alpha": [1, {"b": 2}], "mid": null, "beta": "x"'))
    later = _pass(_narr(1.0, extra=', "gamma": {}'), _narr(2.0))
    clean = _pass(_narr(1.0, '":)"'), _narr(2.0, '": colon"', '":u"'))
    root = _tree(tmp_path, {"a": _video(clean, first), "b": _video(later, clean), "c": _video(clean, later)})
    _same(root)
    assert columnar and all(columnar)
    (w,) = [i for i in check(root, use_cache=False, policy=FAST).issues if i.code == "unknown_field"]
    assert w.count == 3 and "alpha, beta, mid in video 'a' narration_pass_2" in w.message


def test_non_ascii_unknown_field_names_are_named_as_written(tmp_path, columnar):
    """The streaming reader reads a member with non-ASCII text as Latin-1: it named "éx" as
    "Ã©x" (the scanner, which names it right, found it)."""
    narrs = _pass(_narr(1.0, '"café"', extra=', "éx": 1, "😀": 2'))
    root = _tree(tmp_path, {"a": _video(narrs)})
    _same(root)
    (w,) = [i for i in check(root, use_cache=False, policy=SERIAL).issues if i.code == "unknown_field"]
    assert "éx, 😀 in video 'a' narration_pass_1.narrations[]" in w.message
    in_pass = _pass(_narr(1.0, '"café"'), extra=', "nöte": 1')
    root = _tree(tmp_path / "p", {"b": _video(in_pass)})
    _same(root)
    (w,) = [i for i in check(root, use_cache=False, policy=SERIAL).issues if i.code == "unknown_field"]
    assert "nöte in video 'b' narration_pass_1" in w.message


def test_a_key_twice_in_one_narration_is_not_an_unknown_field(tmp_path, columnar):
    twice = '{"timestamp_sec": 1, "narration_text": "a", "timestamp_sec": 4, "narration_text": "b"}'
    _same(_tree(tmp_path, {"v": _video(_pass(twice, _narr(2.0)))}))
    assert columnar and all(columnar)


def test_more_unknown_field_names_than_it_learns_go_the_slower_way(tmp_path, columnar):
    from engine.ego4d.columns import _MAX_EXTRA

    narrs = [_narr(float(i), extra=f', "f{i}": {i}') for i in range(_MAX_EXTRA + 3)]
    narrs.append(_narr(99.0, '":starts with a colon"'))
    root = _tree(tmp_path, {"v": _video(_pass(*narrs[:-1])), "w": _video(_pass(narrs[-1]), _pass(narrs[0]))})
    _same(root, dataclasses.replace(FAST, chunk=1 << 20))
    if columnar.reader == "scanner":
        assert columnar and all(columnar)  # the scanner learns nothing: any number of names
    else:
        assert False in columnar


@pytest.mark.parametrize(
    "what, raw",
    [
        ("unknown pass field", _video(_pass(_narr(1.0), extra=', "notes": 1'))),
        ("unknown video field", '{"colour": "red", "narration_pass_1": ' + _pass(_narr(1.0)) + "}"),
        ("text a number", _video(_pass(_narr(1.0, "7")))),
        ("uid a number", _video(_pass(_narr(1.0, '"x"', "12")))),
        ("uid true", _video(_pass(_narr(1.0, '"x"', "true")))),
        ("time a string", _video(_pass(_narr('"soon"')))),
        ("time a boolean", _video(_pass(_narr("true")))),
        ("time null", _video(_pass(_narr("null")))),
        ("time missing", _video(_pass('{"narration_text": "x"}'))),
        ("time NaN", _video(_pass(_narr("NaN")))),
        ("time huge", _video(_pass(_narr("1" + "0" * 400)))),
        ("time 1e999", _video(_pass(_narr("1e999")))),
        ("lone surrogate", _video(_pass(_narr(1.0, '"\\ud800 x"')))),
        ("narration a list", _video(_pass("[1, 2]"))),
        ("narrations an object", _video('{"narrations": {}}')),
        ("pass a list", _video("[]")),
        ("video a number", "3"),
        ("huge integer frame", _video(_pass(_narr(1.0, extra=', "_unmapped_timestamp_sec": 1' + "0" * 5000)))),
        ("huge integer summary", _video('{"narrations": [], "summaries": [' + "9" * 5000 + "]}")),
        ("truncated", _video(_pass(_narr(1.0)))[:-3]),
    ],
)
def test_what_it_cannot_read_exactly_goes_to_the_reader_that_can(tmp_path, columnar, what, raw):
    root = _tree(tmp_path, {"ok": _video(_pass(_narr(1.0), _narr(2.0))), "bad": raw, "after": _video(_pass())})
    _same(root)
    assert False in columnar, what


def test_not_utf8_text_is_the_streaming_reader_error(tmp_path, columnar):
    root = _tree(tmp_path, {"v": _video(_pass(_narr(1.0, '"caf\u00e9"')))})
    data = (root / NARRATION).read_bytes().replace("\u00e9".encode(), b"\xe9")
    (root / NARRATION).write_bytes(data)
    _same(root)


def test_a_video_uid_twice_in_one_chunk_keeps_both_countings(tmp_path, columnar):
    unsorted = _pass(_narr(2.0), _narr(1.0))
    root = _tree(tmp_path, {"a": _video(unsorted), "b": _video(_pass(_narr(1.0)))})
    text = (root / NARRATION).read_text().replace('"b"', '"a"')
    (root / NARRATION).write_text(text)
    _same(root)


@pytest.mark.parametrize("chunk", [1, 97, 4096])
def test_chunks_cut_anywhere_give_the_same_result(tmp_path, columnar, chunk):
    root = quirky_tree(tmp_path / "q")
    _same(root, dataclasses.replace(FAST, chunk=chunk))
    assert columnar and all(columnar)


def test_parallel_workers_read_with_it_and_give_the_serial_result(tmp_path, columnar, parallel):
    videos = {}
    for i in range(30):
        p1 = _pass(*[_narr(float((j * 7) % 5), f'"#C C {i} {j}"', f'"u{i}-{j}"') for j in range(i % 6)])
        videos[f"vid-{i}"] = _video(p1, _pass(_narr(1.0, extra=', "x": 1')) if i % 4 == 0 else None)
    root = _tree(tmp_path, videos)
    _same(root, dataclasses.replace(PARALLEL_FAST, chunk=512))
    assert parallel and all(o is not None for o in parallel)  # really read by the workers


def test_parallel_spans_cut_at_wrong_places_are_caught(tmp_path, monkeypatch):
    from engine.ego4d import parallel as par

    nested = _pass(_narr(1.0, extra=', "x": {"a": {}, "b": {"c": 1}, "d": {}}'))
    root = _tree(tmp_path, {f"v{i}": _video(nested, _pass(_narr(2.0))) for i in range(8)})
    data = (root / NARRATION).read_bytes()
    wrong = [data.index(b'"b": {'), data.index(b'"d": {', data.index(b'"v3"'))]
    monkeypatch.setattr(par, "chunk_starts", lambda path, size, n: wrong)
    _same(root, PARALLEL_FAST)


def test_the_other_files_are_read_while_workers_decode_and_their_problems_come_first(tmp_path):
    from ego4d_fixtures import EGO4D, edit_json

    videos = {f"v{i}": _video(_pass(_narr(1.0), _narr(float(i)))) for i in range(10)}
    videos["v4"] = _video(_pass(_narr('"soon"')))
    root = _tree(tmp_path, videos)
    edit_json(root, EGO4D, lambda d: d["clips"].append({"clip_uid": "c", "video_uid": "v1", "video_start_sec": "x"}))
    _same(root, dataclasses.replace(PARALLEL_FAST, chunk=256))
    with pytest.raises(DataError, match="ego4d.json"):
        load_index(root, use_cache=False, policy=PARALLEL_FAST)


def _clip_view(root: Path, policy: ReadPolicy):
    report = check(root, use_cache=False, policy=policy)
    issues = [(i.level, i.code, i.message, i.count) for i in report.issues]
    if not report.ok:
        return issues, None
    index = load_index(root, use_cache=False, policy=policy)
    arrays = [
        getattr(index, n).tolist() for n in ("clip_video", "clip_start", "clip_end", "clip_order", "clip_offsets")
    ]
    return issues, (index.clip_uids, index.video_uids, arrays)


@pytest.mark.parametrize(
    "clip",
    [
        {"clip_uid": "c", "video_uid": "v1", "video_start_sec": 1, "video_end_sec": 5},
        {"clip_uid": None, "video_uid": "v1", "video_start_sec": 1.0, "video_end_sec": 5.0},
        {"clip_uid": 7, "video_uid": "v1", "video_start_sec": 1.0, "video_end_sec": 5.0},
        {"clip_uid": "c", "video_uid": "v1", "video_start_sec": 5.0, "video_end_sec": 1.0},
        {"clip_uid": "c", "video_uid": "", "video_start_sec": 1.0, "video_end_sec": 5.0},
        {"clip_uid": "c", "video_uid": "v1", "video_start_sec": True, "video_end_sec": 5.0},
        {"clip_uid": "c", "video_uid": "v1", "video_start_sec": 10**400, "video_end_sec": 5.0},
        {"clip_uid": "c", "video_uid": "new-video", "video_start_sec": -0.0, "video_end_sec": 0.0},
        "not a clip",
    ],
)
def test_ego4d_json_read_by_msgspec_gives_what_the_json_module_gives(tmp_path, monkeypatch, clip):
    from ego4d_fixtures import EGO4D, edit_json

    from engine.ego4d import load

    root = _tree(tmp_path, {"v1": _video(_pass(_narr(1.0), _narr(2.0)))})
    edit_json(root, EGO4D, lambda d: d["clips"].append(clip))
    got = _clip_view(root, FAST)
    monkeypatch.setattr(load, "_quick_json", lambda p: None)
    assert got == _clip_view(root, FAST)


@pytest.mark.parametrize("damage", ["bom", "nan", "surrogate", "truncated"])
def test_what_msgspec_refuses_in_ego4d_json_is_read_by_the_json_module(tmp_path, monkeypatch, damage):
    from ego4d_fixtures import EGO4D, edit_json

    from engine.ego4d import load

    root = _tree(tmp_path, {"v1": _video(_pass(_narr(1.0), _narr(2.0)))})
    clip = {"clip_uid": "c", "video_uid": "v1", "video_start_sec": 1.0, "video_end_sec": 5.0}
    edit_json(root, EGO4D, lambda d: d["clips"].append(clip))
    text = (root / EGO4D).read_text("utf-8")
    text = {
        "bom": "\ufeff" + text,
        "nan": text.replace('"video_end_sec": 5.0', '"video_end_sec": NaN'),
        "surrogate": text.replace('"clip_uid": "c"', '"clip_uid": "\\udc00c"'),
        "truncated": text[:-5],
    }[damage]
    assert text != (root / EGO4D).read_text("utf-8")
    (root / EGO4D).write_text(text, "utf-8")
    assert load._quick_json(root / EGO4D) is None
    got = _clip_view(root, FAST)
    monkeypatch.setattr(load, "_quick_json", lambda p: None)
    assert got == _clip_view(root, FAST)


def test_parallel_workers_with_a_video_uid_in_two_shares(tmp_path, monkeypatch, parallel):
    from engine.ego4d import parallel as par

    videos = {f"vid-{i}": _video(_pass(_narr(2.0), _narr(1.0 + i))) for i in range(12)}
    videos["vid-3"] = _video(_pass(_narr(3.0), _narr(1.0, extra=', "q": 1')), _pass(_narr(1.0)))
    root = _tree(tmp_path, videos)
    text = (root / NARRATION).read_text().replace('"vid-9"', '"vid-3"')
    (root / NARRATION).write_text(text)
    data = (root / NARRATION).read_bytes()
    cuts = [data.index(b'"vid-6"')]
    monkeypatch.setattr(par, "chunk_starts", lambda path, size, n: cuts)
    _same(root, dataclasses.replace(PARALLEL_FAST, chunk=300))
    assert parallel and all(type(o) is list for o in parallel)  # pieces, not whole-file arrays


def test_parallel_workers_give_whole_file_arrays_when_no_uid_repeats(tmp_path, parallel):
    from engine.ego4d import parallel as par

    videos = {
        f"vid-{i}": _video(_pass(_narr(2.0, '"it\u2019s"'), _narr(1.0 + i)) if i % 3 else None, _pass())
        for i in range(12)
    }
    videos["vid-0"] = _video(None, _pass(_narr(1.0, '"the cup\u2019s lid"'), _narr(1.0)))
    root = _tree(tmp_path, videos)
    _same(root, dataclasses.replace(PARALLEL_FAST, chunk=300))
    assert parallel and all(isinstance(o, par.Flat) for o in parallel)


@pytest.mark.parametrize("window", [1, 3, 7, 8, 13, 1 << 24])
def test_unsure_is_found_where_the_case_insensitive_pattern_finds_it(window):
    import random
    import re

    from engine.ego4d.narration import _unsure_at

    pattern = re.compile(rb"#[uU][nN][sS][uU][rR][eE]")
    rng = random.Random(window)
    pieces = [
        b"#unsure",
        b"#UnSuRe",
        b"#unsur",
        b"x",
        b"##unsure",
        b" ",
        "\u00e9".encode(),
        b"#UNSURE#unsure",
        b"\xc4\xb0",
    ]
    for _ in range(200):
        blob = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert _unsure_at(blob, window).tolist() == [m.start() for m in pattern.finditer(blob)]


def test_curly_quotes_are_found_where_the_byte_pattern_finds_them():
    import random

    from engine.ego4d.narration import CURLY_BYTES, curly_at

    rng = random.Random(0)
    # curly quotes, other characters that start with E2 (an em dash, an ellipsis, the euro sign), ASCII
    pieces = ["\u2018", "\u2019", "\u201c", "\u201d", "\u2014", "\u2026", "\u20ac", "\u2039", "a", "\u00e9", "'"]
    for _ in range(300):
        blob = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))).encode()
        assert curly_at(blob).tolist() == [m.start() for m in CURLY_BYTES.finditer(blob)]


def test_utf8_lengths_of_any_strings_are_their_encoded_lengths():
    import random

    from engine.ego4d.columns import _utf8

    rng = random.Random(0)
    alphabet = ["a", " ", "\u00e9", "\u2019", "\U0001f600", "\u07ff", "\u0800", "\uffff", "\U00010000", "#", ""]
    for _ in range(2000):
        strs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 8))]
        blob, lens = _utf8(strs)
        assert blob == "".join(strs).encode() and lens.tolist() == [len(x.encode()) for x in strs]
    with pytest.raises(UnicodeEncodeError):
        _utf8(["a", "\ud800"])


_TEXT_VALUES = [
    "#C C cuts",
    "",
    "caf\u00e9 \u2019s",
    '"quoted" \\ back',
    "\U0001f600",
    "#unsure x",
    "  #O y",
    ":)",
    "\n",
]
_KEYS = ["timestamp_frame", "_unmapped_timestamp_sec", "_extra_note", "zz", "summary_text"]


def _random_narration(draw) -> dict:
    from hypothesis import strategies as st

    n: dict = {"timestamp_sec": draw(st.sampled_from([0, 1, 1.5, 2.0, -0.0, 3, 1e-3, 7.25]))}
    text = draw(st.sampled_from([*_TEXT_VALUES, None, "absent"]))
    if text != "absent":
        n["narration_text"] = text
    uid = draw(st.sampled_from(["u-1", "\u00fc", "", None, "absent"]))
    if uid != "absent":
        n["annotation_uid"] = uid
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=2, unique=True)):
        n[key] = draw(st.sampled_from([1, "x", None, [1, {"a": 2}], 12345678901234567890]))
    return n


def test_random_narration_files_read_as_the_streaming_reader_reads_them():
    import tempfile

    from hypothesis import given, settings
    from hypothesis import strategies as st

    @st.composite
    def files(draw):
        videos = {}
        for i in range(draw(st.integers(1, 6))):
            entry: dict = {}
            for pn in (1, 2):
                kind = draw(st.sampled_from(["pass", "pass", "null", "absent", "empty"]))
                if kind == "pass":
                    entry[f"narration_pass_{pn}"] = {
                        "narrations": [_random_narration(draw) for _ in range(draw(st.integers(0, 5)))]
                    }
                elif kind == "null":
                    entry[f"narration_pass_{pn}"] = None
                elif kind == "empty":
                    entry[f"narration_pass_{pn}"] = {}
            videos[f"v{i}"] = entry
        return videos, draw(st.integers(1, 400)), draw(st.booleans()), draw(st.sampled_from([None, 0, 2]))

    @settings(max_examples=30, deadline=None)
    @given(files())
    def run(spec):
        videos, chunk, ascii_only, indent = spec
        with tempfile.TemporaryDirectory() as d:
            root = write_tree(Path(d) / "t", videos=[])
            (root / NARRATION).write_text(json.dumps(videos, ensure_ascii=ascii_only, indent=indent), "utf-8")
            _same(root, dataclasses.replace(FAST, chunk=chunk))
            _same(root, dataclasses.replace(PARALLEL_FAST, chunk=chunk))

    run()


@pytest.mark.parametrize(
    ("running", "own_states", "idle"), [(3, "RS", 2.0), (3, "RR", 3.0), (1, "R", 4.0), (9, "R", 0.0)]
)
def test_idle_cpus_counts_other_processes_runnable_tasks_not_ours(monkeypatch, running, own_states, idle):
    """4 CPUs: the kernel's runnable tasks less this process's own running threads (numpy's
    BLAS threads spin for a while after they start: they are not another process's load)."""
    import io
    import types

    from engine.ego4d import parallel as par

    def fake_open(path, *a, **kw):
        if path == "/proc/loadavg":
            return io.StringIO(f"0.50 0.40 0.30 {running}/120 4242\n")
        state = own_states[int(str(path).split("/")[-2])]
        return io.StringIO(f"17 (py thread) {state} 1 17 17 0 -1\n")

    tasks = [types.SimpleNamespace(path=f"/proc/self/task/{i}") for i in range(len(own_states))]
    monkeypatch.setattr(par, "open", fake_open, raising=False)
    monkeypatch.setattr(par.os, "scandir", lambda path: iter(tasks))
    assert par.idle_cpus(4, sample_s=0.0) == idle


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_shares_blob_files_are_appended_whole_and_in_order(tmp_path, monkeypatch, kernel_copy):
    """The parent appends each worker's blob to the column's file: the first by a rename, the
    rest by copy_file_range through a second descriptor (the column's own file is opened for
    appending, which copy_file_range refuses), or by pwrite where there is no such call."""
    from engine.ego4d import parallel as par
    from engine.ego4d.narration import BlobFile

    calls = []
    real = par.os.copy_file_range

    def spy(*a, **kw):
        calls.append(kw.get("offset_dst"))
        if not kernel_copy:
            raise OSError(38, "not here")
        return real(*a, **kw)

    monkeypatch.setattr(par.os, "copy_file_range", spy)
    parts = [b"alpha", b"", "\u00e9\u4e2d\U0001f600".encode(), bytes(range(256)) * 300]
    dst = BlobFile(tmp_path / "p1.text.bin")
    for k, part in enumerate(parts):
        (tmp_path / f"p1.text.{k}.bin").write_bytes(part)
        par._append_file(dst, tmp_path / f"p1.text.{k}.bin", len(part))
    dst.write(b"tail")  # the column's own writes still go to its end
    assert bytes(dst.finish()) == b"".join(parts) + b"tail"
    assert dst.size == sum(map(len, parts)) + 4
    assert calls and calls[0] == len(parts[0]) + len(parts[1])  # the third part, at its offset
    written_first = BlobFile(tmp_path / "p1.uid.bin")  # its own file still open "wb": no rename
    written_first.write(b"x")
    (tmp_path / "yyy.bin").write_bytes(b"yyy")
    par._append_file(written_first, tmp_path / "yyy.bin", 3)
    written_first.write(b"z")
    assert bytes(written_first.finish()) == b"xyyyz"
    (tmp_path / "short.bin").write_bytes(b"ab")
    more = BlobFile(tmp_path / "p2.text.bin")
    more.write(b"x")
    with pytest.raises(OSError, match="shorter than its worker said"):
        par._append_file(more, tmp_path / "short.bin", 3)
