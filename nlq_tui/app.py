"""The nlq-tui Textual app: navigation between screens, the shared context, index loading.

Screens are registered by module path and imported on first use, so start-up loads only the
screen it opens on (and never torch, transformers or openai). Each screen is a Textual mode:
it is built once and keeps its state while the user moves between screens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from engine.errors import UserError
from nlq_tui.bindings import GLOBAL_BINDINGS, SCREEN_BINDINGS, SCREEN_HELP, SCREEN_ORDER, SCREEN_TITLES
from nlq_tui.context import AppContext, IndexChanged, LoadProgress
from nlq_tui.registry import SCREENS, resolve_screen
from nlq_tui.safe_text import display_path, notify
from nlq_tui.workers import Failed, error_message, guarded, report_error, worker_error

__all__ = ["SCREENS", "NLQApp", "display_path", "resolve_screen", "run"]


class ScreensProvider(Provider):
    """Command palette: go to any screen by name, and run any screen's action from anywhere.

    The shown screen's actions are the app's system commands (get_system_commands), which the
    palette matches by title; here they are found by their help text too ("pick up" finds
    Review: Refresh). Another screen's action switches to that screen and runs there."""

    def _screens(self) -> Iterable[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, NLQApp)
        for n, name in enumerate(SCREEN_ORDER, start=1):
            title, help_text = f"Go to {SCREEN_TITLES[name]} screen", f"({n}) {SCREEN_HELP[name]}"
            yield title, help_text, lambda name=name: app.action_show_screen(name)

    def _actions(self) -> Iterable[tuple[str, str, Callable[[], object], bool]]:
        """(title, help, run, on the shown screen) of every screen's described keys."""
        app = self.app
        assert isinstance(app, NLQApp)
        for name in SCREEN_ORDER:
            seen: set[str] = set()
            for b in SCREEN_BINDINGS.get(name, ()):
                if not b.description or b.action in seen or b.action == "leave_input":  # "Done": a text box's own
                    continue
                seen.add(b.action)
                title = f"{SCREEN_TITLES[name]}: {b.description}"
                yield (
                    title,
                    b.tooltip or b.description,
                    partial(app.run_on_screen, name, b.action),
                    (app.current_mode == name),
                )

    async def discover(self) -> Hits:
        for title, help_text, run in self._screens():
            yield DiscoveryHit(title, run, help=help_text)
        for title, help_text, run, shown in self._actions():
            if not shown:  # the shown screen's are listed as system commands
                yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        words = query.lower().split()
        for title, help_text, run in self._screens():
            if (score := matcher.match(title)) > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
        for title, help_text, run, shown in self._actions():
            score = matcher.match(title)
            if score > 0 and not shown:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
            elif score <= 0 and words and all(w in help_text.lower() for w in words):
                # By its help text: every word as typed (a fuzzy match over a sentence finds
                # nearly anything), below the matches by name.
                yield Hit(0.1, title, run, help=help_text)


