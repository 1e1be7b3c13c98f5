"""The parallel narration reader: one forked worker per idle CPU, the same result as the serial one.

A big file (>= ReadPolicy.parallel_min_bytes) is cut into a few shares per worker, each a
contiguous run of videos (read with the msgspec reader, engine.ego4d.fast, or the streaming
one); a worker returns flat arrays plus its own text files, and the parent appends the text of
each share, in file order, as soon as that share and the ones before it are done, so that what
is left when the last worker finishes is one share's text and a few concatenations. More shares
than workers: a worker that got a cheaper share (or a core the parent was not using) takes the
next one, so the workers finish together. The result and any error line are exactly the serial
reader's. The workers start before the other files are read, which the parent does meanwhile.
This buys wall time only where cores are free, so the number of workers follows the CPUs idle
at the moment (`workers`); on a busy machine the serial reader runs (docs/ARCHITECTURE.md,
"Scale")."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import numpy as np

from engine.ego4d.layout import NARRATION_JSON
from engine.ego4d.narration import BlobFile, blob_files, videos
from engine.ego4d.problems import Problems, disp
from engine.ego4d.stream import DEFAULT_POLICY, NOT_VIDEO_KEYS, VIDEO_BOUNDARY, Progress, ReadPolicy, Stream, ws_end

# Shares per worker: enough that the workers finish within a small share of each other (one
# share each would leave a core idle for as long as the slowest share takes longer), few
# enough that the per-share cost (a task, its arrays sent back, four text files) stays small.
SHARES_PER_WORKER = 4


def workers() -> int:
    """Worker processes worth starting: one per CPU that is idle now (half idle counts),
    counting our own.

    msgspec workers cost about the serial reader's CPU in all (a fork, their arrays sent back,
    their text files appended), stdlib ones somewhat more; a worker that shares its core with
    another busy process finishes no sooner than the serial reader would, so on a busy shared
    machine the serial reader runs and leaves the others their cores.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, int(idle_cpus(n) + 0.5), 8))


