"""A cold open from a process that runs threads: the index is built in a helper process.

The parallel reader forks workers only from a process that runs one thread (forking one that
runs others is unsafe, engine.ego4d.parallel), so the TUI, which loads in a worker thread,
would read a big narration.json serially: 5.6 s at Ego4D scale against 3.4-4.0 s for the
same open from the command line. Here the build runs instead in a fresh, single-threaded
`python -P -m engine.ego4d.child_build`, which forks its readers and writes the cache into a
data folder this process made for it; this process then opens that cache (a warm open, 0.1 s).
The warnings are the cold build's: the cache keeps them, as for any warm open.

Only a caller that names its secret variables opts in (`load_index(secret_names=...)`): the
helper gets this process's environment without any LLM key (engine.proc.child_env), so a
caller that does not know which variable holds one must not start it.

Anything that goes wrong in the helper (a problem in the data, a full disk, a killed helper,
a Python that cannot start) costs only time: `build_in_child` returns False, its data folder
is removed, every process it started is killed (it runs in a session of its own, so its
orphaned readers go too), and the caller builds the index itself, which reports the problem
exactly as before. Its stdout carries only progress lines (`stage<TAB>done<TAB>total`), each
checked and bounded; its stderr goes nowhere (the TUI owns the terminal).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.stream import DEFAULT_POLICY, Progress, ReadPolicy

_MAX_LINE = 512  # a progress line is ~40 bytes; anything longer is not one of ours
_STAGES = {"ego4d.json", "narration.json", "narration arrays", "writing cache"}  # the ones passed on
_POLL_S = 0.2  # how often a quiet helper is checked for having ended


def worth_it(root: Path, policy: ReadPolicy = DEFAULT_POLICY) -> bool:
    """Whether a helper process would read narration.json in parallel where this one cannot."""
    from engine.ego4d import parallel

    if policy.fork_ok is not None or policy.decoder == "msgspec" or parallel.fork_safe():
        return False  # the caller decided, or this process forks its own readers
    if not sys.executable:
        return False  # an embedded Python: no interpreter to start
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
    """Build the index of `root` and its cache in a helper process; True when it did (the
    caller then opens the cache, and builds the index itself if none is there after all),
    False when the caller should build it itself."""
    import shutil

    from engine import cache
    from engine.proc import child_env

    data = cache.new_data_dir(root)
    if data is None:
        return False  # no cache folder is writable: the helper could not hand its index over
    ok = False
    try:
        ok = _run(root, features, progress, policy, data, child_env(secret_names=secret_names))
    finally:
        if not ok:
            shutil.rmtree(data, ignore_errors=True)
    return ok


def _run(root: Path, features: str, progress: Progress | None, policy: ReadPolicy, data: Path, env: dict) -> bool:
    # -P: not the current folder first on sys.path (an `engine/` there must not run instead)
    cmd = [sys.executable, "-P", "-m", "engine.ego4d.child_build", str(root), features, json.dumps(asdict(policy))]
    cmd.append(str(data))
    here = str(Path(__file__).resolve().parents[2])  # the folder that holds engine/
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            start_new_session=True,  # its readers are in its process group: killed with it
        )
    except (OSError, ValueError):
        return False
    try:
        _follow(proc, progress)
        return proc.wait() == 0
    finally:
        try:  # the helper and whatever it forked (readers orphaned by a killed helper)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _follow(proc: subprocess.Popen, progress: Progress | None) -> None:
    """Pass the helper's progress lines on until it ends. Not until its stdout closes: the
    readers of a killed helper may hold that pipe open."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    skipping = False  # inside a line too long to be ours: dropped up to its newline
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            if not sel.select(_POLL_S):
                if proc.poll() is not None:
                    return
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not skipping:
                    got = _progress_line(line + b"\n")
                    if got is not None and progress is not None:
                        progress(*got)
                skipping = False
            if len(pending) >= _MAX_LINE:
                pending, skipping = b"", True


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
    """The helper: build the index into the data folder it was given and make it the cache; 0
    when it built one, else 1 (the caller then builds it itself and names any problem). The
    caller opens the cache whatever it finds there: a cache that could not be saved, or that
    another open replaced, is simply missing or someone else's good one."""
    from engine.ego4d import load
    from engine.ego4d.problems import Problems
    from engine.errors import DataError

    try:
        root, features, policy, data = Path(argv[0]), argv[1], ReadPolicy(**json.loads(argv[2])), Path(argv[3])
    except (IndexError, TypeError, ValueError):
        return 1

    def progress(stage: str, done: int, total: int) -> None:
        if stage in _STAGES:
            sys.stdout.write(f"{stage}\t{int(done)}\t{int(total)}\n")
            sys.stdout.flush()

    problems = Problems(root, strict=True)
    try:
        load.check_root(root, problems)
        index = load.build_and_cache(root, features, problems, progress, True, policy, workdir=data)
    except (DataError, OSError):
        return 1
    return 0 if index is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
