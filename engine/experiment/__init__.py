"""Experiments: baseline vs pretrain -> finetune over seeds, ending in a report
(docs/ARCHITECTURE.md, "Experiments"). No torch here: the runs train in their own processes.

- `engine.experiment.plan`: `make_plan(ws, data_root=, pretrain=, seeds=, settings=, exp_id=)`
  -> `Plan` (jobs, arms, sources), `load_plan(folder)`, `list_experiments(ws)`, `experiment_dir`.
- `engine.experiment.runner`: `Runner(ws, plan, slots=, on_event=)` (`.step()`, `.run()`),
  `launch_runner(ws, plan)` (the runner as a detached process), `load_state(folder)`.
- `engine.experiment.report`: `experiment_table(ws, plan)` (live rows per job),
  `write_report(ws, plan)` (report.md, results.csv, plots).
- `start_experiment(...)`: plan it and run it in the background (the Train screen's action).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_experiment(
    ws,
    *,
    data_root: str | Path,
    pretrain: list[str],
    seeds: list[int],
    settings: dict[str, Any] | None = None,
    exp_id: str | None = None,
):
    """Plan the experiment (exporting variants) and start its runner detached; returns the Plan."""
    from engine.experiment.plan import make_plan
    from engine.experiment.runner import launch_runner

    plan = make_plan(ws, data_root=data_root, pretrain=pretrain, seeds=seeds, settings=settings, exp_id=exp_id)
    launch_runner(ws, plan)
    return plan
