"""The Train screen's Compare tab: picked runs' loss and val R1@0.3 overlaid, and their best
figures with the difference to a baseline (docs/ARCHITECTURE.md, "Runs").

Renders the rows the screen's compare worker read; reads no file itself.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import SelectionList, Static, TabPane

from engine.textsafe import one_line
from nlq_tui.widgets.plot import LinePlot, Series
from nlq_tui.widgets.train_view import EVAL_KEYS, compare_rows, ema, pick_baseline, short_id

COMPARE_COLORS = ("cyan", "magenta", "yellow", "green", "red", "bright_blue", "white")
NO_PICKS = "pick runs on the left (or p on the Runs tab)"


def _is_num(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class ComparePane(TabPane):
    """A pick list of runs on the left; the overlaid plots and the figures on the right."""

    def __init__(self) -> None:
        super().__init__("Compare", id="compare-pane")
        self.pick: SelectionList[str] = SelectionList[str](id="cmp-pick")
        self.loss = LinePlot(id="cmp-loss", empty=NO_PICKS, x_label="step")
        self.r1 = LinePlot(id="cmp-r1", empty="no evaluations yet", y_min=0.0, x_label="step")
        self.table = Static("", id="cmp-table")
        self._ids: tuple = ()

    def compose(self) -> ComposeResult:
        with Horizontal(id="cmp-body"):
            yield self.pick
            with Vertical(id="cmp-right"):
                yield Static(Text.assemble(("loss", "bold"), " ", ("(smoothed)", "dim")), classes="plot-title")
                yield self.loss
                yield Static(Text("val R1@0.3", style="bold"), classes="plot-title")
                yield self.r1
                yield self.table

    def set_runs(self, summaries: list[dict], picked: list[str]) -> bool:
        """The pick list's runs (newest first); False when the listed ids did not change."""
        ids = tuple(s["id"] for s in summaries)
        if ids == self._ids:
            return False
        self._ids = ids
        self.pick.clear_options()
        self.pick.add_options(
            # a Text prompt: a str one would be parsed as markup
            [
                (Text(one_line(f"{short_id(s['id'])[6:]} {s['stage']}", 60)), s["id"], s["id"] in picked)
                for s in summaries
            ]
        )
        return True

    def toggle(self, run_id: str) -> None:
        try:
            self.pick.toggle(run_id)
        except Exception:  # a run that left the list between the key and now
            return

    def show(self, picked: list[dict], smoothing: float) -> None:
        """`picked`: {"id", "stage", "rows"} per run, oldest pick first."""
        loss_series, r1_series = [], []
        for n, p in enumerate(picked):
            color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
            train = [r for r in p["rows"] if "split" not in r and _is_num(r.get("loss")) and _is_num(r.get("step"))]
            evals = [
                r for r in p["rows"] if r.get("split") == "val" and _is_num(r.get("R1@0.3")) and _is_num(r.get("step"))
            ]
            label = one_line(f"{short_id(p['id'])[-4:]} {p['stage']}", 40)
            smoothed = ema([r["loss"] for r in train], smoothing)[0]
            loss_series.append(Series(label, [r["step"] for r in train], smoothed, style=color))
            r1_series.append(Series(label, [r["step"] for r in evals], [r["R1@0.3"] for r in evals], style=color))
        self.loss.set_series(loss_series, empty=NO_PICKS)
        self.r1.set_series(r1_series, empty="no evaluations yet")
        if not picked:
            self.table.update("")
            return
        self.table.update(figures_table(picked))


def figures_table(picked: list[dict]) -> Group:
    """One column per run, one row per figure (three runs fit the 80-column layout), each
    figure with its difference to the reference run's."""
    table = Table(box=None, pad_edge=False, padding=(0, 0, 0, 2), header_style="bold", expand=False)
    table.add_column("best val", no_wrap=True)
    ref = pick_baseline(picked)
    compared = compare_rows(picked)
    for n, (p, _best, _diff) in enumerate(compared):
        color = COMPARE_COLORS[n % len(COMPARE_COLORS)]
        head = Text(one_line(short_id(p["id"])[6:], 40), style=f"bold {color}")
        head.append("\n" + one_line(p["stage"], 20) + (" (ref)" if p is ref and len(compared) > 1 else ""), style="dim")
        table.add_column(head, justify="right", no_wrap=True)
    for key in EVAL_KEYS:
        cells = []
        for _p, best, diff in compared:
            if best is None or not _is_num(best.get(key)):
                cells.append(Text("—", style="dim"))
                continue
            t = Text(f"{best[key]:.2f}")
            if diff is not None and key in diff:
                d = diff[key]
                t.append(f" {d:+.2f}", style="green" if d > 0 else "red" if d < 0 else "dim")
            cells.append(t)
        table.add_row(key, *cells)
    assert ref is not None
    note = Text(
        f"differences against {one_line(short_id(ref['id'])[6:], 40)} ({one_line(ref['stage'], 20)})", style="dim"
    )
    return Group(table, note)
