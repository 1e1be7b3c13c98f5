"""`python -m engine.experiment WS ID`: run a planned experiment to the end, then write its report.

The detached form of `nlq-tui experiment`; it logs to WS/experiments/<id>/experiment.log and
keeps its state in state.json (runner pid and heartbeat), so a second runner is refused.
"""

from __future__ import annotations

import signal
import sys
import threading
import time


def main(argv: list[str] | None = None) -> int:
    from engine.errors import UserError
    from engine.experiment.plan import experiment_dir, load_plan
    from engine.experiment.report import write_report
    from engine.experiment.runner import Runner
    from engine.workspace import Workspace

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m engine.experiment WS ID", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", flush=True)

    try:
        ws = Workspace(args[0], create=False)
        plan = load_plan(experiment_dir(ws, args[1]))
        if plan is None:
            raise UserError(f"{experiment_dir(ws, args[1])}: no plan.json; start it with `nlq-tui experiment`")
        state = Runner(ws, plan, on_event=say).run(should_stop=stop.is_set)
        out = write_report(ws, plan)
        say(f"experiment {plan.id}: {state}; report {out['report']}")
    except UserError as exc:
        say(f"error: {exc}")
        return 2
    return 0 if state in ("done", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
