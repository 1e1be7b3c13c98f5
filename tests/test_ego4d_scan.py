"""The C narration scanner (engine/ego4d/_scan.c) on damaged and hostile input: it never
crashes, and whatever it accepts reads exactly as the streaming reader reads it (the shapes
of valid files are pinned in test_ego4d_columns.py, which runs with and without it). Also
the fast reader's chunking around it, where fuzzing the scanner found the readers apart."""

from __future__ import annotations

import json
import random
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from ego4d_fixtures import NARRATION, write_tree
from test_ego4d_columns import FAST, _same

from engine.ego4d import columns

scanner = columns._native_scan()
needs_scanner = pytest.mark.skipif(scanner is None, reason="the C scanner is not built here (no compiler)")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLQ_TUI_CACHE", str(tmp_path / "cache"))


def _chunk() -> bytes:
    """A chunk with every part of the schema: passes null, empty and unsorted, unknown fields,
    escapes, non-ASCII, curly quotes, #unsure, nulls, numbers of each form."""
    narrs = [
        {"timestamp_sec": 2.5, "timestamp_frame": 75, "narration_text": "#C C opens the door", "annotation_uid": "u1"},
        {"timestamp_sec": 1, "narration_text": "#O a man \u201cwaves\u201d #Unsure", "annotation_uid": None},
        {"timestamp_sec": 1e-3, "narration_text": None, "_extra_note": {"a": [1, -2.5e3, True, None]}},
        {"timestamp_sec": -0.0, "narration_text": '  #c leading\ttab \\ "q" \u00e9\U0001f600'},
    ]
    videos = {
        "v-1": {"status": "complete", "narration_pass_1": {"narrations": narrs, "summaries": [{"x": 1}]}},
        "v-\u00e9": {"narration_pass_1": None, "narration_pass_2": {}},
        "v-3": {"narration_pass_2": {"narrations": None}, "narration_pass_1": {"narrations": narrs[:2]}},
    }
    return json.dumps(videos, ensure_ascii=False).encode()


def _tree_of(tmp_path: Path, data: bytes) -> Path:
    root = write_tree(tmp_path / "t", videos=[])
    (root / NARRATION).write_bytes(data)
    return root


@needs_scanner
def test_it_reads_the_whole_schema_itself():
    got = scanner(_chunk())
    assert got is not None
    uids, p1, p2, unknown = got
    assert uids == ["v-1", "v-\u00e9", "v-3"]
    assert np.frombuffer(p1[0], dtype=np.int64).tolist() == [0, 2]  # the videos with pass 1
    assert np.frombuffer(p2[0], dtype=np.int64).tolist() == [1, 2]
    assert unknown == [(1, 2, "_extra_note")]


@needs_scanner
def test_every_cut_of_a_chunk_is_declined_without_harm():
    data = _chunk()
    assert all(scanner(data[:n]) is None for n in range(len(data)))
    assert scanner(data + b" \n") is not None and scanner(data + b",") is None


