"""The Train screen: launch a real detached run from the form, watch it, stop it; damaged run
folders never break the screen; compare; the plot and the smoothing behind the panels."""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import pytest
from textual.widgets import Input, Select, SelectionList
from training_fixtures import THREADS_ENV, make_glove, make_sample
from tui_helpers import make_app, static_text

from engine.runs import Run, create_run, wait_for_state
from engine.workspace import Workspace, atomic_write_json
from nlq_tui.widgets import VirtualTable
from nlq_tui.widgets.plot import LinePlot, Series, render_plot
from nlq_tui.widgets.train_view import RunView, compare_rows, ema


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("train-tui")
    root = make_sample(base / "root")
    return root, make_glove(root, base / "glove.txt")


async def wait_until(pilot, pred, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        await pilot.pause(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def table_rows(table: VirtualTable) -> list[tuple[str, ...]]:
    return [tuple(table.row_cells(i)) for i in range(table.n_rows)]


async def open_train(pilot):
    screen = pilot.app.screen
    await wait_until(pilot, lambda: screen.polls > 0, 20, "the first poll")
    return screen


# ------------------------------------------------------------------------------------------------
# a real run, launched from the screen


@pytest.mark.slow
async def test_a_run_launched_from_the_form_is_live_survives_a_reopen_stops_and_resumes(tiny, tmp_path, monkeypatch):
    root, glove = tiny
    for k, v in THREADS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("n")
        await pilot.pause()
        for field, value in (("#f-epochs", "500"), ("#f-batch", "8"), ("#f-dim", "16"), ("#f-text-path", str(glove))):
            screen.query_one(field, Input).value = value
        screen.query_one("#f-text", Select).value = "glove"
        screen.query_one("#f-device", Input).value = "cpu"  # auto, cpu, cuda or cuda:N
        await pilot.press("f5")
        run_id = await wait_until(pilot, lambda: screen.selected, 30, "the new run to be selected")
        run = Run(tmp_path / "ws" / "runs" / run_id)
        cfg = run.config()
        # what `nlq-tui train --detach --stage baseline ...` writes
        assert cfg["stage"] == "baseline" and cfg["nproc"] == 1
        assert cfg["train"]["epochs"] == 500 and cfg["train"]["batch_size"] == 8 and cfg["train"]["model"]["dim"] == 16
        assert cfg["train"]["text_encoder"] == "glove" and cfg["train"]["features"] == "egovlp_fp16"
        try:
            await wait_until(
                pilot,
                lambda: screen.view and screen.view.losses or _failed(run, screen),
                120,
                "loss rows on the screen",
            )
            assert screen.view.losses, _failed(run, screen)
            view = screen.view
            assert view.steps == [r["step"] for r in run.metrics() if "loss" in r][: len(view.steps)]
            plot = screen.query_one("#loss-plot", LinePlot)
            assert [s.name for s in plot.series] == ["raw", "smoothed 0.80"] and len(plot.series[0].xs) == len(
                view.losses
            )
            head = static_text(screen.query_one("#run-head"))
            assert "running" in head and "step/s" in head and "ETA" in head and "no GPU" in head
            rows = table_rows(screen.query_one("#runs", VirtualTable))
            assert rows[0][1:3] == ("baseline", "running")
        except BaseException:
            _kill(run)
            raise
    # the TUI is gone; the run is not. Opening it again shows the run live.
    assert run.status()["state"] == "running"
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            screen = await open_train(pilot)
            assert screen.selected == run.id
            await wait_until(pilot, lambda: screen.view.evals, 120, "an evaluation row on the screen")
            evals = static_text(screen.query_one("#evals"))
            assert "R1@.3" in evals and "★" in evals
            await wait_until(
                pilot, lambda: "eval step" in static_text(screen.query_one("#run-log")), 10, "the log tail"
            )
            # stop: a confirmation first; "n" keeps the run going
            screen.query_one("#runs", VirtualTable).focus()
            await pilot.press("s")
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause(0.3)
            assert run.status()["state"] == "running"
            await pilot.press("s")
            await pilot.pause()
            await pilot.press("y")
            await wait_until(pilot, lambda: screen.view.status.get("state") == "stopped", 60, "the run to show stopped")
            assert run.last_path.exists()
            await wait_until(
                pilot, lambda: table_rows(screen.query_one("#runs", VirtualTable))[0][2] == "stopped", 5, "the list"
            )
            stopped_rows = len(screen.view.losses)
            # resume: the same run goes on from last.pt
            await pilot.press("r")
            await wait_until(
                pilot,
                lambda: (run.raw_status() or {}).get("resume") and run.raw_status().get("pid"),
                60,
                "the resumed process",
            )
            assert screen.query_one("#runs", VirtualTable).n_rows == 1
            await wait_until(pilot, lambda: screen.view.status.get("state") == "running", 5, "running again")
            assert len(screen.view.losses) >= stopped_rows
    finally:
        _kill(run)


def _failed(run: Run, screen) -> str:
    """Why the launch or the run failed ('' while all is well), to end a wait early and say why."""
    msg = static_text(screen.query_one("#launch-msg"))
    if "started" not in msg and msg.strip() and "starting" not in msg:
        return f"launch: {msg.strip()}"
    if run.path.is_dir() and run.status()["state"] == "failed":
        return f"run failed: {run.status().get('error')}\n" + "\n".join(run.log_tail()[-15:])
    return ""


def _kill(run: Run) -> None:
    import os
    import signal

    raw = run.raw_status() or {}
    if run.status()["state"] == "running" and raw.get("pid"):
        try:
            os.killpg(raw.get("pgid") or raw["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    wait_for_state(run, timeout=30)


async def test_at_80x24_launch_from_the_runs_list_and_a_refusal_are_in_view(tiny, tmp_path):
    """F5 on the runs list says why nothing started in a toast (the form's own line is below the
    fold at 80x24), and a reason not to launch scrolls into view beside the button."""
    root, _glove = tiny
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_train(pilot)
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "check the form" in " ".join(str(n.message) for n in app._notifications)  # noqa: SLF001
        screen.query_one("#f-lr", Input).value = "fast"
        await pilot.press("f5")
        await pilot.pause(0.5)
        msg = screen.query_one("#launch-msg")
        assert "'fast' is not a number" in static_text(msg)
        assert msg.region.height and app.screen.region.contains_region(msg.region)  # on screen, not scrolled off
        assert not any((tmp_path / "ws" / "runs").iterdir())


async def test_a_bad_form_value_names_the_field_and_starts_nothing(tiny, tmp_path):
    root, _glove = tiny
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("f5")  # from the runs list: shows the form, starts nothing
        await pilot.pause(0.3)
        assert screen.query_one("#train-tabs").active == "new-pane"
        assert "check the form" in static_text(screen.query_one("#launch-msg"))
        screen.query_one("#f-lr", Input).value = "fast"
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "--lr / the learning rate field: 'fast' is not a number" in static_text(screen.query_one("#launch-msg"))
        screen.query_one("#f-lr", Input).value = "0"
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "--lr / the learning rate field: 0.0 must be > 0" in static_text(screen.query_one("#launch-msg"))
        screen.query_one("#f-lr", Input).value = ""
        screen.query_one("#f-nproc", Input).value = "0"
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "--nproc / the GPUs (nproc) field: '0'" in static_text(screen.query_one("#launch-msg"))
        screen.query_one("#f-nproc", Input).value = "2"
        assert screen.read_form()["nproc"] == 2
        screen.query_one("#f-nproc", Input).value = ""
        screen.query_one("#f-stage", Select).value = "finetune"
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "from run: choose the pretrain run" in static_text(screen.query_one("#launch-msg"))
        screen.query_one("#f-stage", Select).value = "pretrain"
        await pilot.press("f5")
        await wait_until(
            pilot, lambda: "has no export yet" in static_text(screen.query_one("#launch-msg")), 10, "the refusal"
        )
        assert not any((tmp_path / "ws" / "runs").iterdir())


# ------------------------------------------------------------------------------------------------
# damaged run folders


def fake_run(
    ws: Workspace, stage: str, rows: list[dict], status: dict | None, tail: bytes = b"", run_id: str | None = None
) -> Run:
    run = create_run(ws, {"stage": stage, "train": {"batch_size": 8}}, run_id=run_id)
    run.metrics_path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + tail)
    if status is not None:
        atomic_write_json(run.status_path, status)
    return run


def train_rows(n: int, start: float = 3.0) -> list[dict]:
    return [
        {"step": 10 * i, "epoch": i / 10, "loss": start / (1 + i), "lr": 1e-4, "samples_per_s": 80.0}
        for i in range(1, n + 1)
    ]


def eval_row(step: int, r1: float) -> dict:
    return {
        "split": "val",
        "step": step,
        "epoch": 1,
        "R1@0.3": r1,
        "R1@0.5": r1 / 2,
        "R5@0.3": r1 * 2,
        "R5@0.5": r1,
        "mIoU": r1 / 3,
    }


async def test_fields_of_the_wrong_type_read_as_a_failed_run_not_a_crash(tmp_path):
    ws = Workspace(tmp_path / "ws")
    odd_status = {
        "state": "running",
        "pid": "abc",
        "heartbeat": "soon",
        "step": "7",
        "total_steps": [1],
        "epoch": None,
        "epochs": "3",
        "best": 5,
        "started": "today",
    }
    rows = [
        {"step": "10", "loss": "1.0"},
        {"step": 20, "loss": 2.0, "lr": "x", "samples_per_s": "fast"},
        {"split": "val", "step": 20, "R1@0.3": "high", "mIoU": None},
        {"split": "val", "step": 30, "R1@0.3": 7.0},
    ]
    run = fake_run(ws, "baseline", rows, odd_status)
    with open(run.metrics_path, "ab") as f:
        f.write(b'[1, 2]\n5\n"text"\n')
    other = fake_run(
        ws,
        "baseline",
        [eval_row(10, 3.0)],
        {"state": "done", "pid": None, "heartbeat": time.time()},
        run_id="20200101-000000-baseline-0000",
    )
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.view and screen.view.losses, 10, "the usable row")
        assert screen.view.losses == [2.0]
        head = static_text(screen.query_one("#run-head"))
        assert "failed" in head and "status.json" in head
        assert table_rows(screen.query_one("#runs", VirtualTable))[0][2] == "failed"
        assert "high" not in static_text(screen.query_one("#evals")) and "7.00" in static_text(
            screen.query_one("#evals")
        )
        await pilot.press("p", "down")
        await pilot.pause()
        await pilot.press("p", "c")
        await wait_until(
            pilot, lambda: "differences against" in static_text(screen.query_one("#cmp-table")), 10, "the table"
        )
        assert "+4.00" in static_text(screen.query_one("#cmp-table"))  # 7.00 against the other run's 3.00
        assert other.id in screen.picked


async def test_torn_line_garbage_status_and_a_deleted_folder_never_break_the_screen(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run = fake_run(ws, "baseline", train_rows(5) + [eval_row(50, 12.5)], None, tail=b'{"step": 60, "epoch": 0.6, "lo')
    run.status_path.write_text("{not json")
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.view and len(screen.view.losses) == 5, 10, "the complete rows")
        head = static_text(screen.query_one("#run-head"))
        assert "failed" in head and "status.json is missing or unreadable" in head
        assert table_rows(screen.query_one("#runs", VirtualTable))[0][2] == "failed"
        assert "12.50" in static_text(screen.query_one("#evals"))
        # the writer finishes the torn line: the row arrives whole, once
        with open(run.metrics_path, "ab") as f:
            f.write(b'ss": 0.25, "lr": 1e-4}\n')
        await wait_until(pilot, lambda: len(screen.view.losses) == 6, 5, "the completed row")
        assert screen.view.losses[-1] == 0.25 and screen.view.steps[-1] == 60
        # a resume truncates metrics.jsonl to its checkpoint's step (an atomic replace): the curve restarts
        from engine.workspace import atomic_write_bytes

        atomic_write_bytes(run.metrics_path, b"".join(json.dumps(r).encode() + b"\n" for r in train_rows(3)))
        await wait_until(pilot, lambda: len(screen.view.losses) == 3, 5, "the curve to restart")
        # the folder goes away underneath the screen
        shutil.rmtree(run.path)
        await wait_until(
            pilot, lambda: screen.query_one("#runs", VirtualTable).n_rows == 0, 5, "the list to drop the run"
        )
        assert screen.selected is None
        assert "No run selected" in static_text(screen.query_one("#run-head"))
        assert "no GPU" in static_text(screen.query_one("#run-head"))
        # a run folder that is nothing but an empty directory is listed, as failed
        (ws.runs_dir / "20261128-000000-baseline-dead").mkdir()
        await wait_until(pilot, lambda: screen.query_one("#runs", VirtualTable).n_rows == 1, 5, "the empty folder")
        assert table_rows(screen.query_one("#runs", VirtualTable))[0][1:3] == ("?", "failed")
        assert "no loss rows yet" in str(screen.query_one("#loss-plot", LinePlot).render())


# ------------------------------------------------------------------------------------------------
# actions, compare, small terminals


async def test_folder_shows_and_copies_the_path_and_delete_asks_first(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run = fake_run(ws, "baseline", train_rows(3), {"state": "done", "pid": None, "heartbeat": time.time()})
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.selected == run.id, 5, "the run")
        await pilot.press("o")
        await pilot.pause()
        assert app.clipboard == str(run.path)
        assert str(run.path) in static_text(app.screen.query_one("#train-folder-path"))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert run.path.exists()
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: not run.path.exists(), 5, "the folder to go")
        await wait_until(pilot, lambda: screen.query_one("#runs", VirtualTable).n_rows == 0, 5, "the list")


async def test_compare_overlays_picked_runs_and_shows_the_difference_to_the_baseline(tmp_path):
    ws = Workspace(tmp_path / "ws")
    done = {"state": "done", "pid": None, "heartbeat": time.time()}
    base = fake_run(
        ws,
        "baseline",
        train_rows(6) + [eval_row(30, 10.0), eval_row(60, 12.0)],
        done,
        run_id="20261128-100000-baseline-aaaa",
    )
    ft = fake_run(
        ws,
        "finetune",
        train_rows(6, start=2.0) + [eval_row(30, 14.5), eval_row(60, 13.0)],
        done,
        run_id="20261128-110000-finetune-bbbb",
    )
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.query_one("#runs", VirtualTable).n_rows == 2, 5, "two runs")
        await pilot.press("p")  # the newest (finetune) run is selected first
        await pilot.press("down")
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert set(screen.picked) == {base.id, ft.id}
        assert [r[-1] for r in table_rows(screen.query_one("#runs", VirtualTable))] == ["✓", "✓"]
        await pilot.press("c")
        await wait_until(pilot, lambda: len(screen.query_one("#cmp-r1", LinePlot).series) == 2, 10, "the overlay")
        table = static_text(screen.query_one("#cmp-table"))
        assert "differences against 10:00 aaaa (baseline)" in table and "baseline (ref)" in table
        assert "14.50 +2.50" in table  # the finetune's best R1@0.3 against the baseline's 12.00
        pick = screen.query_one("#cmp-pick", SelectionList)
        assert set(pick.selected) == {base.id, ft.id}
        # every action can be found by name in the command palette
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {
            "Train: Stop",
            "Train: Resume",
            "Train: Delete",
            "Train: More smoothing",
            "Train: Compare",
            "Train: Launch",
        } <= titles


