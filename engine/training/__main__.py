"""`python -m engine.training RUN_DIR [--resume]`: train the run that RUN_DIR/config.json describes.

Also the entry under `torchrun --nproc_per_node N -m engine.training RUN_DIR`: every rank trains
its share of each batch with DistributedDataParallel; rank 0 alone writes status, metrics,
checkpoints and predictions.

The process owns RUN_DIR/status.json while it lives: "running" with a heartbeat, then "done",
"stopped" (SIGTERM or SIGINT: last.pt is saved first) or "failed" (the error's one line in
status.json, the traceback in train.log).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.runs import Run, StatusWriter


def error_line(exc: BaseException) -> str:
    """One line for status.json: a UserError's own message, else the exception type and text."""
    if isinstance(exc, UserError):
        return str(exc)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def make_logger(run: Run, *, echo: bool, rank: int = 0) -> logging.Logger:
    """Log to train.log; when the process's own stderr is not train.log (a foreground run), echo there too."""
    log = logging.getLogger(f"nlq.train.{run.id}.{rank}")
    log.setLevel(logging.INFO if rank == 0 else logging.WARNING)  # one copy of each line under DDP
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    if os.environ.get("NLQ_RUN_DETACHED") == "1":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)  # stderr is train.log
    else:
        handler = logging.FileHandler(run.log_path, encoding="utf-8")
    handler.setFormatter(fmt)
    log.addHandler(handler)
    if echo and os.environ.get("NLQ_RUN_DETACHED") != "1":
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(err)
    return log


class StopFlag:
    """Set by SIGTERM / SIGINT; the loop checks it between steps, saves last.pt and ends `stopped`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self._old: dict[int, Any] = {}

    def install(self) -> StopFlag:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only; an in-thread run is stopped via .event
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user wants out now
        self.signal_name = signal.Signals(signum).name
        self.event.set()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def __call__(self) -> bool:
        return self.event.is_set()


def run_training(run: Run, *, resume: bool = False, echo: bool = False, stop: StopFlag | None = None) -> str:
    """Train `run` in this process; returns the final state. Never raises for a failed run:
    the failure is in status.json and train.log, and the state is "failed"."""
    from engine.training import loop

    dist = loop.DistInfo.from_env()
    is_writer = dist.rank == 0
    log = make_logger(run, echo=echo and is_writer, rank=dist.rank)
    keep = {}
    raw = run.raw_status() or {}
    if resume:
        keep = {k: raw[k] for k in ("started", "best") if k in raw}
    writer = StatusWriter(run, keep=keep) if is_writer else None
    own_stop = stop is None
    stop = stop or StopFlag().install()
    state = "failed"
    try:
        if writer:
            writer.start(resume=resume)
        trainer = loop.Trainer.from_run(run, dist=dist, log=log, status=writer)
        state = trainer.fit(resume=resume, should_stop=stop)
        if writer:
            writer.finish(state, best=trainer.best)
    except BaseException as exc:  # noqa: BLE001 - every failure must end in status.json
        log.error("run failed: %s\n%s", error_line(exc), traceback.format_exc().rstrip())
        if writer:
            try:
                writer.finish("failed", error=error_line(exc))
            except Exception:  # pragma: no cover - the disk is gone; the stale heartbeat tells
                pass
        if isinstance(exc, KeyboardInterrupt):
            raise
        state = "failed"
    finally:
        if own_stop:
            stop.restore()
        dist.shutdown()
        for h in list(log.handlers):
            log.removeHandler(h)
            h.close()
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.training", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the run folder (with config.json)")
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt")
    args = parser.parse_args(argv)
    run = Run(Path(args.run_dir).resolve())
    if not run.config_path.is_file():
        print(
            f"engine.training: error: {run.config_path}: no such file; create the run with `nlq-tui train`",
            file=sys.stderr,
        )
        return 2
    state = run_training(run, resume=args.resume)
    return {"done": 0, "stopped": 0}.get(state, 1)


if __name__ == "__main__":
    sys.exit(main())
