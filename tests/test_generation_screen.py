"""The Generate screen in the real app: preview, prompt versions, dry run, start / pause / cancel."""

from __future__ import annotations

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
    for _ in range(200):
        if isinstance(pilot.app.screen, StartJobModal):
            break
        await pilot.pause(0.05)
    assert isinstance(pilot.app.screen, StartJobModal), "F5 shows the start dialog"
    await pilot.press("enter")
    for _ in range(100):
        if screen.job is not None:
            break
        await pilot.pause(0.05)


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
    assert CandidateStore(Workspace(tmp_path / "ws")).done_groups() == set()


async def test_template_job_runs_in_a_worker_and_fills_the_feed(tree, tmp_path):
    app = make_app(tree, tmp_path / "ws", screen="generate")
    async with app.run_test(size=(140, 45)) as pilot:
        screen = await _open(pilot)
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
    with FakeLLMServer(delay=0.1) as srv:
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
            for _ in range(200):
                if screen.job is not None and screen.job.stats.groups_done >= 2:
                    break
                await pilot.pause(0.05)
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