async def test_the_screen_fits_an_80x24_terminal_and_a_crashed_run_shows_its_error_and_log(tmp_path, monkeypatch):
    from test_gpu import SMI_OUT, fake_smi

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_smi(bin_dir, f"printf '{SMI_OUT}'")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    ws = Workspace(tmp_path / "ws")
    run = fake_run(
        ws,
        "baseline",
        train_rows(20) + [eval_row(100, 11.0)],
        {
            "state": "failed",
            "pid": 123,
            "heartbeat": time.time(),
            "error": "FloatingPointError: loss is nan at step 201; lower --lr or check the features for NaN",
        },
    )
    run.log_path.write_text(
        "".join(f"2026-11-28 10:00:{i:02d} INFO step {i}\n" for i in range(40))
        + "Traceback (most recent call last):\nFloatingPointError: loss is nan at step 201\n"
    )
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.view and screen.view.losses, 5, "rows")
        await pilot.pause(0.2)
        for selector in ("#runs", "#run-head", "#loss-plot", "#evals-box", "#run-log"):
            region = screen.query_one(selector).region
            assert region.height >= 1 and region.width >= 20, selector
            assert region.bottom <= 23, selector  # above the footer
        assert screen.query_one("#loss-plot").region.height >= 4
        head = static_text(screen.query_one("#run-head"))
        assert "failed" in head and "FloatingPointError: loss is nan at step 201" in head
        await wait_until(
            pilot, lambda: "GPU0 H200 87%" in static_text(screen.query_one("#run-head")), 5, "the GPU line"
        )
        log = static_text(screen.query_one("#run-log")).strip().splitlines()
        assert log[-1] == "FloatingPointError: loss is nan at step 201" and len(log) <= 5