@needs_scanner
@pytest.mark.parametrize(
    "what, raw",
    [
        ("deep nesting", b'{"v": {"status": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"),
        ("deep object", b'{"v": {"status": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}}"),
        ("long number", b'{"v": {"status": 1' + b"0" * 100_000 + b"}}"),
        ("raw control character", b'{"v\x1b": {}}'),
        ("lone surrogate escape", b'{"v\\ud800": {}}'),
        ("encoded surrogate", b'{"v\xed\xa0\x80": {}}'),
        ("overlong UTF-8", b'{"v\xc0\xaf": {}}'),
        ("above U+10FFFF", b'{"v\xf4\x90\x80\x80": {}}'),
        ("cut UTF-8", b'{"v\xe2\x80": {}}'),
        ("bad escape", b'{"v\\x41": {}}'),
        ("short \\u", b'{"v\\u12": {}}'),
        ("NaN time", b'{"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": NaN}]}}}'),
        ("time overflows", b'{"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1e999}]}}}'),
        ("leading zero", b'{"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": 01}]}}}'),
        ("a key twice", b'{"v": {"status": 1, "status": 2}}'),
        ("unknown video field", b'{"v": {"colour": 1}}'),
        ("trailing comma", b'{"v": {},}'),
        ("not an object", b"[]"),
    ],
)
def test_what_it_cannot_read_exactly_it_declines(what, raw):
    assert scanner(raw) is None, what


@needs_scanner
def test_hostile_texts_are_kept_byte_for_byte(tmp_path):
    texts = ["[red]x[/]", "\x1b]0;pwn\x07", "\u202eevil", "\x00nul", "\x7f", "a" * 5000, "\\", '"']
    narrs = [{"timestamp_sec": float(i), "narration_text": t, "annotation_uid": t} for i, t in enumerate(texts)]
    for ensure_ascii in (True, False):
        data = json.dumps({"v": {"narration_pass_1": {"narrations": narrs}}}, ensure_ascii=ensure_ascii).encode()
        uids, p1, _, _ = scanner(data)
        lens = np.frombuffer(p1[4], dtype=np.int32)
        assert p1[3] == "".join(texts).encode() and lens.tolist() == [len(t.encode()) for t in texts]
        _same(_tree_of(tmp_path / str(ensure_ascii), data))


@needs_scanner
def test_damaged_chunks_read_as_the_streaming_reader_reads_them(tmp_path):
    """Bytes replaced, dropped or doubled anywhere: declined, or read exactly (with the error
    lines, warnings and index the streaming reader gives)."""
    rng = random.Random(15)
    data = _chunk()
    alphabet = b'"\\{}[],:0123456789-+.eE nultrfasx\t\n\x00\x1f\x7f\x80\xc3\xe2\xed\xff'
    accepted = 0
    for case in range(60):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(b))
            kind = rng.random()
            if kind < 0.5:
                b[at] = rng.choice(alphabet)
            elif kind < 0.75:
                del b[at]
            else:
                b.insert(at, b[at])
        if scanner(bytes(b)) is None:
            continue
        accepted += 1
        _same(_tree_of(tmp_path / str(case), bytes(b)), FAST)
    assert accepted  # some damage keeps the chunk valid JSON of the schema (a digit, a letter)


@needs_scanner
def test_gather_checks_its_rows_and_offsets():
    blob, offsets = b"aabbbc", np.array([0, 2, 5, 6], dtype=np.int64)
    assert scanner is not None
    from engine.ego4d import _scan

    assert _scan.gather(blob, offsets, np.array([2, 0, 1], dtype=np.int64)) == b"caabbb"
    for rows in ([3], [-1]):
        with pytest.raises(ValueError):
            _scan.gather(blob, offsets, np.array(rows, dtype=np.int64))
    with pytest.raises(ValueError):
        _scan.gather(blob, np.array([0, 9], dtype=np.int64), np.array([0], dtype=np.int64))


def test_the_scanner_is_built_where_a_compiler_is():
    """The install builds it (pyproject.toml, optional there): where this machine has a C
    compiler and Python's headers, a missing scanner is an install that went wrong, and the
    cold open would be about 3x slower without a word."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    if shutil.which(cc) is None or not headers.exists():
        pytest.skip(f"no C compiler ({cc}) or no Python.h here: the msgspec reader does the work")
    assert scanner is not None, "engine/ego4d/_scan.c was not built: run `python3 dev.py setup` again"


@needs_scanner
def test_a_file_it_cannot_read_is_not_offered_to_it_chunk_after_chunk(tmp_path, monkeypatch):
    """Every video with a key twice (which it declines): after a few declined chunks, msgspec
    alone reads the rest, and the result is still the streaming reader's."""
    import dataclasses

    from engine.ego4d import fast

    offered: list[bool] = []
    real = fast.scan_pieces

    def spy(*a, **kw):
        out = real(*a, **kw)
        offered.append(out is not None)
        return out

    monkeypatch.setattr(fast, "scan_pieces", spy)
    video = '{"status": "a", "status": "complete", "narration_pass_1": {"narrations": [{"timestamp_sec": 1}]}}'
    body = ", ".join(f'"v{i}": {video}' for i in range(40))
    root = _tree_of(tmp_path, ("{" + body + "}").encode())
    _same(root, dataclasses.replace(FAST, chunk=256))
    assert offered and not any(offered)
    assert len(offered) <= 2 * fast._SCAN_TRIES  # _same reads it twice (check, then load_index)


def test_a_cut_between_videos_keeps_what_is_not_json_whitespace(tmp_path):
    """\\x0b and \\x0c between two videos are not JSON: the chunk cut (a bytes regex's \\s took
    them for whitespace and erased them) leaves them for the decoder to refuse (helper's find)."""
    import dataclasses

    videos = [f'"v{i}":{{"narration_pass_1":{{"narrations":[{{"timestamp_sec":{i}}}]}}}}' for i in range(12)]
    body = ",".join(videos[:6]) + "\x0c,\x0b" + ",".join(videos[6:])
    root = _tree_of(tmp_path, ("{" + body + "}").encode())
    for chunk in (64, 256, 1 << 16):
        _same(root, dataclasses.replace(FAST, chunk=chunk))


def test_surrogates_written_as_raw_bytes_are_not_utf8(tmp_path):
    """The slower msgspec path fell back on json.loads of bytes, which lets surrogates encoded
    as bytes through: the streaming reader's not_utf8 error now, as it names it (helper's find)."""
    for raw in (b"\xed\xa0\x80", b"\xed\xa0\xbd\xed\xb8\x80"):
        data = b'{"v": {"narration_pass_1": {"narrations": [{"timestamp_sec": 1, "narration_text": "' + raw + b'"}]}}}'
        _same(_tree_of(tmp_path / raw.hex(), data))


@needs_scanner
def test_gather_reads_unaligned_buffers():
    from engine.ego4d import _scan

    offsets = memoryview(b"\0" + np.array([0, 2, 5, 6], dtype=np.int64).tobytes())[1:]
    rows = memoryview(b"\0\0\0" + np.array([2, 0], dtype=np.int64).tobytes())[3:]
    assert _scan.gather(b"aabbbc", offsets, rows) == b"caa"
