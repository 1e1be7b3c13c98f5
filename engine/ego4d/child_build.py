"""A cold open from a process that runs threads: the index is built in a helper process.

The parallel reader forks workers only from a process that runs one thread (forking one that
runs others is unsafe, engine.ego4d.parallel), so the TUI, which loads in a worker thread,
would read a big narration.json serially: 5.6 s at Ego4D scale against 3.4-4.0 s for the
same open from the command line. Here the build runs instead in a fresh, single-threaded
`python -m engine.ego4d.child_build`, which forks its readers and writes the cache; this
process then opens that cache (a warm open, 0.1 s). The warnings are the cold build's: the
cache keeps them, as for any warm open.

Anything that goes wrong in the helper (a problem in the data, no cache folder, a killed
helper, a Python that cannot start) costs only time: `build_in_child` returns False and the
caller builds the index itself, which reports the problem exactly as before.

The helper gets this process's environment without any LLM key (engine.proc.child_env); its
stdout carries only progress lines (`stage<TAB>done<TAB>total`), each checked and bounded;
its stderr is kept (bounded) and never shown on the terminal, which the TUI owns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy

_MAX_LINE = 512  # a progress line is ~40 bytes; anything longer is not one of ours
_STAGES = {"ego4d.json", "narration.json", "narration arrays", "writing cache"}  # the ones passed on


def worth_it(root: Path, policy: ReadPolicy = DEFAULT_POLICY) -> bool:
    """Whether a helper process would read narration.json in parallel where this one cannot."""
    from engine.ego4d import parallel

    if policy.fork_ok is not None or policy.decoder == "msgspec" or parallel.fork_safe():
        return False  # the caller decided, or this process forks its own readers
    try:
        size = (root / NARRATION_JSON).stat().st_size
    except OSError:
        return False
    if size < policy.parallel_min_bytes or size < 2 * max(policy.parallel_min_chunk, 1):
        return False
    return (policy.workers or parallel.workers()) >= 2


def build_in_child(
    root: Path,
    features: str,
    progress: Progress | None,
    policy: ReadPolicy = DEFAULT_POLICY,
    secret_names: Iterable[str] = (),
) -> bool:
    """Build the index of `root` and its cache in a helper process; True when it did (the cache
    is then there to open), False when the caller should build it itself."""
    from engine.proc import child_env

    env = child_env(secret_names=secret_names)
    here = str(Path(__file__).resolve().parents[2])  # the folder that holds engine/
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "engine.ego4d.child_build", str(root), features, json.dumps(asdict(policy))]
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True
        )
    except OSError:
        return False
    assert proc.stdout is not None
    with proc:
        for raw in iter(lambda: proc.stdout.readline(_MAX_LINE), b""):  # type: ignore[union-attr]
            got = _progress_line(raw)
            if got is not None and progress is not None:
                progress(*got)
        rc = proc.wait()
    return rc == 0


def _progress_line(raw: bytes) -> tuple[str, int, int] | None:
    """(stage, done, total) of one of the helper's lines, or None for anything else."""
    parts = raw.rstrip(b"\n").split(b"\t")
    if len(parts) != 3 or len(raw) >= _MAX_LINE:
        return None
    try:
        stage, done, total = parts[0].decode("ascii"), int(parts[1]), int(parts[2])
    except (UnicodeDecodeError, ValueError):
        return None
    if stage not in _STAGES or not (0 <= done <= total < 1 << 62):
        return None
    return stage, done, total


def main(argv: list[str]) -> int:
    """The helper: build and cache the index; 0 when the cache was written, else 1 (the caller
    then builds it itself and names any problem)."""
    from engine import cache
    from engine.ego4d import load
    from engine.errors import DataError

    root, features, policy_json = Path(argv[0]), argv[1], argv[2]
    try:
        policy = ReadPolicy(**json.loads(policy_json))
    except (TypeError, ValueError):
        return 1

    def progress(stage: str, done: int, total: int) -> None:
        if stage in _STAGES:
            sys.stdout.write(f"{stage}\t{int(done)}\t{int(total)}\n")
            sys.stdout.flush()

    try:
        load.load_index(root, features, progress=progress, policy=policy)
    except (DataError, OSError):
        return 1
    return 0 if (cache.cache_dir(root) / "index.json").is_file() else 1  # else no cache folder was writable


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