# ------------------------------------------------------------------------------------------------
# the pieces behind the panels


def test_smoothing_is_a_debiased_ema_that_continues_across_batches_of_rows():
    values = [4.0, 2.0, 3.0, 1.0, 5.0]
    whole, _ = ema(values, 0.8)
    part1, state = ema(values[:2], 0.8)
    part2, _ = ema(values[2:], 0.8, state)
    assert part1 + part2 == pytest.approx(whole)
    assert whole[0] == pytest.approx(4.0)  # debiased: the first value is itself
    assert ema(values, 0.0)[0] == values


def test_run_view_keeps_train_and_val_rows_apart_and_derives_eta():
    view = RunView("r", smoothing=0.6)
    view.add_rows(train_rows(3) + [eval_row(30, 9.0), {"split": "test", "step": 30}])
    assert view.steps == [10, 20, 30] and len(view.evals) == 1
    view.status = {"total_steps": 130, "step": 30}
    assert view.steps_per_s(8) == pytest.approx(10.0)  # 80 samples/s at batch 8
    assert view.eta_s(8) == pytest.approx(10.0)  # 100 steps left
    view.set_smoothing(0.0)
    assert view.smoothed == view.losses


def test_compare_rows_diff_against_the_first_baseline():
    picked = [
        {"id": "a", "stage": "pretrain", "rows": [eval_row(1, 5.0)]},
        {"id": "b", "stage": "baseline", "rows": [eval_row(1, 8.0), eval_row(2, 10.0)]},
        {"id": "c", "stage": "finetune", "rows": []},
    ]
    out = {p["id"]: (best, diff) for p, best, diff in compare_rows(picked)}
    assert out["b"][1] is None and out["b"][0]["R1@0.3"] == 10.0
    assert out["a"][1]["R1@0.3"] == pytest.approx(-5.0)
    assert out["c"] == (None, None)