def idle_cpus(n: int, sample_s: float = 0.04, samples: int = 5) -> float:
    """CPUs idle right now, not counting this process: `n` less the other processes' runnable
    tasks, from the kernel's run queue (/proc/loadavg's "running/total", less this process's
    own threads in state R), the median of `samples` reads over `sample_s`.

    Not the 1-minute load average: it lags, so right after a busy minute (the previous step
    of a script, a benchmark's baseline) it reports cores busy that are idle again. Not the
    idle time in /proc/stat either: a process's own CPU time just before the sample is
    accounted late, so a process sampling right after its imports saw one of two idle cores
    as busy about every other time, and read a big file serially for no reason.
    """

    def running() -> int:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])

    def own_running() -> int:  # this thread, and any other of ours on a CPU (numpy's BLAS
        n_own = 0  # threads spin a while after their start)
        for task in os.scandir("/proc/self/task"):
            try:
                with open(f"{task.path}/stat") as f:
                    n_own += f.read().rpartition(")")[2].split()[0] == "R"
            except OSError:
                continue
        return max(n_own, 1)

    try:
        seen = []
        for i in range(samples):
            if i:
                time.sleep(sample_s / max(samples - 1, 1))
            seen.append(running() - own_running())
        others = sorted(seen)[len(seen) // 2]
        return float(max(0, min(n, n - others)))
    except (OSError, ValueError, IndexError):
        try:
            return n - os.getloadavg()[0] + 1  # + 1: this process is part of the load
        except OSError:
            return float(n)


def fork_safe() -> bool:
    import threading

    return threading.active_count() == 1


def chunk_starts(path: Path, size: int, n: int) -> list[int]:
    """Up to n - 1 byte positions, roughly size/n apart, each likely the key of a top-level member.

    Likely, not certain: the pattern can occur one level down. Workers check it (see
    read_parallel), so a wrong guess costs time, never correctness.
    """
    starts: list[int] = []
    with open(path, "rb") as f:
        for k in range(1, n):
            at = max(size * k // n, starts[-1] + 1 if starts else 0)
            f.seek(at)
            window = f.read(1 << 20)
            for m in VIDEO_BOUNDARY.finditer(window):
                if m.group(1) not in NOT_VIDEO_KEYS:
                    starts.append(at + m.start(1))
                    break
    return sorted(set(starts))


_progress_counter = None  # a worker's shared byte counter (set in the pool's initializer)


def _init_worker(counter) -> None:
    global _progress_counter
    _progress_counter = counter


def _decode_chunk(path: str, root: str, start: int, stop: int | None, workdir: str, k: int, policy: ReadPolicy) -> dict:
    """A worker: the videos whose keys lie in [start, stop), decoded as the serial reader does.

    Text goes to `<workdir>/p<pass>.<col>.<k>.bin`; the result is a few flat arrays (pickled
    to the parent), not Python objects per narration. Any error makes the result
    {"error": ...}: the parent then redoes the file serially, which names the problem exactly.
    """
    counted = 0
    limit = (stop if stop is not None else os.path.getsize(path)) - start

    def progress(_label: str, done: int, _total: int) -> None:
        nonlocal counted
        done = min(done, limit)
        if _progress_counter is not None and done > counted:
            with _progress_counter.get_lock():
                _progress_counter.value += done - counted
            counted = done

    gc.disable()
    try:
        files = blob_files(Path(workdir), f".{k}")
        try:
            pieces, stopped_at, problems = _span_pieces(path, root, start, stop, policy, progress, files)
        finally:
            for f in files.values():
                f.f.close()
    except Exception as exc:  # DataError, or anything a chunk that starts mid-string may raise
        return {"error": f"{type(exc).__name__}: {exc}"}
    progress("", limit, 0)
    out: dict = {
        "start": start,
        "stopped_at": stopped_at,
        "uids": [u for u, _ in pieces],
        "warn": problems._warn,
        "sizes": {key: f.size for key, f in files.items()},
    }
    for pn in (1, 2):
        out[pn] = _flat(pn, pieces)
    return out


def _span_pieces(path: str, root: str, start: int, stop: int | None, policy: ReadPolicy, progress, files: dict):
    """(pieces, where the span stopped, problems) of one worker's span: by the msgspec reader
    where it can (it reads exactly [start, stop) or gives up), else by the streaming reader."""
    from engine.ego4d import fast

    rel = NARRATION_JSON
    if policy.decoder != "stdlib" and fast.available():
        problems = Problems(Path(root), strict=True)
        pieces = fast.read_fast(Path(path), Path(root), problems, progress, files, policy, (start, stop))
        if pieces is not None:
            return pieces, stop, problems
        for f in files.values():
            f.reset()
    problems = Problems(Path(root), strict=True)
    stream = Stream(Path(path), progress, "narration.json", start, policy)
    stream.quick_errors = True
    try:
        pieces = list(videos(stream, disp(Path(root), rel), rel, problems, files, stop))
    finally:
        stream.close()
    return pieces, stream.stopped_at, problems


def _flat(pn: int, pieces: list) -> dict:
    """One pass of a worker's pieces as a few flat arrays (cheap to send to the parent)."""
    mine = [got[pn] for _, got in pieces if pn in got]
    out = {
        "has": np.array([pn in got for _, got in pieces], dtype=bool),
        "n": np.array([len(x[0]) for x in mine], dtype=np.int64),
        "time": np.concatenate([x[0] for x in mine]) if mine else np.zeros(0),
        "text_start": np.array([x[1] for x in mine], dtype=np.int64),
        "text_len": np.concatenate([x[2] for x in mine]) if mine else np.zeros(0, dtype=np.int32),
        "uid_start": np.array([x[3] for x in mine], dtype=np.int64),
        "uid_len": np.concatenate([x[4] for x in mine]) if mine else np.zeros(0, dtype=np.int32),
    }
    if all(len(x) > 5 for x in mine):  # FLAG_* bits and curly quotes counted as it read
        out["flags"] = np.concatenate([x[5] for x in mine]) if mine else np.zeros(0, dtype=np.uint8)
        out["curly"] = np.array([x[6] for x in mine], dtype=np.int64)
    return out


def _cuts(path: Path, policy: ReadPolicy) -> tuple[list[int], int] | None:
    """(where each share starts, how many worker processes), or None when the file is better
    read serially."""
    import multiprocessing

    try:
        size = path.stat().st_size
    except OSError:
        return None
    min_share = max(policy.parallel_min_chunk, 1)
    n = min(policy.workers or workers(), size // min_share)
    fork_ok = policy.fork_ok if policy.fork_ok is not None else fork_safe()
    # fork: workers start in milliseconds and inherit the loaded modules. Forking a process
    # that runs other threads (the TUI loads in a worker thread) is unsafe: read serially.
    if size < policy.parallel_min_bytes or n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if not fork_ok:
        return None
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    first = ws_end(head.decode("latin-1"), 0)
    if head[first : first + 1] != b"{":
        return None  # not an object (or a byte-order mark): the serial reader says so
    shares = max(n, min(n * SHARES_PER_WORKER, size // min_share))
    cuts = [first + 1] + [c for c in chunk_starts(path, size, shares) if c > first + 1]
    return (cuts, min(n, len(cuts))) if len(cuts) >= 2 else None


class Running:
    """Workers started on a file's shares (`start`); `read_parallel` waits for them.

    cuts: where each share starts; procs: the worker processes that read them."""

    def __init__(self, path: Path, root: Path, workdir: Path, cuts: list[int], procs: int, policy: ReadPolicy) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.path, self.workdir, self.cuts, self.procs = path, workdir, cuts, procs
        self.size = path.stat().st_size
        ctx = multiprocessing.get_context("fork")
        self.counter = ctx.Value("q", cuts[0])  # the bytes before chunk 0 ("{") count as read
        self.pool = ProcessPoolExecutor(
            max_workers=procs, mp_context=ctx, initializer=_init_worker, initargs=(self.counter,)
        )
        self.futures = {}
        for k, cut in enumerate(cuts):  # in file order: the pool hands them out in that order
            stop = cuts[k + 1] if k + 1 < len(cuts) else None
            args = (str(path), str(root), cut, stop, str(workdir), k, policy)
            self.futures[self.pool.submit(_decode_chunk, *args)] = k

    def results(self, progress: Progress | None, files: dict) -> tuple[list[dict], list[dict]] | None:
        """Every share's result and where its text starts in `files` (each share's text is
        appended there as soon as it and the shares before it are done); None as soon as any
        share failed or did not end where the next one starts, whichever share it is (`files`
        then holds a part: the caller resets them)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        n = len(self.cuts)
        results: list[dict | None] = [None] * n
        bases: list[dict] = []
        pending = set(self.futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                k = self.futures[fut]
                try:
                    r = fut.result()
                except Exception:  # a worker that died (killed, out of memory)
                    return None
                if "error" in r or r["stopped_at"] != (self.cuts[k + 1] if k + 1 < n else None):
                    return None  # the serial reader names the problem (or reads what a wrong cut split)
                results[k] = r
            while len(bases) < n and (ready := results[len(bases)]) is not None:
                k = len(bases)
                bases.append({key: f.size for key, f in files.items()})
                for key, f in files.items():
                    _append_file(f, self.workdir / f"p{key[0]}.{key[1]}.{k}.bin", ready["sizes"][key])
            if progress is not None:
                progress("narration.json", min(self.counter.value, self.size), self.size)
        return results, bases  # type: ignore[return-value]  # every share is in

    def close(self) -> None:
        """Stop the workers (at once, when the caller gave up on them) and drop their files."""
        for proc in list((getattr(self.pool, "_processes", None) or {}).values()):  # None once shut down
            if proc.is_alive():
                proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for k in range(len(self.cuts)):
            for pn in (1, 2):
                for col in ("text", "uid"):
                    try:
                        os.unlink(self.workdir / f"p{pn}.{col}.{k}.bin")
                    except OSError:
                        pass


def start(path: Path, root: Path, workdir: Path, policy: ReadPolicy = DEFAULT_POLICY) -> Running | None:
    """Workers started on narration.json's shares, or None when it is better read serially
    (or cannot be read: the caller then reports why)."""
    try:
        plan = _cuts(path, policy)
        return None if plan is None else Running(path, root, workdir, *plan, policy)
    except Exception:  # no processes (limits, a sandbox), an unreadable file
        return None


def read_parallel(running: Running, problems: Problems, progress: Progress | None, files: dict) -> list | Flat | None:
    """The (uid, pieces) of every video as `videos` gives them, decoded by the worker
    processes `running`, with the text appended to `files`; None when the file is read
    serially instead.

    The file is cut at guessed member boundaries (chunk_starts). Share 0 starts right after
    "{"; a worker decoding share i from a true boundary stops at the first key at or after
    share i+1's start, and reports where: when that is exactly the start of share i+1, that
    share began at a true boundary too. So all shares are checked in file order, and one
    mismatch, error or failure anywhere means the whole file is read serially (which reports
    the file's first problem with its line and column, exactly as before).
    """
    got = running.results(progress, files)
    if got is None:
        running.close()  # the other shares are of no use now: their cores go to the serial read
        return None
    results, bases = got
    for r in results:
        for code_file, (count, what, where) in r["warn"].items():
            problems.warn(code_file[0], code_file[1], what, where, count)
    uids = [u for r in results for u in r["uids"]]
    if len(set(uids)) == len(uids) and all("flags" in r[pn] for r in results for pn in (1, 2)):
        names = ("has", "n", "time", "text_len", "uid_len", "flags", "curly")
        return Flat(
            uids, {pn: {name: np.concatenate([r[pn][name] for r in results]) for name in names} for pn in (1, 2)}
        )
    return _join(results, bases)


class Flat:
    """The workers' result as whole-file arrays per pass (no uid twice, every share read by
    the columnar reader): `has` per video, then per video that has the pass its row count
    `n` and curly-quote rows `curly`, and per row `time`, `text_len`, `uid_len`, `flags`."""

    def __init__(self, uids: list[str], passes: dict[int, dict]) -> None:
        self.uids = uids
        self.passes = passes


def _join(results: list, bases: list[dict]) -> list[tuple[str, dict]]:
    """Per-video pieces of the shares' results; `bases`: where each share's text starts."""
    pieces: list[tuple[str, dict]] = []
    for k, r in enumerate(results):
        base = bases[k]
        per_pass = {}
        for pn in (1, 2):
            a = r[pn]
            ends = np.cumsum(a["n"])
            starts = ends - a["n"]
            spans = zip(
                starts.tolist(),
                ends.tolist(),
                (a["text_start"] + base[pn, "text"]).tolist(),
                (a["uid_start"] + base[pn, "uid"]).tolist(),
            )
            made: list[tuple]
            if "flags" in a:
                flags, curly = a["flags"], a["curly"].tolist()
                made = [
                    (a["time"][s:e], ts, a["text_len"][s:e], us, a["uid_len"][s:e], flags[s:e], curly[i])
                    for i, (s, e, ts, us) in enumerate(spans)
                ]
            else:
                made = [(a["time"][s:e], ts, a["text_len"][s:e], us, a["uid_len"][s:e]) for s, e, ts, us in spans]
            per_pass[pn] = iter(made)
        for uid, h1, h2 in zip(r["uids"], r[1]["has"].tolist(), r[2]["has"].tolist()):
            got = {}
            if h1:
                got[1] = next(per_pass[1])
            if h2:
                got[2] = next(per_pass[2])
            pieces.append((uid, got))
        results[k] = None
    return pieces


def _append_file(dst: BlobFile, src: Path, size: int) -> None:
    """Append a worker's blob file to `dst`, in the kernel where it can (no copy through Python);
    the first one is only renamed.

    copy_file_range refuses a descriptor opened for appending (EBADF), which `dst.f` is after
    a rename: the copy goes through a second descriptor of the file, at an explicit offset."""
    if dst.size == 0 and os.path.getsize(src) == size:
        dst.f.close()
        os.replace(src, dst.path)
        dst.f = open(dst.path, "ab", buffering=1 << 20)
        dst.size = size
        return
    dst.f.flush()
    with open(src, "rb") as f:
        left, at = size, dst.size
        out = os.open(dst.path, os.O_WRONLY)
        try:
            while left > 0:
                try:
                    n = os.copy_file_range(f.fileno(), out, left, offset_dst=at)
                except (AttributeError, OSError):  # no such call here (or not across these files)
                    data = memoryview(f.read(min(left, 1 << 24)))
                    n = len(data)
                    while data:
                        data = data[os.pwrite(out, data, at + n - len(data)) :]
                if n <= 0:
                    raise OSError(f"{src}: shorter than its worker said")
                left -= n
                at += n
        finally:
            os.close(out)
    dst.f.seek(0, os.SEEK_END)  # the column's own writes go after the copy, whatever its mode
    dst.size += size