class NLQApp(App):
    """Ego4D narrations to NLQ training data: data, lab, generate, review, train."""

    TITLE = "nlq-tui"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere keep it
    BINDINGS = GLOBAL_BINDINGS
    COMMANDS = App.COMMANDS | {ScreensProvider}

    def __init__(self, ctx: AppContext, initial_screen: str | None = None, *, load_on_start: bool = True) -> None:
        super().__init__()
        self.ctx = ctx
        self.initial_screen = initial_screen or "data"
        self.load_on_start = load_on_start
        # Published (on the app's thread) after every load attempt, for widgets such as NavBar.
        self.index_signal: Signal[str | None] = Signal(self, "index")
        self._last_progress = 0.0
        # True from start-up until the first load has ended (its worker starts after the first
        # paint, so "no worker running" alone does not mean "loaded")
        self.load_pending = False

    # start-up --------------------------------------------------------------------------------
    def on_mount(self) -> None:
        cfg = self.ctx.user_config
        keymap = dict(cfg.keymap) if cfg is not None else {}
        saved = self.ctx.workspace.get("keymap")
        if isinstance(saved, dict):  # the workspace's own keys win over the user config's
            keymap.update({str(k): str(v) for k, v in saved.items()})
        if keymap:
            self.set_keymap(keymap)
        self._apply_theme(self.ctx.workspace.get("theme") or (cfg.theme if cfg is not None else None))
        self._theme_at_start: str | None = self.theme  # its signal arrives later: not a pick
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.action_show_screen(self.initial_screen)
        for problem in self.ctx.workspace.all_problems():  # damaged parts: said once, the rest works
            notify(self, problem, title="Workspace", severity="warning", timeout=12)
        # "run X is done / failed" on whichever screen is open; after the first frame, which it
        # would otherwise delay by the runs module's import
        self.set_timer(1.0, self._watch_runs)
        if self.load_on_start and self.ctx.data_root is not None:
            # After the first paint: the load imports numpy and parses JSON in a thread, which
            # would otherwise compete with the first frame for the interpreter.
            self.load_pending = True
            self.call_after_refresh(self.load_data)

    def _watch_runs(self) -> None:
        from nlq_tui.widgets.train_watch import start_run_end_watch

        start_run_end_watch(self)

    def _apply_theme(self, name: object) -> None:
        if isinstance(name, str) and name in self.available_themes:
            self.theme = name
        elif name:
            notify(self, f"unknown theme {name!r} in the settings; using {self.theme}", severity="warning")

    def _remember_theme(self, theme) -> None:
        """A theme picked in the app is written to the user config, so every workspace opens in it."""
        from nlq_tui.config import remember_theme

        at_start, self._theme_at_start = self._theme_at_start, None
        cfg = self.ctx.user_config
        if cfg is None or theme.name in (at_start, cfg.theme):
            return
        try:
            remember_theme(theme.name, cfg.path)
            cfg.theme = theme.name
        except (OSError, UserError) as exc:
            notify(self, f"{cfg.path}: the theme could not be saved ({exc})", severity="warning")

    # navigation --------------------------------------------------------------------------------
    def action_show_screen(self, name: str) -> None:
        """Switch to the screen `name`, building it on first use."""
        if name not in SCREENS:
            notify(self, f"no screen called {name!r}", severity="error")
            return
        if name not in self._modes:
            try:
                screen_class = resolve_screen(name)
            except Exception as exc:  # a broken screen must not take the app down
                notify(self, f"the {SCREEN_TITLES[name]} screen failed to load: {error_message(exc)}", severity="error")
                return
            self.add_mode(name, screen_class)
        from nlq_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):  # help is a passing look, not part of a screen
            self.pop_screen()
        self.switch_mode(name)

    async def action_quit(self) -> None:
        """Quit; a screen whose work would die with the app (an in-app generation job) asks first
        through its `quit_guard()` / `confirm_quit(then)`, and stops that work cleanly."""
        for stack in self._screen_stacks.values():
            base = stack[0] if stack else None
            if base is not None and callable(getattr(base, "quit_guard", None)) and base.quit_guard():
                base.confirm_quit(self.exit)
                return
        self.exit()

    def action_help(self) -> None:
        from nlq_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def run_on_screen(self, name: str, action: str) -> None:
        """Run a screen's action from the palette: on that screen, switched to first if need be."""
        if self.current_mode != name:
            self.action_show_screen(name)
            if self.current_mode != name:
                return  # the screen failed to load: said so already
        target = self.screen
        if isinstance(target, ModalScreen):  # a dialog of that screen is open: it has the keys now
            notify(self, "close the dialog first (escape), then run it again", title=SCREEN_TITLES.get(name, name))
            return

        async def run() -> None:
            if self.screen is target:
                await self.run_action(action, target)

        # Queued on the screen itself: it runs once the screen is mounted (on a first visit it
        # is being composed now), not merely after the app's next refresh.
        target.call_after_refresh(run)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: all keys", "Every key of every screen", self.action_help)
        # Every footer action of the current screen, by its description, so that anything a
        # key does can also be found by name.
        seen: set[tuple[int, str]] = set()
        for active in screen.active_bindings.values():
            node, b = active.node, active.binding
            if node is self or not b.description or b.system or (id(node), b.action) in seen:
                continue
            seen.add((id(node), b.action))
            yield SystemCommand(
                f"{SCREEN_TITLES.get(self.current_mode, '')}: {b.description}".strip(": "),
                b.tooltip or b.description,
                lambda b=b, node=node: self.run_action(b.action, node),
            )

    # loading the index ---------------------------------------------------------------------
    def load_data(self, root: Path | None = None, features: str | None = None) -> Worker:
        """Load `root` with `features` in a thread worker; screens get LoadProgress and IndexChanged."""
        self._broadcast(lambda: LoadProgress("starting", 0, 0))
        # guarded: a failed load is returned, not raised (a failed worker re-raises at app exit)
        return self.run_worker(
            guarded(lambda: self._load(root, features)),
            name="load-index",
            group="load",
            exclusive=True,
            thread=True,
            exit_on_error=False,
        )

    def _load(self, root: Path | None, features: str | None):
        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            # Throttle: a load reports per video; the screen needs ~20 updates a second.
            if done < total and now - self._last_progress < 0.05:
                return
            self._last_progress = now
            self.call_from_thread(self._broadcast, lambda: LoadProgress(stage, done, total))

        return self.ctx.load_index(root, features, progress=progress)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "load":
            return
        if worker.is_finished:
            self.load_pending = False
        exc = worker_error(event)
        if exc is not None:  # a bug in the reader is named as one; the previous index stays
            message = report_error(self, exc, what="loading", title="Data not loaded")
            self.ctx.load_error = message
            self._broadcast(lambda: IndexChanged(self.ctx.index, error=message))
            self.index_signal.publish(message)
        elif event.state == WorkerState.SUCCESS and not isinstance(worker.result, Failed):
            self.ctx.load_error = None
            self._broadcast(lambda: IndexChanged(self.ctx.index))
            self.index_signal.publish(None)

    def _broadcast(self, make_message) -> None:
        """Post a fresh message to the base screen of every built mode."""
        for stack in self._screen_stacks.values():
            if stack:
                stack[0].post_message(make_message())


def run(args) -> int:
    """Open the app (called by `nlq-tui` with no subcommand)."""
    ctx = AppContext.from_args(args)
    screen = getattr(args, "screen", None)
    if getattr(args, "data", None):
        # An explicit --data that is not a folder is a typing mistake: say so before the app opens.
        root = ctx.data_root
        if root is not None and not root.exists():
            raise UserError(f"--data {args.data}: no such folder; give the path of an Ego4D root")
    app = NLQApp(ctx, screen)
    app.run()
    return int(app.return_code or 0)


if __name__ == "__main__":  # pragma: no cover - `python -m nlq_tui.app` for quick tries
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--data")
    p.add_argument("--workspace")
    p.add_argument("--screen")
    p.add_argument("--reviewer")
    raise SystemExit(run(p.parse_args()))