def test_plot_draws_braille_within_its_size_and_skips_nan():
    xs = list(range(1000))
    ys = [math.sin(x / 50) if x % 97 else float("nan") for x in xs]
    text = render_plot([Series("sin", xs, ys, style="cyan")], 60, 10)
    lines = text.plain.split("\n")
    assert len(lines) == 10 and all(len(line) <= 60 for line in lines)
    assert any("\u2800" < ch <= "\u28ff" for ch in text.plain)
    assert "sin" in lines[-1] and lines[-1].rstrip().endswith("999")
    # a flat series and a single point still draw
    assert "⠀" not in render_plot([Series("flat", [1, 2], [3.0, 3.0])], 40, 5).plain
    assert render_plot([Series("one", [5], [1.0])], 40, 5).plain.count("\n") == 4
    # a value and its EMA differ by rounding only: one flat line in the middle, labelled apart
    lines = render_plot([Series("raw", [9], [15.4245]), Series("ema", [9], [15.4245 + 2e-15])], 40, 5).plain.split("\n")
    assert lines[0].split("┤")[0].strip() == "17.0" and lines[3].split("┤")[0].strip() == "13.9"
    drawn = {i for i, line in enumerate(lines[:4]) if any("\u2800" < ch <= "\u28ff" for ch in line)}
    assert drawn and drawn <= {1, 2}
    assert render_plot([], 40, 5).plain == "no data yet"


