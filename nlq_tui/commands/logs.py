"""`nlq-tui logs RUN [-f]`: a run's train.log, followed as it grows until the run ends.

RUN is anything `nlq-tui runs` accepts: the id, a unique part of it, "latest" or the folder.
Lines are printed as safe text (control characters visible): a log holds uids and narrations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from engine.textsafe import visible

POLL_S = 0.25
CHUNK = 1 << 20


def register(sub) -> None:
    p = sub.add_parser("logs", help="print a run's train.log; -f follows it until the run ends")
    p.add_argument("run", metavar="RUN", help='run id, a unique part of it, "latest", or the run folder')
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the run ends")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="start with the last N lines (default: all; -f: 20)")
    p.add_argument(
        "--workspace", metavar="WS", default=argparse.SUPPRESS, help="workspace folder (default ./nlq-workspace)"
    )
    p.set_defaults(func=run)


def _emit(lines: list[bytes], out) -> None:
    for raw in lines:
        out.write(visible(raw.decode("utf-8", "replace").rstrip("\r"), newlines=False) + "\n")
    out.flush()


def _print_start(path, n: int | None, out) -> tuple[int, int]:
    """Print the last `n` complete lines (all when None), reading at most what they need;
    returns (lines printed, offset just after them). A torn last line waits for its end."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0, 0
    with f:
        size = f.seek(0, os.SEEK_END)
        if n is not None:  # from the end, in growing steps, until n lines are in
            back = CHUNK
            while True:
                f.seek(max(0, size - back))
                data = f.read(min(back, size))
                if data.count(b"\n") > n or back >= size:
                    break
                back *= 4
            cut = data.rfind(b"\n") + 1
            lines = data[:cut].splitlines()
            if back < size:
                lines = lines[1:]  # the first one read may be a part
            shown = lines[-n:] if n > 0 else []
            _emit(shown, out)
            return len(shown), size - len(data) + cut
        f.seek(0)
        printed, read, tail = 0, 0, b""
        while chunk := f.read(CHUNK):  # all of it, a megabyte at a time
            read += len(chunk)
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            lines, tail = data[:cut].splitlines(), data[cut:]
            _emit(lines, out)
            printed += len(lines)
        return printed, read - len(tail)


def follow(run_obj, out=None, *, lines: int | None = None, keep_going: bool = True, poll: float = POLL_S) -> int:
    """Print the log from the last `lines` lines; with `keep_going`, then every new line until
    the run is no longer running. Returns the number of lines printed."""
    out = out or sys.stdout
    printed, pos = _print_start(run_obj.log_path, lines, out)
    tail = b""
    while keep_going:
        try:
            size = os.stat(run_obj.log_path).st_size
        except FileNotFoundError:
            size = 0
        if size < pos:  # replaced or cut short (a resume): read it again from the start
            pos, tail = 0, b""
        if size > pos:
            with open(run_obj.log_path, "rb") as f:
                f.seek(pos)
                data = f.read(CHUNK)
            pos += len(data)
            data = tail + data
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) >= CHUNK:  # a line of a megabyte or more: shown in pieces
                cut = len(data)
            tail = data[cut:]
            new = data[:cut].splitlines()
            _emit(new, out)
            printed += len(new)
            continue
        if run_obj.status()["state"] != "running":
            if tail:
                _emit([tail], out)
                printed += 1
            break
        time.sleep(poll)
    return printed


def run(args) -> int:
    from engine.runs import find_run

    r = find_run(getattr(args, "workspace", None), args.run)
    if not r.log_path.exists() and not args.follow:
        from engine.errors import WorkspaceError

        raise WorkspaceError(f"{r.log_path}: no log yet; the run has not written one")
    n = args.lines if args.lines is not None else (20 if args.follow else None)
    follow(r, lines=n, keep_going=args.follow)
    return 0
