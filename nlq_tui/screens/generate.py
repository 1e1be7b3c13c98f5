"""The Generate screen: backend settings, the prompt with a live preview, dry run, the job, variants.

- Settings: backend, model, base URL(s), the name of the environment variable with the API key
  (the key itself is never asked for or stored), concurrency, groups, seed, checks, prices, the
  variant's name.
- The prompt (system and user message) in TextAreas; the preview under "Messages" shows the
  exact messages for the chosen group and follows every edit. Ctrl+S saves a new version.
- Dry run (F2): one group, the raw answer and what validation made of it; nothing is stored.
- Start (F5) prepares the job (selection, lock, estimate) and asks: run it here, in a thread
  worker with its own event loop, or detached as its own process (engine.generation.jobs), which
  outlives the app. A detached job of the workspace is shown live whichever session opens the
  screen; pause / resume (F6) and cancel (F8) act on either kind.
- Variants (F3): every variant of the workspace side by side, and two compared narration by
  narration for the groups both covered.

Everything from outside (narrations, answers, server errors, names) is drawn as plain text
(nlq_tui.safe_text). Work runs in thread workers that return typed results (nlq_tui.workers).
"""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Static, TabbedContent, TabPane, TextArea
from textual.worker import Worker, WorkerState

from engine.errors import ConfigError, UserError
from engine.textsafe import one_line
from nlq_tui.bindings import GENERATE_BINDINGS
from nlq_tui.context import IndexChanged
from nlq_tui.safe_text import content, notify, plain_content
from nlq_tui.widgets import NavBar, SafeInput
from nlq_tui.widgets.generate_modals import QuitWhileRunningModal, StartJobModal
from nlq_tui.widgets.generate_status import JobFeed, JobStatus
from nlq_tui.widgets.variants_view import VariantsView
from nlq_tui.workers import WorkerResult, guarded, report_error, worker_error

if TYPE_CHECKING:
    from engine.generation.jobs import JobSpec
    from engine.generation.pipeline import GenerationJob
    from engine.windows import WindowResult

SETTING = "generation"  # workspace setting: the screen's last settings (never the API key)
DRAIN_S = 0.2
POLL_S = 1.0  # how often the status of a detached job is read
QUIT_WAIT_S = 30.0  # longest wait for the requests in flight when quitting during a job
NL = Content("\n")
NARRATION_SHOWN = 300  # characters of each narration in the dry run (the Messages tab has them whole)


class GroupsReady(WorkerResult):
    def __init__(self, result, groups) -> None:
        super().__init__()
        self.result = result
        self.groups = groups


class DryRunDone(WorkerResult):
    def __init__(self, out: dict) -> None:
        super().__init__()
        self.out = out


class JobPrepared(WorkerResult):
    def __init__(self, job, spec, estimate: dict | None) -> None:
        super().__init__()
        self.job = job
        self.spec = spec
        self.estimate = estimate


class JobEnded(WorkerResult):
    def __init__(self, stats) -> None:
        super().__init__()
        self.stats = stats


def _number(text: str, what: str, cast, default=None):
    text = text.strip()
    if not text:
        return default
    try:
        return cast(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text[:40]!r}") from None