async def test_pretrain_and_finetune_presets_ask_for_what_the_train_command_would(tiny, tmp_path):
    from training_fixtures import tiny_config

    from engine.run_config import new_run_config

    root, glove = tiny
    ws = Workspace(tmp_path / "ws")
    export = ws.exports_dir / "llm-v1.json"
    shutil.copy(root / "v1" / "annotations" / "nlq_train.json", export)
    done = {"state": "done", "pid": None, "heartbeat": time.time()}
    pre = fake_run(ws, "pretrain", train_rows(3) + [eval_row(30, 9.0)], done, run_id="20261128-090000-pretrain-cccc")
    atomic_write_json(
        pre.config_path,
        {
            "stage": "pretrain",
            "from_run": None,
            "nproc": 1,
            "id": pre.id,
            "train": tiny_config(root, glove, stage="pretrain", lr=2e-4, epochs=4).to_dict(),
        },
    )
    pre.best_path.write_bytes(b"weights")  # the form needs a checkpoint to exist; nothing loads it here
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("n")
        screen.query_one("#f-stage", Select).value = "pretrain"
        await pilot.pause()
        assert screen.query_one("#f-train-file", Input).placeholder == "latest export: llm-v1.json"
        form = screen.read_form()
        config = new_run_config(ws, {**form["values"], "data_root": root}, nproc=form["nproc"])
        assert config["train"]["train_file"] == str(export.resolve())
        # the form shows what the schedule rule picks for the export's size in the fields left blank
        n_export = sum(  # the queries with text, as the trainer counts them
            1
            for v in json.loads(export.read_text())["videos"]
            for c in v["clips"]
            for a in c["annotations"]
            for q in a["language_queries"]
            if (q.get("query") or "").strip(" ?")
        )
        await wait_until(
            pilot,
            lambda: f"≈{n_export:,} training queries" in static_text(screen.query_one("#form-schedule")),
            10,
            "the preview",
        )
        from engine.training.config import auto_schedule

        assert screen.query_one("#f-lr", Input).placeholder == f"rule: {auto_schedule(n_export, 'pretrain')['lr']:g}"

        screen.query_one("#f-stage", Select).value = "finetune"
        await pilot.pause()
        assert screen.query_one("#f-train-file", Input).disabled
        options = await wait_until(
            pilot, lambda: screen.query_one("#f-from", Select)._options[1:], 5, "the pretrain run"
        )
        assert options[0][1] == pre.id
        screen.query_one("#f-from", Select).value = pre.id
        form = screen.read_form()
        config = new_run_config(ws, {**form["values"], "data_root": root}, nproc=form["nproc"])
        # as `nlq-tui train --stage finetune --from RUN`: the pretrain run's encoder, features, device; lr and
        # epochs left to the schedule rule (the trainer resolves them: half the rule's lr for a finetune)
        assert config["from_run"] == pre.id
        assert config["train"]["init_from"] == str(pre.best_path)
        assert {"lr", "epochs"} <= set(config["train"]["auto"])
        assert screen.query_one("#f-batch", Input).placeholder == "the pretrain run's"
        assert config["train"]["text_encoder"] == "glove" and config["train"]["device"] == "cpu"


