"""The Generate screen in the real app: preview, prompt versions, dry run, start / pause / cancel."""

from __future__ import annotations

import asyncio

from fake_llm_server import FakeLLMServer
from tui_helpers import make_app, settle, tree, tree_master  # noqa: F401 - fixtures

from engine.store import CandidateStore
from engine.workspace import Workspace


def _rich_log_text(log) -> str:
    return "\n".join(strip.text for strip in log.lines)


async def _open(pilot):
    await settle(pilot)
    app = pilot.app
    assert app.current_mode == "generate"
    for _ in range(50):
        if app.screen.groups is not None:
            break
        await pilot.pause(0.05)
    await settle(pilot)
    return app.screen


async def _start_here(pilot, screen):
    """F5, then "start here" in the dialog that also offers to detach."""
    from nlq_tui.widgets.generate_modals import StartJobModal

    await pilot.press("f5")
    assert await _until(pilot, lambda: isinstance(pilot.app.screen, StartJobModal), 60), "F5 shows the start dialog"
    await pilot.press("enter")
    assert await _until(pilot, lambda: screen.job is not None or screen.last_stats is not None, 30)


async def _until(pilot, pred, timeout=15.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if pred():
            return True
        await pilot.pause(0.05)
    return pred()


async def _wait_job(pilot, screen, timeout=60.0):
    for _ in range(int(timeout / 0.05)):
        if screen.job is None:
            break
        await pilot.pause(0.05)
    await settle(pilot)


async def test_preview_shows_numbered_narrations_and_follows_prompt_edits(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
        text = screen.preview_text
        assert "\n1. #" in text and "\n5. " in text and " system " in text
        assert f"{len(screen.groups):,} groups, one every 5 narrations; the Lab counts one at each" in text
        system = screen.query_one("#system")
        system.load_text("You write questions. ZEBRA-MARKER")
        await pilot.pause(0.4)
        assert "ZEBRA-MARKER" in screen.preview_text
        assert "unsaved" in str(screen.query_one("#gen-prompt-version").content)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "v2" in str(screen.query_one("#gen-prompt-version").content)
        versions = screen.query_one("#prompt-versions")
        assert versions.value == 2
        versions.value = 1  # back to the default: its text returns to the editor
        await pilot.pause(0.4)
        assert screen.query_one("#system").text.startswith("You are an expert annotator")
        assert "v1" in str(screen.query_one("#gen-prompt-version").content)
        versions.value = 2
        await pilot.pause(0.4)
    from engine.generation.prompt import current_prompt

    assert current_prompt(Workspace(tmp_path / "ws")).system == "You write questions. ZEBRA-MARKER"


async def test_dry_run_shows_raw_answer_and_validation_and_stores_nothing(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
        await pilot.press("f2")
        await settle(pilot)
        out = screen.last_dry_run
        assert out is not None and out["error"] is None and len(out["accepted"]) + len(out["rejected"]) >= 5
        text = screen.dry_text
        assert "raw answer" in text and "accepted" in text
        assert '"narration": 1' in text and '"narration": 5' in text  # numbers of the raw answer are kept
        dry = screen.query_one("#gen-dry")
        assert dry.size.width <= 140 and dry.size.height > text.count("\n")  # wrapped, so taller than its lines
    assert CandidateStore(Workspace(tmp_path / "ws")).done_groups() == set()


async def test_template_job_runs_in_a_worker_and_fills_the_feed(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
        bar = screen.query_one("#gen-bar")
        assert bar.total is not None and bar.percentage == 0  # idle: a still, empty bar, not an animation
        screen.query_one("#checks").value = "fast"
        await _start_here(pilot, screen)
        await _wait_job(pilot, screen)
        st = screen.last_stats
        assert st["state"] == "done" and st["groups_done"] == len(screen.groups)
        feed = _rich_log_text(screen.query_one("#gen-feed"))
        assert "+ " in feed and "?" in feed
        assert "done" in str(screen.query_one("#gen-stats").content)
        # the settings are remembered, never a key
        assert Workspace(tmp_path / "ws").get("generation")["backend"] == "template"
    assert len(CandidateStore(Workspace(tmp_path / "ws")).done_groups()) == st["groups_done"]


async def test_openai_job_pauses_resumes_and_cancels_keeping_done_groups(tree, tmp_path):
    with FakeLLMServer(delay=0.2) as srv:
        app = make_app(tree, tmp_path / "ws", screen="generate")
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await _open(pilot)
            screen.query_one("#backend").value = "openai"
            screen.query_one("#model").value = "fake"
            screen.query_one("#base_urls").value = srv.base_url
            screen.query_one("#concurrency").value = "2"
            screen.query_one("#checks").value = "fast"
            screen.query_one("#price_in").value = "500"  # $ per 1M tokens: 0.5 per 1k
            screen.query_one("#price_out").value = "500"
            await pilot.pause()
            await _start_here(pilot, screen)
            await _until(pilot, lambda: screen.job is not None and screen.job.stats.groups_done >= 2, 30)
            await pilot.press("f6")  # pause
            await pilot.pause(0.5)
            n = srv.requests
            await pilot.pause(0.5)
            assert srv.requests - n <= 2 and screen.job.paused  # only the in-flight ones finished
            await pilot.press("1")  # the app stays usable while the job waits
            await pilot.pause()
            assert app.current_mode == "data"
            await pilot.press("3")
            await pilot.press("f6")  # resume
            await pilot.pause(0.4)
            assert srv.requests > n
            await pilot.press("f8")  # cancel
            await _wait_job(pilot, screen)
            st = screen.last_stats
            assert st["state"] == "cancelled" and 0 < st["groups_done"] < len(screen.groups)
            assert "cancelled" in str(screen.query_one("#gen-stats").content)
            assert st["tokens"] > 0 and abs(st["cost"] - st["tokens"] / 1000 * 0.5) < 1e-6
            assert "$" in str(screen.query_one("#gen-stats").content)
    assert len(CandidateStore(Workspace(tmp_path / "ws")).done_groups()) == st["groups_done"]


def _stats_lines(screen) -> list[str]:
    return str(screen.query_one("#gen-stats").content).split("\n")


async def test_escape_leaves_every_text_field_so_number_keys_switch_screens(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
        system = screen.query_one("#system").text
        for field in ("#base_urls", "#model", "#name", "#system"):
            screen.query_one(field).focus()
            await pilot.pause()
            await pilot.press("escape")
            await pilot.press("4")
            await pilot.pause()
            assert app.current_mode == "review", field
            await pilot.press("3")
            await pilot.pause()
            assert app.current_mode == "generate"
        assert screen.query_one("#base_urls").value == "" and screen.query_one("#system").text == system


async def test_status_shows_tokens_cost_and_failures_at_80_and_120_columns(tree, tmp_path):
    with FakeLLMServer(delay=0.0) as srv:
        for width in (80, 120):
            app = make_app(tree, tmp_path / f"ws{width}", screen="generate")
            async with app.run_test(size=(width, 40)) as pilot:
                screen = await _open(pilot)
                for field in screen.query(
                    "#gen-settings Input, #gen-settings2 Input, #gen-settings3 Input, #gen-prompt-head Input, Select"
                ):
                    if field.id in ("compare-a", "compare-b"):
                        continue  # in the Variants tab, not shown now
                    assert 0 < field.region.width and field.region.right <= width, (field.id, field.region)
                for id_, value in (
                    ("#backend", "openai"),
                    ("#model", "fake"),
                    ("#base_urls", srv.base_url),
                    ("#checks", "fast"),
                    ("#groups", "6"),
                    ("#price_in", "1"),
                    ("#price_out", "2"),
                ):
                    screen.query_one(id_).value = value  # fmt: skip
                await pilot.pause()
                await _start_here(pilot, screen)
                await _wait_job(pilot, screen)
                lines = _stats_lines(screen)
                text = " ".join(lines)
                width_shown = screen.query_one("#gen-stats").size.width
                assert "tokens" in text and "$" in text and "failed" in text, text
                assert all(len(ln) <= width_shown for ln in lines[1:]), (lines, width_shown)
                assert screen.query_one("#gen-stats").size.height >= len(lines)
                assert screen.last_stats["state"] == "done" and "100%" in text
                assert screen.query_one("#gen-bar").percentage == 1.0


async def test_quitting_during_a_job_asks_then_stops_it_and_releases_the_lock(tree, tmp_path):
    import subprocess
    import sys

    from nlq_tui.widgets.generate_modals import QuitWhileRunningModal

    with FakeLLMServer(delay=0.5) as srv:  # slow enough that quitting comes first on a loaded box
        app = make_app(tree, tmp_path / "ws", screen="generate")
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await _open(pilot)
            for id_, value in (
                ("#backend", "openai"),
                ("#model", "fake"),
                ("#base_urls", srv.base_url),
                ("#concurrency", "1"),
                ("#checks", "fast"),
            ):
                screen.query_one(id_).value = value  # fmt: skip
            await pilot.pause()
            await _start_here(pilot, screen)
            await _until(pilot, lambda: screen.job is not None and screen.job.stats.groups_done >= 2, 30)
            await pilot.press("1")  # quitting from another screen asks too
            assert await _until(pilot, lambda: app.current_mode == "data")
            await pilot.press("ctrl+q")
            assert await _until(pilot, lambda: isinstance(app.screen, QuitWhileRunningModal))
            await pilot.press("n")  # stay: the job goes on
            assert await _until(pilot, lambda: not isinstance(app.screen, QuitWhileRunningModal))
            assert screen.job is not None and not screen.job._cancelled
            await pilot.press("ctrl+q")
            assert await _until(pilot, lambda: isinstance(app.screen, QuitWhileRunningModal))
            await pilot.press("y")
            await _until(pilot, lambda: not app.is_running, 30)
            assert not app.is_running
        n = srv.requests
        await asyncio.sleep(0.5)
        assert srv.requests == n  # nothing asks the server any more
    # another process takes the candidates lock at once: the app released it
    code = ("import sys; from engine.workspace import Workspace; "
            "Workspace(sys.argv[1]).acquire('candidates', 'after').release(); print('took the lock')")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ws")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "took the lock" in out.stdout, out.stderr
    done = CandidateStore(Workspace(tmp_path / "ws")).done_groups()
    assert 2 <= len(done) < len(screen.groups)


async def test_a_detached_job_goes_on_after_the_app_and_a_second_app_shows_and_stops_it(tree, tmp_path):
    from engine.generation import jobs

    with FakeLLMServer(delay=0.4) as srv:  # still running when the second app looks
        app = make_app(tree, tmp_path / "ws", screen="generate")
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await _open(pilot)
            for id_, value in (
                ("#backend", "openai"),
                ("#model", "fake"),
                ("#base_urls", srv.base_url),
                ("#concurrency", "1"),
                ("#checks", "fast"),
            ):
                screen.query_one(id_).value = value  # fmt: skip
            await pilot.pause()
            await pilot.press("f5")
            for _ in range(200):
                if type(app.screen).__name__ == "StartJobModal":
                    break
                await pilot.pause(0.05)
            await pilot.press("d")
            for _ in range(100):
                if screen.attached is not None:
                    break
                await pilot.pause(0.1)
            assert screen.job is None and screen.attached is not None
        st = jobs.read_status(tmp_path / "ws")
        assert st["state"] in ("starting", "running")  # the job outlived the app
        app2 = make_app(tree, tmp_path / "ws", screen="generate")
        async with app2.run_test(size=(100, 40)) as pilot:
            screen2 = await _open(pilot)
            for _ in range(300):
                if screen2.last_stats and screen2.last_stats.get("groups_done", 0) >= 2:
                    break
                await pilot.pause(0.1)
            await pilot.pause(1.2)  # one more poll: the feed file's new lines
            text = " ".join(_stats_lines(screen2))
            assert screen2.attached is not None and "detached pid" in text and " groups " in text
            feed = _rich_log_text(screen2.query_one("#gen-feed"))
            assert "attached" in feed and "+ Where was the" in feed  # the questions the other process stored
            await pilot.press("f6")  # pause the detached job
            await pilot.pause(0.2)
            assert (tmp_path / "ws" / "generation" / "pause").exists()
            await pilot.press("f6")
            await pilot.pause(0.2)
            assert not (tmp_path / "ws" / "generation" / "pause").exists()
            await pilot.press("f8")  # stop it: the groups in flight are stored
            for _ in range(300):
                if screen2.attached is None:
                    break
                await pilot.pause(0.1)
            assert "cancelled" in " ".join(_stats_lines(screen2))
    st = jobs.read_status(tmp_path / "ws")
    assert st["state"] == "cancelled"
    assert len(CandidateStore(Workspace(tmp_path / "ws")).done_groups()) == st["stats"]["groups_done"]


async def test_variants_side_by_side_and_compared_on_the_same_narrations(tree, tmp_path):
    from nlq_tui.cli import main

    for name in ("tplA", "tplB"):
        argv = ["generate", "--workspace", str(tmp_path / "ws"), "--data", str(tree), "--checks", "fast",
                "--groups", "6", "--name", name, "--json"]  # fmt: skip
        code = await asyncio.to_thread(main, argv)  # the CLI runs its own event loop
        assert code == 0
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
        await pilot.press("f3")
        await settle(pilot)
        view = screen.query_one("#gen-variants")
        assert [r["name"] for r in view.rows] == ["tplA", "tplB"]
        assert {r["groups_done"] for r in view.rows} == {6}
        await settle(pilot)
        from tui_helpers import static_text

        compared = static_text(view.compare)
        assert "tplA" in compared and "tplB" in compared and "?" in compared


async def test_a_large_paid_job_names_its_cost_before_it_starts(tree, tmp_path):
    from nlq_tui.widgets.generate_modals import StartJobModal

    estimate = {"requests": 1500, "prompt_tokens": 900_000, "completion_tokens": 120_000, "cost": 12.5, "paid": True}
    choices = []
    app = make_app(tree, tmp_path / "ws", screen="generate", load=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        for todo, key in ((1500, "d"), (150, "escape")):
            app.push_screen(StartJobModal("openai:fake, prompt v1", estimate, todo), choices.append)
            await pilot.pause(0.2)
            warn = app.screen.query("#start-warn")
            if todo > 200:
                assert "1,500 groups on a paid endpoint" in str(warn.first().content)
                assert "$12.50" in str(warn.first().content)
            else:
                assert not warn  # small jobs are not held up by a cost question
            assert "900,000 prompt" in str(app.screen.query_one("#start-estimate").content)
            await pilot.press(key)
            await pilot.pause(0.2)
    assert choices == ["detach", None]


async def test_steps_show_in_the_status_line_and_the_feed_wraps_without_cutting(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(80, 40)) as pilot:
        screen = await _open(pilot)
        stats = {"state": "running", "groups_total": 10, "groups_skipped": 0, "groups_done": 3, "groups_failed": 0,
                 "questions_valid": 15, "questions_rejected": {}, "failed_requests": 0, "tokens": 0, "cost": None,
                 "groups_per_second": 1.0}  # fmt: skip
        long_detail = "a server error body " * 20 + "END-OF-DETAIL"
        screen._events.extend([
            {"type": "step", "text": "loading the sentence encoder"},
            {"type": "progress", "stats": stats},
            {"type": "failure", "group_key": "v/c/p1/k5/0", "reason": "server_error", "detail": long_detail},
        ])  # fmt: skip
        await pilot.pause(0.5)
        assert "loading the sentence encoder" in _stats_lines(screen)[0]
        feed = screen.query_one("#gen-feed")
        text = _rich_log_text(feed)
        assert "loading the sentence encoder" in text
        assert "END-OF-DETAIL" in text.replace("\n", "")  # wrapped onto more lines, not cut at the edge
        assert max(strip.cell_length for strip in feed.lines) <= feed.scrollable_content_region.width


async def test_start_refused_by_the_lock_names_the_holder_and_changes_nothing(tree, tmp_path):
    ws = Workspace(tmp_path / "ws")
    held = ws.acquire("candidates", "generation")
    try:
        app = make_app(tree, tmp_path / "ws", screen="generate")
        async with app.run_test(size=(140, 45)) as pilot:
            screen = await _open(pilot)
            screen.query_one("#checks").value = "fast"
            await pilot.press("f5")
            await settle(pilot)
            assert screen.job is None and type(app.screen).__name__ != "StartJobModal"
            assert "in use by pid" in " ".join(_stats_lines(screen))
    finally:
        held.release()
    assert Workspace(tmp_path / "ws").get("generation") is None  # the settings were not saved either
    assert not list((tmp_path / "ws" / "candidates").glob("groups-*"))


async def test_a_job_stopped_by_the_server_says_why(tree, tmp_path):
    with FakeLLMServer(default="unauthorized") as srv:
        app = make_app(tree, tmp_path / "ws", screen="generate")
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            screen = await _open(pilot)
            for id_, value in (("#backend", "openai"), ("#model", "fake"), ("#base_urls", srv.base_url),
                               ("#checks", "fast")):  # fmt: skip
                screen.query_one(id_).value = value
            await pilot.pause()
            await _start_here(pilot, screen)
            await _wait_job(pilot, screen)
            assert screen.last_stats["state"] == "failed"
            said = " ".join(str(n.message) for n in app._notifications)
            assert "generation failed" in said and "refused the API key" in said


async def test_hostile_text_from_saved_settings_and_a_detached_job_never_reaches_the_terminal(
    tree, tmp_path, monkeypatch
):
    import json
    import os
    import time

    from hostile_fixtures import install_recording_driver, payload

    from engine import proc

    terminal = install_recording_driver(monkeypatch)
    ws = Workspace(tmp_path / "ws")
    ws.set("generation", {"backend": "openai", "model": payload("MODEL"), "base_urls": payload("URL"),
                          "name": payload("NAME"), "api_key_env": "OPENAI_API_KEY"})  # fmt: skip
    folder = tmp_path / "ws" / "generation"
    folder.mkdir()
    stats = {"state": "running", "groups_total": 9, "groups_skipped": 0, "groups_done": 2, "groups_failed": 1,
             "questions_valid": 10, "questions_rejected": {payload("REASON"): 1}, "failed_requests": 1, "tokens": 5,
             "cost": None, "groups_per_second": 0.5}  # fmt: skip
    status = {"state": "running", "heartbeat": time.time() + 2, "step": payload("STEP"), "variant": payload("VAR"),
              "backend": payload("BACKEND"), "stats": stats, **proc.identity(os.getpid())}  # fmt: skip
    (folder / "status.json").write_text(json.dumps(status))
    group = {"type": "group", "group_key": payload("GKEY"), "rejected": [
        {"reason": payload("REJ"), "detail": payload("DETAIL"), "raw": payload("RAW")}], "candidates": []}  # fmt: skip
    failure = {"type": "failure", "group_key": payload("GKEY"), "reason": "server_error", "detail": payload("SRV")}
    (folder / "feed.jsonl").write_text(json.dumps(group) + "\n" + json.dumps(failure) + "\n")
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45), notifications=True) as pilot:
        screen = await _open(pilot)
        assert await _until(pilot, lambda: screen.attached is not None)
        await pilot.pause(1.5)
        assert app.is_running and app._exception is None
        assert not terminal.foreign_controls(), terminal.foreign_controls()
        assert terminal.shows("DETAIL") and terminal.shows("SRV") and terminal.shows("STEP")
        assert screen.query_one("#model").value == payload("MODEL")  # shown safely, kept as it was


async def test_at_80_columns_the_first_settings_row_takes_two_rows_so_model_and_url_stay_readable(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot)
        assert screen.has_class("-narrow")
        model, url, key = (screen.query_one(f"#{name}") for name in ("model", "base_urls", "api_key_env"))
        assert model.size.width >= 24 and url.size.width >= 24 and key.size.width >= 16
        assert model.region.y != url.region.y  # two rows
        assert screen.query_one("#backend").region.right <= model.region.x  # nothing overlaps
        await pilot.resize_terminal(120, 35)
        await pilot.pause(0.2)
        assert not screen.has_class("-narrow")
        assert model.region.y == url.region.y  # one row again when there is room
