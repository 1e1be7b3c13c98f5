"""What the Train screen shows of a run, built from the rows that `RunTail` hands over.

Kept apart from the screen so it can be tested without a terminal: a `RunView` accumulates a
run's rows (training rows and evaluation rows), keeps the smoothed loss up to date as rows
arrive, and derives step/s and the ETA. The compare figures (best of each run and the
difference to a baseline) are here too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EVAL_KEYS = ("R1@0.3", "R1@0.5", "R5@0.3", "R5@0.5", "mIoU")
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
DEFAULT_SMOOTHING = 0.8


def ema(
    values: list[float], weight: float, state: tuple[float, int] = (0.0, 0)
) -> tuple[list[float], tuple[float, int]]:
    """Debiased exponential moving average (TensorBoard's smoothing) of `values`, continuing
    from `state` (running value, count) so new rows cost only their own number."""
    acc, n = state
    out = []
    for v in values:
        n += 1
        acc = acc * weight + (1.0 - weight) * v
        out.append(acc / (1.0 - weight**n) if weight > 0 else v)
    return out, (acc, n)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h >= 48:
        return f"{h // 24}d{h % 24:02d}h"
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def short_id(run_id: str) -> str:
    """`20261128-101500-baseline-ab12` -> `11-28 10:15 ab12` (the stage has its own column)."""
    parts = run_id.split("-")
    if len(parts) >= 4 and len(parts[0]) == 8 and len(parts[1]) == 6 and parts[0].isdigit():
        d, t = parts[0], parts[1]
        return f"{d[4:6]}-{d[6:8]} {t[0:2]}:{t[2:4]} {parts[-1]}"
    return run_id


def progress_text(summary: dict) -> str:
    step, total = summary.get("step"), summary.get("total_steps")
    if isinstance(total, int) and total > 0 and isinstance(step, int):
        return f"{100 * min(step, total) / total:3.0f}% e{summary.get('epoch') or 0}/{summary.get('epochs') or '?'}"
    return "—"


@dataclass
class RunView:
    """The rows of one run as the screen has seen them so far."""

    run_id: str
    smoothing: float = DEFAULT_SMOOTHING
    steps: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    last_train: dict | None = None
    status: dict = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    gone: bool = False
    rows_seen: int = 0
    updated_at: float = 0.0
    _ema: tuple[float, int] = (0.0, 0)

    def reset(self) -> None:
        self.steps, self.losses, self.smoothed, self.lrs, self.evals = [], [], [], [], []
        self.last_train = None
        self.rows_seen = 0
        self._ema = (0.0, 0)

    def add_rows(self, rows: list[dict]) -> bool:
        """Take new rows; True when anything a panel shows changed."""
        new_losses = []
        changed = False
        for row in rows:
            self.rows_seen += 1
            if "split" in row:
                if row.get("split") == "val" and any(k in row for k in EVAL_KEYS):
                    self.evals.append(row)
                    changed = True
                continue
            loss = row.get("loss")
            step = row.get("step")
            if isinstance(loss, (int, float)) and isinstance(step, (int, float)):
                self.steps.append(float(step))
                self.losses.append(float(loss))
                new_losses.append(float(loss))
                lr = row.get("lr")
                self.lrs.append(float(lr) if isinstance(lr, (int, float)) else float("nan"))
                self.last_train = row
                changed = True
        if new_losses:
            out, self._ema = ema(new_losses, self.smoothing, self._ema)
            self.smoothed.extend(out)
        if changed:
            self.updated_at = time.time()
        return changed

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        self.smoothed, self._ema = ema(self.losses, weight)

    def best_eval(self) -> dict | None:
        best = None
        for row in self.evals:
            v = row.get("R1@0.3")
            if isinstance(v, (int, float)) and (best is None or v > best["R1@0.3"]):
                best = row
        return best

    def steps_per_s(self, batch_size: int | None, nproc: int = 1) -> float | None:
        """From the last training row's samples/s (the loop measures it over its log window)."""
        row = self.last_train
        if not row or not batch_size:
            return None
        sps = row.get("samples_per_s")
        if not isinstance(sps, (int, float)) or sps <= 0:
            return None
        return float(sps) / (batch_size * max(1, nproc))

    def eta_s(self, batch_size: int | None, nproc: int = 1) -> float | None:
        rate = self.steps_per_s(batch_size, nproc)
        total = self.status.get("total_steps")
        step = self.status.get("step")
        step = step if isinstance(step, int) else None
        if self.last_train and isinstance(self.last_train.get("step"), (int, float)):
            step = max(step or 0, int(self.last_train["step"]))
        if not rate or not isinstance(total, int) or not isinstance(step, int):
            return None
        return max(0, total - step) / rate


def best_figures(rows: list[dict]) -> dict | None:
    """The val evaluation row with the highest R1@0.3 (the earliest wins a tie)."""
    best = None
    for row in rows:
        if row.get("split") != "val":
            continue
        v = row.get("R1@0.3")
        if isinstance(v, (int, float)) and (best is None or v > best["R1@0.3"]):
            best = row
    return best


def pick_baseline(picked: list[dict]) -> dict | None:
    """The reference of a comparison: the first picked baseline run, else the first picked run."""
    for p in picked:
        if p.get("stage") == "baseline":
            return p
    return picked[0] if picked else None


def compare_rows(picked: list[dict]) -> list[tuple[dict, dict | None, dict | None]]:
    """(run, its best figures, difference to the baseline's best) for each picked run.

    Each `run` dict has "id", "stage" and "rows" (its metrics rows)."""
    base = pick_baseline(picked)
    base_best = best_figures(base["rows"]) if base else None
    out = []
    for p in picked:
        best = best_figures(p["rows"])
        diff = None
        if best is not None and base_best is not None and p is not base:
            diff = {
                k: float(best[k]) - float(base_best[k])
                for k in EVAL_KEYS
                if isinstance(best.get(k), (int, float)) and isinstance(base_best.get(k), (int, float))
            }
        out.append((p, best, diff))
    return out