# ------------------------------------------------------------------------------------------------
# text from run folders is data


HOSTILE = "[/]x [bold red]y[/] [link=file:///etc/passwd]z[/link] [@click=app.quit]q[/] [$accent] [ $x] \x1b]52;c;AAAA\x07 \x1b[2J \x1b]2;title\x1b\\ \ud800"


def screen_text(app) -> str:
    """Every character the screen's compositor would send to the terminal, as text."""
    update = app.screen._compositor.render_update(full=True)
    return "".join(seg.text for strip in update.strips for seg in strip)


async def test_hostile_run_text_shows_as_data_and_no_escape_reaches_the_terminal(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run = fake_run(
        ws,
        HOSTILE.replace("\ud800", "?"),  # the stage (config.json must stay valid UTF-8 JSON)
        train_rows(3) + [eval_row(30, 5.0)],
        {"state": "failed", "pid": None, "heartbeat": time.time(), "error": HOSTILE.replace("\ud800", "?")},
        run_id="20261128-100000-[\x1b]2;t\x07]-dddd",
    )
    run.best_path.write_bytes(b"weights")  # listed among the finetune's choices
    run.log_path.write_bytes(
        ("line one " + HOSTILE.replace("\ud800", "") + "\n").encode() * 3 + b"\xff\xfe bad utf-8\n"
    )
    app = make_app(None, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.view and screen.view.losses, 10, "the run")
        await wait_until(pilot, lambda: "line one" in static_text(screen.query_one("#run-log")), 10, "the log")
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "\x1b" not in shown and "\x07" not in shown
        assert "[/]x [bold red]y[/]" in static_text(screen.query_one("#run-head"))  # shown, not parsed
        assert "␛]52;c;AAAA␇" in static_text(screen.query_one("#run-log"))
        await pilot.press("p", "c")
        await wait_until(pilot, lambda: screen.query_one("#cmp-r1", LinePlot).series, 10, "the comparison")
        assert "\x1b" not in screen_text(app)
        await pilot.press("v", "x")  # the delete dialog names the run and its path
        await pilot.pause(0.3)
        assert "\x1b" not in screen_text(app) and "Delete" in screen_text(app)
        await pilot.press("n")
        await pilot.pause(0.2)
        await pilot.press("n")  # the form, with the run among the finetune's choices
        screen.query_one("#f-stage", Select).value = "finetune"
        await wait_until(pilot, lambda: screen.query_one("#f-from", Select)._options[1:], 5, "the choices")
        await pilot.pause(0.2)
        assert "\x1b" not in screen_text(app)
        assert app.is_running


async def test_a_file_where_runs_should_be_is_one_line_on_the_screen_and_launch_says_it(tiny, tmp_path):
    root, _glove = tiny
    ws = Workspace(tmp_path / "ws")
    shutil.rmtree(ws.runs_dir)
    ws.runs_dir.write_text("a file, not a folder")
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await wait_until(
            pilot, lambda: "is a file, not the runs folder" in static_text(screen.query_one("#run-head")), 5, "the line"
        )
        assert screen.query_one("#runs", VirtualTable).n_rows == 0
        await pilot.press("n")
        await pilot.press("f5")
        await wait_until(
            pilot,
            lambda: "is a file, not the runs folder" in static_text(screen.query_one("#launch-msg")),
            10,
            "refusal",
        )
        assert ws.runs_dir.read_text() == "a file, not a folder"


async def test_the_app_says_when_a_run_ends_on_any_screen(tmp_path):
    from engine.proc import identity
    from nlq_tui.widgets.train_watch import start_run_end_watch

    ws = Workspace(tmp_path / "ws")
    done_before = fake_run(ws, "baseline", [], {"state": "done", "pid": None, "heartbeat": time.time()})
    live = {"state": "running", "heartbeat": time.time(), **identity(os.getpid())}
    run = fake_run(ws, "baseline", [], live, run_id="20261128-100000-baseline-eeee")
    crash = fake_run(ws, "pretrain", [], live, run_id="20261128-110000-pretrain-ffff")
    app = make_app(None, tmp_path / "ws", screen="data", load=False)  # not on the Train screen
    async with app.run_test(size=(120, 35)) as pilot:
        watch = start_run_end_watch(app, every=0.2)
        await wait_until(pilot, lambda: watch.states, 10, "the first look")

        def said() -> list[str]:
            return [n.message for n in app._notifications]

        assert not [m for m in said() if done_before.id in m]  # ended before the app opened: not news
        atomic_write_json(run.status_path, {**live, "state": "done", "best": {"R1@0.3": 12.5}, "ended": time.time()})
        atomic_write_json(crash.status_path, {**live, "state": "failed", "error": "loss is nan [/] at step 3"})
        await wait_until(pilot, lambda: len([m for m in said() if "eeee" in m or "ffff" in m]) >= 2, 10, "the news")
        assert f"run {run.id} is done; best val R1@0.3 12.50" in said()
        assert f"run {crash.id} failed: loss is nan [/] at step 3" in said()
        await pilot.pause(0.6)
        assert len([m for m in said() if run.id in m]) == 1  # said once


# ------------------------------------------------------------------------------------------------
# experiments


def _figures(r1: float) -> dict:
    return {"R1@0.3": r1, "R1@0.5": r1 / 2, "R5@0.3": r1 * 2, "R5@0.5": r1, "mIoU": r1 / 3, "step": 30}


async def test_the_experiment_tab_shows_arms_seeds_and_the_gain_as_its_runs_finish(tiny, tmp_path):
    from engine.experiment.plan import experiment_dir, make_plan

    root, _glove = tiny
    ws = Workspace(tmp_path / "ws")
    export = ws.exports_dir / "llm-v1.json"
    shutil.copy(root / "v1" / "annotations" / "nlq_train.json", export)
    plan = make_plan(ws, data_root=root, pretrain=[str(export)], seeds=[1, 2])
    figures = {"baseline": (10.0, 11.0), "pretrain": (5.0, 6.0), "finetune": (14.0, 16.0)}
    jobs = {}
    for job in plan.jobs():
        r1 = figures[job.stage][job.seed - 1]
        done = {"state": "done", "pid": None, "heartbeat": time.time(), "best": _figures(r1)}
        run = fake_run(ws, job.stage, [eval_row(30, r1)], done if job.key != "finetune/llm-v1/s2" else None)
        jobs[job.key] = {"run_id": run.id}
    atomic_write_json(experiment_dir(ws, plan.id) / "state.json", {"jobs": jobs})
    app = make_app(root, tmp_path / "ws", screen="train", load=False)
    async with app.run_test(size=(120, 35)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("E")
        table = await wait_until(
            pilot, lambda: "seeds 1 2" in static_text(screen.query_one("#exp-table")) and screen, 10, "the table"
        )
        text = static_text(screen.query_one("#exp-table"))
        assert plan.id in text and "5/6 runs done" in text and "runner not started" in text
        assert "10.50 ± 0.71" in text  # the baseline's mean ± sd over two seeds
        assert "1/2" in text  # finetune: one seed of two done, so no gain interval yet
        # the second finetune finishes: its arm and the paired gain appear
        fine = Run(ws.runs_dir / jobs["finetune/llm-v1/s2"]["run_id"])
        atomic_write_json(
            fine.status_path, {"state": "done", "pid": None, "heartbeat": time.time(), "best": _figures(16.0)}
        )
        await wait_until(pilot, lambda: "6/6 runs done" in static_text(screen.query_one("#exp-table")), 10, "update")
        text = static_text(screen.query_one("#exp-table"))
        assert "15.00 ± 1.41" in text and "+4.50 [" in text  # gains 4 and 5 over seeds 1 and 2
        assert table is screen
        # e asks what to compare, prefilled with the newest export; a bad spec is one line, nothing starts
        await pilot.press("e")
        await pilot.pause(0.3)
        assert app.screen.query_one("#exp-pretrain", Input).value == str(export)
        app.screen.query_one("#exp-pretrain", Input).value = "no-such-variant"
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: any("no-such-variant" in n.message for n in app._notifications), 10, "the refusal"
        )
        assert len(list(ws.path.joinpath("experiments").iterdir())) == 1


async def test_stop_on_a_run_of_another_host_says_where_and_signals_nothing(tmp_path):
    import subprocess
    import sys

    from engine.proc import identity

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        ws = Workspace(tmp_path / "ws")
        status = {"state": "running", "heartbeat": time.time(), **identity(sleeper.pid), "host": "gpu-box-7"}
        status["pgid"] = sleeper.pid
        run = fake_run(ws, "baseline", train_rows(2), status)
        app = make_app(None, tmp_path / "ws", screen="train", load=False)
        async with app.run_test(size=(120, 35)) as pilot:
            screen = await open_train(pilot)
            await wait_until(pilot, lambda: screen.selected == run.id, 5, "the run")
            await pilot.press("s")
            await pilot.pause(0.3)
            await pilot.press("y")
            await wait_until(
                pilot,
                lambda: any("runs on gpu-box-7; stop it there" in n.message for n in app._notifications),
                10,
                "the line",
            )
        assert sleeper.poll() is None  # the pid, which lives here, was not signalled
    finally:
        sleeper.kill()
        sleeper.wait()