class GenerateScreen(Screen):
    """Settings, prompt and preview on top; the job's progress and its live feed below."""

    CSS_PATH = Path(__file__).with_name("generate.tcss")
    BINDINGS = GENERATE_BINDINGS
    AUTO_FOCUS = "#gen-feed"  # not an input: the number keys must switch screens

    def __init__(self) -> None:
        super().__init__()
        self.result: WindowResult | None = None
        self.groups = None  # np.ndarray: the tiled groups the preview and dry run choose from
        self.job: GenerationJob | None = None
        self.job_worker: Worker | None = None
        self.attached: dict | None = None  # status of the detached job shown, while it is live
        self._feed_tail = None  # engine.generation.jobs.FeedTail of the detached job shown
        self._events: collections.deque = collections.deque()
        self._preview_due = False
        self._setting_versions = False
        self.last_dry_run: dict | None = None
        self.preview_text = ""
        self.dry_text = ""
        self.last_stats: dict | None = None
        self.step: str | None = None

    # layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        saved = self._saved()

        def value(key: str, default: str = "") -> str:
            v = saved.get(key)
            return str(v)[:500] if isinstance(v, (str, int, float)) and not isinstance(v, bool) else default

        def field(label: str, id_: str, default: str = "", **kw) -> ComposeResult:
            yield Label(label, classes="param-label")
            yield SafeInput(value(id_, default), id=id_, compact=True, **kw)  # draws a saved ESC visibly

        yield NavBar()
        with Horizontal(id="gen-settings"):
            yield Label("backend", classes="param-label")
            backend = saved.get("backend") if saved.get("backend") in ("template", "openai", "hf") else "template"
            yield Select([(b, b) for b in ("template", "openai", "hf")], value=backend, id="backend",
                         allow_blank=False, compact=True)  # fmt: skip
            yield from field("model", "model", placeholder="name or folder")
            yield from field("url", "base_urls", placeholder="http://host:8000/v1 …")
            yield from field("key env", "api_key_env", "OPENAI_API_KEY")
        with Horizontal(id="gen-settings2"):
            yield from field("concurrency", "concurrency", "8", type="integer")
            yield from field("groups", "groups", placeholder="all", type="integer")
            yield from field("seed", "seed", "0", type="integer")
            yield Label("checks", classes="param-label")
            checks = saved.get("checks") if saved.get("checks") in ("full", "fast") else "full"
            yield Select([("full", "full"), ("fast", "fast")], value=checks, id="checks", allow_blank=False,
                         compact=True)  # fmt: skip
        with Horizontal(id="gen-settings3"):
            yield from field("$/1M in", "price_in", placeholder="-", type="number")
            yield from field("$/1M out", "price_out", placeholder="-", type="number")
            yield from field("variant", "name", placeholder="default: backend-model-prompt")
        with Horizontal(id="gen-body"):
            with Vertical(id="gen-prompt"):
                with Horizontal(id="gen-prompt-head"):
                    yield Label("group", classes="param-label")
                    yield SafeInput("0", id="group", type="integer", compact=True)
                    yield Select([], prompt="version", id="prompt-versions", compact=True, allow_blank=True)
                yield Static("", id="gen-prompt-version")
                yield Label("system message", classes="section")
                yield TextArea("", id="system", soft_wrap=True, show_line_numbers=False)
                yield Label("user message ({narrations}: the numbered narrations)", classes="section")
                yield TextArea("", id="user", soft_wrap=True, show_line_numbers=False)
            with TabbedContent(id="gen-tabs", initial="feed"):
                with TabPane("Feed", id="feed"):
                    yield JobFeed(id="gen-feed")
                with TabPane("Messages", id="preview"):
                    with VerticalScroll():
                        yield Static("", id="gen-preview")
                with TabPane("Dry run", id="dry"):
                    with VerticalScroll():
                        yield Static("", id="gen-dry")
                with TabPane("Variants", id="variants"):
                    yield VariantsView(id="gen-variants")
        yield JobStatus(id="gen-progress")
        yield Footer()

    def on_mount(self) -> None:
        from engine.generation.prompt import current_prompt

        p = current_prompt(self.app.ctx.workspace)
        self.query_one("#system", TextArea).load_text(p.system)
        self.query_one("#user", TextArea).load_text(p.user)
        self._show_version(p.version, saved=True)
        self._refresh_versions(p.version)
        self.set_interval(DRAIN_S, self._drain)
        self.set_interval(POLL_S, self._poll_detached)
        self._poll_detached()
        self._load_variants()
        if self.app.ctx.index is not None:
            self._compute_groups()
        else:
            self.query_one("#gen-preview", Static).update("load data on the Data screen (1) first")

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 100, "-narrow")  # an 80x24 terminal: settings on two rows

    def on_unmount(self) -> None:
        if self.job is not None:  # never leave a thread generating after the screen is gone
            self.job.cancel()

    # workers ---------------------------------------------------------------------------------
    def _work(self, fn, name: str, group: str) -> Worker:
        return self.run_worker(guarded(fn), name=name, group=group, exclusive=True, thread=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        error = worker_error(event)
        w = event.worker
        if error is not None:
            message = report_error(self, error, title=f"{w.name} failed")
            if w.group == "gen-job":
                self._job_finished(None, message)
            elif w.group == "gen-prepare":
                self._set_stats_text(f"not started: {message}")
            return
        if event.state == WorkerState.SUCCESS and isinstance(w.result, WorkerResult):
            self.post_message(w.result)

    # state helpers -----------------------------------------------------------------------
    def _saved(self) -> dict:
        """The settings to start from: the workspace's last ones over the user config's defaults."""
        from nlq_tui.config import generation_defaults, load_user_config

        try:
            value = self.app.ctx.workspace.get(SETTING) or {}
        except UserError:
            value = {}
        cfg = getattr(self.app.ctx, "user_config", None) or load_user_config()
        return generation_defaults(cfg, value if isinstance(value, dict) else {})

    def _text(self, id_: str) -> str:
        return self.query_one(f"#{id_}", Input).value.strip()

    def settings(self) -> dict:
        """The settings on screen, as the workspace remembers them (never the key itself)."""
        return {
            "backend": self.query_one("#backend", Select).value,
            "model": self._text("model"),
            "base_urls": self._text("base_urls"),
            "api_key_env": self._text("api_key_env") or "OPENAI_API_KEY",
            "concurrency": _number(self._text("concurrency"), "concurrency", int, 8),
            "groups": _number(self._text("groups"), "groups", int),
            "seed": _number(self._text("seed"), "seed", int, 0),
            "checks": self.query_one("#checks", Select).value,
            "price_in": _number(self._text("price_in"), "the price per 1M prompt tokens", float),
            "price_out": _number(self._text("price_out"), "the price per 1M completion tokens", float),
            "name": self._text("name"),
        }

    def job_spec(self, s: dict, prompt_version: int | None = None) -> JobSpec:
        """The screen's settings as the JobSpec that `nlq-tui generate` builds from its flags."""
        from engine.generation.jobs import JobSpec, check_spec

        ctx = self.app.ctx
        spec = JobSpec(
            data=str(ctx.data_root or ""), features=ctx.features, backend=s["backend"], model=s["model"] or None,
            base_urls=s["base_urls"].replace(",", " ").split() or None, api_key_env=s["api_key_env"],
            concurrency=s["concurrency"], groups=s["groups"], seed=s["seed"], checks=s["checks"],
            price_in=s["price_in"], price_out=s["price_out"], name=s["name"] or None, prompt_version=prompt_version,
        )  # fmt: skip
        return check_spec(spec)

    def _backend(self):
        from engine.generation.jobs import make_spec_backend

        return make_spec_backend(self.job_spec(self.settings()))

    def _prompt_on_screen(self):
        """The Prompt in the editor: the saved version if unchanged, else version 0 (unsaved)."""
        from engine.generation.prompt import Prompt, current_prompt

        system = self.query_one("#system", TextArea).text
        user = self.query_one("#user", TextArea).text
        cur = current_prompt(self.app.ctx.workspace)
        if cur.system == system and cur.user == user:
            return cur
        return Prompt(0, system, user, "unsaved")

    def _refresh_versions(self, current: int) -> None:
        from engine.generation.prompt import list_prompts

        versions = [p.version for p in list_prompts(self.app.ctx.workspace)] or [1]
        sel = self.query_one("#prompt-versions", Select)
        self._setting_versions = True
        sel.set_options([(f"v{v}", v) for v in versions])
        if current in versions:
            sel.value = current
        else:
            sel.clear()
        self._setting_versions = False

    @on(Select.Changed, "#prompt-versions")
    def _version_chosen(self, event: Select.Changed) -> None:
        if self._setting_versions or not isinstance(event.value, int):
            return
        from engine.generation.prompt import current_prompt, use_prompt

        if current_prompt(self.app.ctx.workspace).version == event.value and self._prompt_on_screen().version != 0:
            return
        p = use_prompt(self.app.ctx.workspace, int(event.value))
        self.query_one("#system", TextArea).load_text(p.system)
        self.query_one("#user", TextArea).load_text(p.user)
        notify(self, f"prompt v{p.version} in use")

    def _show_version(self, version: int, saved: bool) -> None:
        label = f"prompt v{version}" if saved else "prompt: unsaved edits (ctrl+s)"
        self.query_one("#gen-prompt-version", Static).update(label)

    def _group_index(self) -> int | None:
        if self.groups is None or not len(self.groups):
            return None
        try:
            i = int(self.query_one("#group", Input).value or 0)
        except ValueError:
            i = 0
        i = max(0, min(i, len(self.groups) - 1))
        return int(self.groups[i])

    # groups --------------------------------------------------------------------------------
    def _compute_groups(self) -> None:
        index = self.app.ctx.index

        def work() -> GroupsReady:
            from engine.generation.pipeline import select_groups
            from engine.windows import WindowParams, compute

            result = compute(index, WindowParams())
            return GroupsReady(result, select_groups(result))

        self._work(work, "groups", "gen-groups")

    def on_index_changed(self, event: IndexChanged) -> None:
        if event.error is None and event.index is not None:
            self._compute_groups()

    def on_groups_ready(self, message: GroupsReady) -> None:
        self.result, self.groups = message.result, message.groups
        self.query_one("#group", Input).placeholder = f"0..{max(0, len(self.groups) - 1)}"
        self._update_preview()

    # preview -----------------------------------------------------------------------------------
    @on(TextArea.Changed)
    def _prompt_edited(self) -> None:
        p = self._prompt_on_screen()
        self._show_version(p.version, saved=p.version != 0)
        if not self._preview_due:
            self._preview_due = True
            self.set_timer(0.15, self._update_preview)

    @on(Input.Changed, "#group")
    def _group_changed(self) -> None:
        self._update_preview()

    def _update_preview(self) -> None:
        self._preview_due = False
        g = self._group_index()
        if g is None or self.result is None:
            return
        from engine.generation.pipeline import preview_messages

        gd, messages = preview_messages(self.result, g, self._prompt_on_screen())
        # Groups are tiled k narrations apart (each narration asked about once); the Lab counts a
        # group at every narration, so its count is about k times this one.
        tiled = f"  ({len(self.groups):,} groups, one every {self.result.k} narrations; the Lab counts one at each)"
        lines = [content(("group ", "bold"), gd.key, (tiled, "dim"))]
        for m in messages:
            lines += [Content(""), content((f" {m['role']} ", "bold reverse")), plain_content(m["content"])]
        shown = NL.join(lines)
        self.preview_text = shown.plain
        self.query_one("#gen-preview", Static).update(shown)

    # actions -----------------------------------------------------------------------------------
    def action_focus_group(self) -> None:
        self.query_one("#group", Input).focus()

    def action_leave_input(self) -> None:
        """Escape: leave the text field, so that number keys switch screens again."""
        if isinstance(self.focused, (Input, TextArea)):
            self.query_one("#gen-feed", JobFeed).focus()

    def action_show_variants(self) -> None:
        self.query_one("#gen-tabs", TabbedContent).active = "variants"
        self._load_variants()

    def action_reset_prompt(self) -> None:
        from engine.generation.prompt import DEFAULT_PROMPT

        self.query_one("#system", TextArea).load_text(DEFAULT_PROMPT.system)
        self.query_one("#user", TextArea).load_text(DEFAULT_PROMPT.user)

    def action_save_prompt(self) -> None:
        from engine.generation.prompt import save_prompt

        try:
            p = save_prompt(self.app.ctx.workspace, self.query_one("#system", TextArea).text,
                            self.query_one("#user", TextArea).text)  # fmt: skip
        except UserError as exc:
            report_error(self, exc)
            return
        self._show_version(p.version, saved=True)
        self._refresh_versions(p.version)
        notify(self, f"prompt saved as version {p.version}")

    def action_dry_run(self) -> None:
        g = self._group_index()
        if g is None:
            notify(self, "no groups yet: load data on the Data screen first", severity="warning")
            return
        try:
            backend = self._backend()
        except UserError as exc:
            report_error(self, exc)
            return
        prompt, result = self._prompt_on_screen(), self.result
        self.query_one("#gen-tabs", TabbedContent).active = "dry"
        self.query_one("#gen-dry", Static).update(content(("asking ", "dim"), (backend.describe(), "dim"), " …"))

        def work() -> DryRunDone:
            from engine.generation.pipeline import dry_run

            return DryRunDone(asyncio.run(dry_run(result, g, backend, prompt)))

        self._work(work, "dry run", "gen-dry")

    def on_dry_run_done(self, message: DryRunDone) -> None:
        out = self.last_dry_run = message.out
        lines = [content(("group ", "bold"), out["group_key"], f"  tokens {out['tokens']:,}  {out['seconds']:.2f} s")]
        lines += [content((f"{i}. ", "dim"), t, limit=NARRATION_SHOWN) for i, t in enumerate(out["narrations"], 1)]
        if out.get("error"):
            lines += [Content(""), content(("request failed", "bold red"), ": ", one_line(out["error"]), " ",
                                           one_line(out.get("error_detail") or ""))]  # fmt: skip
        else:
            raw = out["raw"] if out["raw"] is not None else json.dumps(out["parsed"], ensure_ascii=False, indent=1)
            lines += [Content(""), content(("raw answer", "bold")), plain_content(raw, limit=200_000), Content(""),
                      content(("accepted", "bold"))]  # fmt: skip
            lines += [content(("✓ ", "green"), f"{q['narration']}. ", q["query"]) for q in out.get("accepted", [])]
            if out.get("rejected"):
                lines += [Content(""), content(("rejected", "bold"))]
            lines += [content(("✗ ", "red"), f"{r['narration'] or '-'} ", (one_line(r["reason"], 60), "bold"), ": ",
                              one_line(r["detail"])) for r in out.get("rejected", [])]  # fmt: skip
        shown = NL.join(lines)
        self.dry_text = shown.plain
        self.query_one("#gen-dry", Static).update(shown)

    # starting a job ----------------------------------------------------------------------------
    def _busy(self) -> str | None:
        if self.job is not None or (self.job_worker is not None and not self.job_worker.is_finished):
            return "a job is running; pause (F6) or cancel (F8) it first"
        if self.attached is not None:
            return f"a detached job (pid {self.attached.get('pid')}) is running; F8 stops it"
        return None

    def action_start(self) -> None:
        busy = self._busy()
        if busy:
            notify(self, busy, severity="warning")
            return
        index = self.app.ctx.index
        if index is None:
            notify(self, "no data loaded: choose a root on the Data screen (1)", severity="warning")
            return
        try:
            s = self.settings()
            self.job_spec(s)  # every setting checked before the prompt is saved
        except UserError as exc:
            report_error(self, exc)
            return
        prompt = self._prompt_on_screen()
        ws = self.app.ctx.workspace
        if prompt.version == 0:  # candidates must name a real prompt version
            self.action_save_prompt()
            prompt = self._prompt_on_screen()
        spec = self.job_spec(s, prompt.version)
        result, events = self.result, self._events
        self._set_stats_text("preparing: selecting groups …")

        def work() -> JobPrepared:
            from engine.generation.estimate import estimate_job
            from engine.generation.jobs import build_job

            job = build_job(spec, ws, index=index, result=result, on_event=events.append)
            try:
                job.prepare()  # takes the candidates lock: a second writer is refused here, nothing saved
                ws.set(SETTING, s)  # the key itself is never among them
                return JobPrepared(job, spec, estimate_job(job))
            except BaseException:
                job.close()
                raise

        self._work(work, "preparing the job", "gen-prepare")

    def on_job_prepared(self, message: JobPrepared) -> None:
        job = message.job
        st = job.stats
        summary = (f"{job.backend.describe()}, prompt v{job.prompt.version}, variant {job.variant.name}: "
                   f"{st.groups_total:,} groups selected, "
                   f"{st.groups_skipped:,} done before, {len(job.todo):,} to do")  # fmt: skip
        self._set_stats_text(f"ready: {summary}")

        def chosen(choice: str | None) -> None:
            if choice == "here":
                self._run_here(job)
            elif choice == "detach":
                job.close()  # the detached process takes the lock itself
                self._start_detached(message.spec)
            else:
                job.close()
                self._set_stats_text("not started")

        self.app.push_screen(StartJobModal(summary, message.estimate, len(job.todo)), chosen)

    def _run_here(self, job: GenerationJob) -> None:
        self.job = job
        self.query_one("#gen-tabs", TabbedContent).active = "feed"
        self._feed(("start ", "bold"), job.backend.describe(), f", prompt v{job.prompt.version}")
        self._set_stats_text("starting …")
        self.job_worker = self._work(lambda: JobEnded(job.run_sync()), "generation", "gen-job")

    def _start_detached(self, spec: JobSpec) -> None:
        from engine.generation.jobs import start_job

        try:
            p = start_job(self.app.ctx.workspace, spec)
        except UserError as exc:
            report_error(self, exc)
            return
        self._feed(("detached ", "bold"), f"pid {p.pid}: the job goes on when the app closes")
        self.query_one("#gen-tabs", TabbedContent).active = "feed"
        self._poll_detached()

    def on_job_ended(self, message: JobEnded) -> None:
        self._job_finished(message.stats, None)

    def _job_finished(self, stats, error: str | None) -> None:
        self._drain()
        job, self.job = self.job, None
        if job is not None:
            job.close()
        if stats is None:
            self._set_stats_text(f"failed: {error}")
        else:
            self.last_stats = stats.as_json()
            self._render_stats(self.last_stats, stats.eta)
            why = f"; {one_line(stats.error)}" if stats.error else ""
            notify(self, f"generation {stats.state}: {stats.groups_done:,} groups, {stats.questions_valid:,} questions"
                   f"{why}", severity="error" if stats.error else "information", timeout=12 if why else None)  # fmt: skip
        self._load_variants()

    # controlling a job -------------------------------------------------------------------------
    def action_pause(self) -> None:
        from engine.generation.jobs import job_dir, set_paused

        job, ws = self.job, self.app.ctx.workspace
        if job is not None:
            job.resume() if job.paused else job.pause()
            notify(self, "resumed" if not job.paused else "paused: requests in flight finish, no new ones start")
        elif self.attached is not None:
            pause = not (job_dir(ws) / "pause").exists()
            set_paused(ws, pause)
            notify(self, "asked the detached job to " + ("pause" if pause else "resume"))
        else:
            notify(self, "no job running", severity="warning")

    def action_cancel(self) -> None:
        from engine.generation.jobs import stop_job

        if self.job is not None:
            self.job.cancel()
            notify(self, "cancelling: requests in flight finish and are stored")
        elif self.attached is not None:
            try:
                pid = stop_job(self.app.ctx.workspace)
            except UserError as exc:
                report_error(self, exc)
                return
            notify(self, f"asked the detached job (pid {pid}) to stop; requests in flight finish and are stored")
        else:
            notify(self, "no job running", severity="warning")

    def quit_guard(self) -> str | None:
        """Why quitting now needs a question (an in-app job would die with the app), or None."""
        job = self.job
        if job is None:
            return None
        st = job.stats
        done = st.groups_done + st.groups_failed
        return f"A generation job runs in the app ({done:,}/{max(0, st.groups_total - st.groups_skipped):,} groups)."

    async def before_quit(self) -> None:
        """Stop the in-app job cleanly before the app exits: the requests in flight finish and are
        stored, the store closes and the candidates lock is released."""
        job, worker = self.job, self.job_worker
        if job is None:
            return
        job.cancel()
        self._set_stats_text("stopping: the requests in flight finish and are stored …")
        if worker is not None:
            try:
                await asyncio.wait_for(worker.wait(), QUIT_WAIT_S)
            except Exception:  # noqa: BLE001 - a failed or slow job must not keep the app from closing
                pass
        job.close()

    def confirm_quit(self, then) -> None:
        """Ask before quitting during a job; `then()` runs after a clean stop when the user says yes."""
        reason = self.quit_guard()
        if reason is None:
            then()
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self.before_quit()
                then()

        self.app.push_screen(QuitWhileRunningModal(reason), answered)

    # a detached job ------------------------------------------------------------------------------
    def _poll_detached(self) -> None:
        """Show the workspace's detached job, live, whichever session started it."""
        from engine.generation.jobs import LIVE_STATES, FeedTail, read_status

        if self.job is not None:
            return
        try:
            st = read_status(self.app.ctx.workspace)
        except (OSError, UserError):
            st = None
        was = self.attached
        if st is not None and st["state"] in LIVE_STATES:
            if was is None:
                self._feed_tail = FeedTail(self.app.ctx.workspace)
                self._feed(("attached ", "bold"), f"to the detached job (pid {st.get('pid')}) ",
                           (one_line(st.get("backend") or ""), "dim"))  # fmt: skip
            self.attached = st
            self._show_detached_feed()
            self._render_detached(st)
        elif was is not None:
            self.attached = None
            self._show_detached_feed()
            if st is not None:
                self._render_detached(st)
                self._feed(("detached job ", "bold"), st["state"], "  ", one_line(st.get("error") or ""))
            self._load_variants()
        elif st is not None and self.last_stats is None and self.job_worker is None:
            self._render_detached(st)  # the last detached job's end, until this screen runs one

    def _show_detached_feed(self) -> None:
        tail = self._feed_tail
        if tail is not None:
            self.query_one("#gen-feed", JobFeed).show_events(tail.read_new())

    def _render_detached(self, st: dict) -> None:
        self.step = st.get("step") if isinstance(st.get("step"), str) else None
        stats = st.get("stats")
        prefix = f"detached pid {st.get('pid')}" + (f" {one_line(st['variant'], 60)}" if st.get("variant") else "")
        if isinstance(stats, dict) and "groups_total" in stats:
            stats = {**stats, "state": st["state"]}
            self.last_stats = stats
            eta = st.get("eta") if isinstance(st.get("eta"), (int, float)) else None
            try:
                self._render_stats(stats, eta, prefix=prefix)
                return
            except (KeyError, TypeError, ValueError, AttributeError):
                pass  # a status written by another version: show its state alone
        self._set_stats_text(f"{prefix}  {st['state']}  {self.step or ''}  {one_line(st.get('error') or '')}")

    # the live feed -------------------------------------------------------------------------------
    def _feed(self, *parts: str | tuple[str, str]) -> None:
        self.query_one("#gen-feed", JobFeed).say(*parts)

    def _drain(self) -> None:
        events = []
        while self._events:
            events.append(self._events.popleft())
        if not events:
            return
        last_progress, step, stepped = self.query_one("#gen-feed", JobFeed).show_events(events)
        if stepped:
            self.step = step
        if last_progress is not None:
            self.last_stats = last_progress
            job = self.job
            self._render_stats(last_progress, job.stats.eta if job is not None else None)

    def _render_stats(self, st: dict, eta: float | None, prefix: str = "") -> None:
        self.query_one("#gen-progress", JobStatus).show(st, eta, prefix, self.step)

    def _set_stats_text(self, text: str) -> None:
        self.query_one("#gen-progress", JobStatus).set_text(text)

    # variants ------------------------------------------------------------------------------------
    def _load_variants(self) -> None:
        self.query_one("#gen-variants", VariantsView).load(self.app.ctx.workspace)
