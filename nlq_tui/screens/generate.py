"""The Generate screen: backend settings, the prompt with a live preview, dry run, and the job.

- Settings: backend, model, base URL(s), the name of the environment variable with the API key
  (the key itself is never asked for or stored), concurrency, groups, seed, checks.
- The prompt (system and user message) in TextAreas; the preview under "Messages" shows the
  exact messages for the chosen group and follows every edit. Ctrl+S saves a new version.
- Dry run (F2): one group, the raw answer and what validation made of it; nothing is stored.
- Start (F5), pause / resume (F6), cancel (F8): the job runs in a thread worker with its own
  event loop, so the app stays usable; its events are queued and drawn a few times a second.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, ProgressBar, RichLog, Select, Static, TabbedContent, TabPane, TextArea
from textual.worker import Worker, WorkerState

from engine.errors import UserError
from nlq_tui.bindings import GENERATE_BINDINGS
from nlq_tui.context import IndexChanged
from nlq_tui.widgets import NavBar

if TYPE_CHECKING:
    from engine.generation.pipeline import GenerationJob
    from engine.windows import WindowResult

SETTING = "generation"  # workspace setting: the screen's last settings (never the API key)
FEED_LINES = 400
DRAIN_S = 0.2


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


class GenerateScreen(Screen):
    """Settings, prompt and preview on top; progress and the live feed of the job below."""

    CSS_PATH = Path(__file__).with_name("generate.tcss")
    BINDINGS = GENERATE_BINDINGS
    AUTO_FOCUS = "#gen-feed"  # not an input: the number keys must switch screens

    def __init__(self) -> None:
        super().__init__()
        self.result: WindowResult | None = None
        self.groups = None  # np.ndarray: the tiled groups the preview and dry run choose from
        self.job: GenerationJob | None = None
        self._events: collections.deque = collections.deque()
        self._preview_due = False
        self.last_dry_run: dict | None = None
        self.preview_text = ""
        self.dry_text = ""
        self.last_stats: dict | None = None

    # layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        saved = self._saved()
        yield NavBar()
        with Horizontal(id="gen-settings"):
            yield Label("backend", classes="param-label")
            yield Select([("template", "template"), ("openai", "openai"), ("hf", "hf")], value=saved.get("backend", "template"),
                         id="backend", allow_blank=False, compact=True)  # fmt: skip
            yield Label("model", classes="param-label")
            yield Input(saved.get("model", ""), placeholder="name or folder", id="model", compact=True)
            yield Label("url", classes="param-label")
            yield Input(saved.get("base_urls", ""), placeholder="http://host:8000/v1 …", id="base_urls", compact=True)
            yield Label("key env", classes="param-label")
            yield Input(saved.get("api_key_env", "OPENAI_API_KEY"), id="api_key_env", compact=True)
        with Horizontal(id="gen-settings2"):
            yield Label("concurrency", classes="param-label")
            yield Input(str(saved.get("concurrency", 8)), id="concurrency", type="integer", compact=True)
            yield Label("groups", classes="param-label")
            yield Input(
                str(saved.get("groups", "") or ""), placeholder="all", id="groups", type="integer", compact=True
            )
            yield Label("seed", classes="param-label")
            yield Input(str(saved.get("seed", 0)), id="seed", type="integer", compact=True)
            yield Label("checks", classes="param-label")
            yield Select([("full", "full"), ("fast", "fast")], value=saved.get("checks", "full"), id="checks",
                         allow_blank=False, compact=True)  # fmt: skip
            yield Label("$/1k tok", classes="param-label")
            yield Input(str(saved.get("price_per_1k") or ""), placeholder="-", id="price", type="number", compact=True)
            yield Label("group", classes="param-label")
            yield Input("0", id="group", type="integer", compact=True)
            yield Static("", id="gen-prompt-version")
            yield Select([], prompt="version", id="prompt-versions", compact=True, allow_blank=True)
        with Horizontal(id="gen-body"):
            with Vertical(id="gen-prompt"):
                yield Label("system message", classes="section")
                yield TextArea("", id="system", soft_wrap=True, show_line_numbers=False)
                yield Label("user message ({narrations} = the numbered narrations)", classes="section")
                yield TextArea("", id="user", soft_wrap=True, show_line_numbers=False)
            with TabbedContent(id="gen-tabs", initial="feed"):
                with TabPane("Feed", id="feed"):
                    yield RichLog(id="gen-feed", max_lines=FEED_LINES, wrap=True, markup=True)
                with TabPane("Messages", id="preview"):
                    with VerticalScroll():
                        yield Static("", id="gen-preview")
                with TabPane("Dry run", id="dry"):
                    with VerticalScroll():
                        yield Static("", id="gen-dry")
        with Horizontal(id="gen-progress"):
            yield ProgressBar(id="gen-bar", show_eta=False)
            yield Static("idle", id="gen-stats")
        yield Footer()

    def on_mount(self) -> None:
        from engine.generation.prompt import current_prompt

        p = current_prompt(self.app.ctx.workspace)
        self.query_one("#system", TextArea).load_text(p.system)
        self.query_one("#user", TextArea).load_text(p.user)
        self._show_version(p.version, saved=True)
        self._refresh_versions(p.version)
        self.set_interval(DRAIN_S, self._drain)
        if self.app.ctx.index is not None:
            self._compute_groups()
        else:
            self.query_one("#gen-preview", Static).update("[dim]load data on the Data screen (1) first[/]")

    # state helpers -----------------------------------------------------------------------
    def _saved(self) -> dict:
        try:
            value = self.app.ctx.workspace.get(SETTING) or {}
        except UserError:
            value = {}
        return value if isinstance(value, dict) else {}

    def settings(self) -> dict:
        """The settings on screen (validated lightly; make_backend checks the rest)."""

        def text(id_: str) -> str:
            return self.query_one(f"#{id_}", Input).value.strip()

        from engine.errors import ConfigError

        try:
            concurrency = int(text("concurrency") or 8)
            groups = _int_or_none(text("groups"))
            seed = int(text("seed") or 0)
        except ValueError:
            raise ConfigError("concurrency, groups and seed must be whole numbers") from None
        try:
            price = float(text("price")) if text("price") else None
        except ValueError:
            raise ConfigError("the price per 1000 tokens must be a number (or empty)") from None
        return {
            "backend": self.query_one("#backend", Select).value,
            "model": text("model"),
            "base_urls": text("base_urls"),
            "api_key_env": text("api_key_env") or "OPENAI_API_KEY",
            "concurrency": concurrency,
            "groups": groups,
            "seed": seed,
            "checks": self.query_one("#checks", Select).value,
            "price_per_1k": price,
        }

    def _backend(self, s: dict):
        from engine.generation.pipeline import make_backend

        return make_backend(
            s["backend"],
            model=s["model"] or None,
            base_urls=s["base_urls"].replace(",", " ").split() or None,
            api_key_env=s["api_key_env"],
            concurrency=s["concurrency"],
            price_per_1k=s["price_per_1k"],
        )

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
        if getattr(self, "_setting_versions", False) or not isinstance(event.value, int):
            return
        from engine.generation.prompt import current_prompt, use_prompt

        if current_prompt(self.app.ctx.workspace).version == event.value and self._prompt_on_screen().version != 0:
            return
        p = use_prompt(self.app.ctx.workspace, int(event.value))
        self.query_one("#system", TextArea).load_text(p.system)
        self.query_one("#user", TextArea).load_text(p.user)
        self.notify(f"prompt v{p.version} in use")

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
        self.run_worker(self._groups_worker, name="gen-groups", group="gen-groups", exclusive=True, thread=True,
                        exit_on_error=False)  # fmt: skip

    def _groups_worker(self):
        from engine.generation.pipeline import select_groups
        from engine.windows import WindowParams, compute

        index = self.app.ctx.index
        result = compute(index, WindowParams())
        return result, select_groups(result)

    def on_index_changed(self, event: IndexChanged) -> None:
        if event.error is None and event.index is not None:
            self._compute_groups()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        w = event.worker
        if event.state == WorkerState.ERROR:
            exc = w.error
            msg = str(exc) if isinstance(exc, UserError) else f"unexpected {type(exc).__name__}: {exc}"
            self.notify(msg, title=f"{w.name} failed", severity="error", timeout=8)
            if w.group == "gen-job":
                self._drain()
                self._set_stats_text(f"failed: {msg}")
                if self.job is not None:
                    self.job.close()
                self.job = None
            return
        if event.state != WorkerState.SUCCESS:
            return
        if w.group == "gen-groups":
            self.result, self.groups = w.result
            self.query_one("#group", Input).placeholder = f"0..{max(0, len(self.groups) - 1)}"
            self._update_preview()
        elif w.group == "gen-dry":
            self._show_dry_run(w.result)
        elif w.group == "gen-job":
            self._drain()
            st = w.result
            self.last_stats = st.as_json() if st is not None else None
            if st is not None:
                self._render_stats(self.last_stats, st.eta)
                self.notify(f"generation {st.state}: {st.groups_done:,} groups, {st.questions_valid:,} questions",
                            severity="error" if st.error else "information")  # fmt: skip
            self.job = None

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
        lines = [f"[b]group[/] {escape(gd.key)}  [dim]({len(self.groups):,} groups)[/]"]
        for m in messages:
            lines.append(f"\n[b reverse] {m['role']} [/]")
            lines.append(escape(m["content"]))
        self.preview_text = "\n".join(lines)
        self.query_one("#gen-preview", Static).update(self.preview_text)

    # actions -----------------------------------------------------------------------------------
    def action_focus_group(self) -> None:
        self.query_one("#group", Input).focus()

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
            self.notify(str(exc), severity="error")
            return
        self._show_version(p.version, saved=True)
        self._refresh_versions(p.version)
        self.notify(f"prompt saved as version {p.version}")

    def action_dry_run(self) -> None:
        g = self._group_index()
        if g is None:
            self.notify("no groups yet: load data on the Data screen first", severity="warning")
            return
        try:
            backend = self._backend(self.settings())
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        prompt = self._prompt_on_screen()
        result = self.result
        self.query_one("#gen-tabs", TabbedContent).active = "dry"
        self.query_one("#gen-dry", Static).update(f"[dim]asking {escape(backend.describe())} …[/]")

        def work():
            import asyncio

            from engine.generation.pipeline import dry_run

            return asyncio.run(dry_run(result, g, backend, prompt))

        self.run_worker(work, name="dry run", group="gen-dry", exclusive=True, thread=True, exit_on_error=False)

    def _show_dry_run(self, out: dict) -> None:
        self.last_dry_run = out
        lines = [f"[b]group[/] {escape(out['group_key'])}  tokens {out['tokens']:,}  {out['seconds']:.2f} s"]
        lines += [f"[dim]{i}.[/] {escape(t)}" for i, t in enumerate(out["narrations"], 1)]
        if out.get("error"):
            lines.append(f"\n[b red]request failed[/]: {escape(out['error'])} {escape(out.get('error_detail') or '')}")
        else:
            lines.append("\n[b]raw answer[/]")
            raw = out["raw"] if out["raw"] is not None else json.dumps(out["parsed"], ensure_ascii=False, indent=1)
            lines.append(escape(raw))
            lines.append("\n[b]accepted[/]")
            lines += [f"[green]✓[/] {q['narration']}. {escape(q['query'])}" for q in out.get("accepted", [])]
            if out.get("rejected"):
                lines.append("\n[b]rejected[/]")
                lines += [
                    f"[red]✗[/] {r['narration'] or '-'} [b]{r['reason']}[/]: {escape(r['detail'])}"
                    for r in out["rejected"]
                ]
        self.dry_text = "\n".join(lines)
        self.query_one("#gen-dry", Static).update(self.dry_text)

    def action_start(self) -> None:
        if self.job is not None:
            self.notify("a job is running; pause (F6) or cancel (F8) it first", severity="warning")
            return
        index = self.app.ctx.index
        if index is None:
            self.notify("no data loaded: choose a root on the Data screen (1)", severity="warning")
            return
        try:
            s = self.settings()
            backend = self._backend(s)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        prompt = self._prompt_on_screen()
        ws = self.app.ctx.workspace
        if prompt.version == 0:  # candidates must name a real prompt version
            self.action_save_prompt()
            from engine.generation.prompt import current_prompt

            prompt = current_prompt(ws)
        ws.set(SETTING, {k: v for k, v in s.items()})  # the key itself is never among them
        from engine.generation.pipeline import GenerationJob

        job = GenerationJob(index, ws, backend, groups=s["groups"], seed=s["seed"], checks=s["checks"],
                            prompt=prompt, result=self.result, on_event=self._events.append)  # fmt: skip
        self.job = job
        self.query_one("#gen-tabs", TabbedContent).active = "feed"
        self.query_one("#gen-feed", RichLog).write(
            f"[b]start[/] {escape(backend.describe())}, prompt v{prompt.version}"
        )
        self._set_stats_text("preparing …")

        def work():
            return job.run_sync()

        self.run_worker(work, name="generation", group="gen-job", exclusive=True, thread=True, exit_on_error=False)

    def action_pause(self) -> None:
        job = self.job
        if job is None:
            self.notify("no job running", severity="warning")
            return
        if job.paused:
            job.resume()
            self.notify("resumed")
        else:
            job.pause()
            self.notify("paused: requests in flight finish, no new ones start")

    def action_cancel(self) -> None:
        job = self.job
        if job is None:
            self.notify("no job running", severity="warning")
            return
        job.cancel()
        self.notify("cancelling: requests in flight finish and are stored")

    # the live feed -------------------------------------------------------------------------------
    def _drain(self) -> None:
        events = []
        while self._events:
            events.append(self._events.popleft())
        if not events:
            return
        feed = self.query_one("#gen-feed", RichLog)
        last_progress = None
        shown = 0
        for ev in events:
            kind = ev["type"]
            if kind == "progress":
                last_progress = ev["stats"]
            elif kind == "failure":
                feed.write(
                    f"[b red]![/] {escape(ev['group_key'])}: request failed, [b]{ev['reason']}[/] {escape(ev['detail'])}"
                )
            elif kind == "group" and shown < 40:  # at template speed, a sample is all a person reads
                shown += 1
                for c in ev["candidates"][:5]:
                    ch = c["checks"]
                    flags = [n for n, on_ in (("dup", ch.get("duplicate_of")), ("near-dup", ch.get("near_duplicate_of")),
                                               ("ambiguous", (ch.get("ambiguity") or 0) > 0),
                                               ("window", ch.get("window_problems"))) if on_]  # fmt: skip
                    extra = f" [yellow]{' '.join(flags)}[/]" if flags else ""
                    feed.write(f"[green]+[/] {escape(c['query'])} [dim]{escape(ch.get('template') or '')}[/]{extra}")
                for r in ev["rejected"][:5]:
                    raw = r.get("raw")
                    raw = escape(str(raw)[:80]) if raw else ""
                    feed.write(f"[red]✗[/] [b]{r['reason']}[/] {escape(r['detail'])} [dim]{raw}[/]")
        if last_progress is not None:
            self.last_stats = last_progress
            job = self.job
            self._render_stats(last_progress, job.stats.eta if job is not None else None)

    def _render_stats(self, st: dict, eta: float | None) -> None:
        todo = max(0, st["groups_total"] - st["groups_skipped"])
        done = st["groups_done"] + st["groups_failed"]
        bar = self.query_one("#gen-bar", ProgressBar)
        bar.update(total=max(1, todo), progress=done)
        cost = f"  ${st['cost']:.4f}" if st.get("cost") is not None else ""
        rej = sum(st["questions_rejected"].values())
        self._set_stats_text(
            f"{st['state']}  {done:,}/{todo:,} groups ({st['groups_skipped']:,} done before)  "
            f"{st['groups_per_second']:.1f}/s  ETA {_fmt_eta(eta)}  valid {st['questions_valid']:,}  "
            f"rejected {rej:,}  failed {st['failed_requests']:,}  tokens {st['tokens']:,}{cost}"
        )

    def _set_stats_text(self, text: str) -> None:
        self.query_one("#gen-stats", Static).update(text)
