"""An experiment's PNG plots, when matplotlib is installed (docs/ARCHITECTURE.md, "Experiments").

Per arm: the mean over seeds at each step, with a band from the lowest to the highest seed
(with three seeds a ±sd band says little more and hides an outlier seed). Without matplotlib
nothing is drawn and the report keeps its tables.
"""

from __future__ import annotations

from pathlib import Path

from engine.experiment.plan import Plan
from engine.workspace import Workspace


def have_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _band(series: list[list[tuple[int, float]]]) -> tuple[list[int], list[float], list[float], list[float]]:
    """steps, mean, low, high over the seeds that have a value at each step."""
    by_step: dict[int, list[float]] = {}
    for s in series:
        for step, v in s:
            by_step.setdefault(step, []).append(v)
    steps = sorted(by_step)
    mean = [sum(by_step[s]) / len(by_step[s]) for s in steps]
    return steps, mean, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps]


def write_plots(ws: Workspace, plan: Plan, folder: Path) -> list[Path]:
    """val_r1.png and train_loss.png in `folder`; [] without matplotlib or without data."""
    if not have_matplotlib():
        return []
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot
    import matplotlib.pyplot as plt

    from engine.experiment.report import CURVE_KEY, curves

    data = {arm: curves(ws, plan, arm) for arm in plan.arms()}
    written = []
    for name, which, ylabel in (("val_r1.png", 0, f"val {CURVE_KEY} (%)"), ("train_loss.png", 1, "training loss")):
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        drawn = False
        for arm, by_seed in data.items():
            series = [v[which] for v in by_seed.values() if v[which]]
            if not series:
                continue
            steps, mean, lo, hi = _band(series)
            style = "--" if arm.startswith("pretrain:") else "-"
            (line,) = ax.plot(
                steps, mean, style, label=f"{arm} ({len(series)} seeds)", marker="." if which == 0 else None
            )
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("step (each run's own)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{plan.id}: {ylabel}, mean and min-max band over seeds", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / name
        tmp = folder / f".{name}.tmp.png"
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(path)
        written.append(path)
    return written
