"""The Data screen: choose the Ego4D root and feature folder, load it, see what is in it.

The path is checked as it is typed (cheap file-system tests only); Enter loads it in a worker
with a progress bar. A root that fails to load shows its one-line error here and changes
nothing else: the previous index, root and feature folder stay in use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Footer, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from engine.ego4d import layout
from engine.ego4d.layout import peek_feature_dim  # noqa: F401  (the screen's shape peek, kept importable)
from nlq_tui.bindings import DATA_BINDINGS, DATA_PICKER_BINDINGS
from nlq_tui.context import IndexChanged, LoadProgress
from nlq_tui.safe_text import content, display_path, notify, plain_text
from nlq_tui.widgets import Column, NavBar, SafeInput, VirtualTable
from nlq_tui.workers import error_message

NEWLINE = Content("\n")  # content() shows a str's newline as a space: line breaks are Content

# ---------------------------------------------------------------------------------------------
# Cheap checks (run on every keystroke; file-system metadata only)


def quick_check(text: str) -> tuple[bool, str]:
    """Whether `text` names an Ego4D root, and a one-line message saying why not / what next."""
    if not text.strip():
        return False, f"type the path of an Ego4D root: the folder with {layout.EGO4D_JSON} and {layout.ANNOTATIONS}/"
    p = Path(text.strip()).expanduser()
    if not p.exists():
        return False, f"{text.strip()}: no such folder"
    if not p.is_dir():
        return False, f"{text.strip()}: is a file; an Ego4D root is a folder"
    if not (p / layout.EGO4D_JSON).is_file():
        return False, f"{text.strip()}: no {layout.EGO4D_JSON} here, so this is not an Ego4D root"
    if not (p / layout.NARRATION_JSON).is_file():
        return False, f"{text.strip()}: no {layout.NARRATION_JSON} here"
    return True, "an Ego4D root: press enter to load it"


@dataclass
class FeatureFolder:
    name: str
    dim: int | None
    files: int
    covered: int | None  # videos of the loaded index with a file here (None: not loaded)


def list_feature_folders(root: Path, index=None) -> list[FeatureFolder]:
    """Feature folders under ROOT/v1 with their dimension and coverage, without torch."""
    uids = set(index.video_uids) if index is not None and Path(index.root).resolve() == root.resolve() else None
    out: list[FeatureFolder] = []
    for f in layout.list_feature_folders(root):
        if not f.files:
            continue
        covered = len(f.uids() & uids) if uids is not None else None
        out.append(FeatureFolder(f.name, f.peek_dim() or layout.KNOWN_DIMS.get(f.name), len(f.files), covered))
    return out


class DirSuggester(Suggester):
    """Completes the last part of a path with the first matching sub-folder."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        p = Path(value).expanduser()
        parent, prefix = (p, "") if value.endswith("/") else (p.parent, p.name)
        try:
            names = sorted(
                e.name
                for e in os.scandir(parent)
                if e.is_dir() and e.name.startswith(prefix) and not e.name.startswith(".")
            )
        except OSError:
            return None
        if not names or (names[0] == prefix):
            return None
        return value + names[0][len(prefix) :] + "/"


class FolderTree(DirectoryTree):
    """Folders only: a data root is a folder."""

    def filter_paths(self, paths):
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class RootPicker(ModalScreen[Path | None]):
    """Browse folders; enter on an Ego4D root picks it, on any other folder opens it."""

    BINDINGS = DATA_PICKER_BINDINGS

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box"):
            yield Static(
                "[b]Choose the data root[/]  [dim]enter: open a folder, or pick an Ego4D root · "
                "backspace: the folder above · esc: cancel[/]"
            )
            yield FolderTree(self.start, id="picker-tree")
            yield Static("", id="picker-check")

    def on_tree_node_highlighted(self, event) -> None:
        data = getattr(event.node, "data", None)
        if data is not None:
            ok, message = quick_check(str(data.path))
            self.query_one("#picker-check", Static).update(content((message, "green" if ok else "dim")))

    @on(DirectoryTree.DirectorySelected)
    def _selected(self, event: DirectoryTree.DirectorySelected) -> None:
        if quick_check(str(event.path))[0]:
            self.dismiss(event.path)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_up(self) -> None:
        """Browse the folder above the tree's top one (the tree alone never goes above where it started)."""
        tree = self.query_one("#picker-tree", FolderTree)
        here = Path(tree.path).resolve()
        if here.parent != here:
            tree.path = here.parent
            self.query_one("#picker-check", Static).update(content((display_path(here.parent), "dim")))


# ---------------------------------------------------------------------------------------------
# Counts as a user reads them

COUNT_LABELS = [
    ("videos", "videos"),
    ("narrated_videos", "narrated videos"),
    ("clips", "clips"),
    ("videos_without_clips", "videos without clips"),
    ("narrations", "narrations"),
    ("unsure_narrations", "#unsure narrations"),
    ("other_person_narrations", "#O narrations"),
    ("queries", "NLQ queries"),
    ("train_videos", "train videos"),
    ("val_videos", "val videos (excluded)"),
    ("test_videos", "test videos (excluded)"),
    ("excluded_videos", "excluded videos"),
    ("feature_dir", "feature folder"),
    ("feature_files", "feature files"),
    ("empty_feature_files", "empty feature files"),
    ("videos_with_features", "videos with features"),
    ("feature_coverage", "narrated w/ features"),
]


def _fmt_value(key: str, v) -> str:
    if isinstance(v, dict):
        return " · ".join(f"{k.replace('pass_', 'p')} {_fmt_value(k, x)}" for k, x in v.items())
    if key == "feature_coverage" and isinstance(v, float):
        return f"{100 * v:.1f}%"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def counts_table(counts: dict) -> Table:
    grid = Table.grid(padding=(0, 2), expand=True)
    grid.add_column(style="bold", no_wrap=True, overflow="ellipsis", width=21)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    shown = set()
    for key, label in COUNT_LABELS:
        if key in counts:
            shown.add(key)
            grid.add_row(label, plain_text(_fmt_value(key, counts[key]), newlines=False))
    for key, v in counts.items():  # figures added to the engine later still show
        if key not in shown and key not in (
            "videos_in_ego4d_json",
            "videos_without_features",
            "narrated_videos_with_features",
        ):
            grid.add_row(plain_text(key.replace("_", " ")), plain_text(_fmt_value(key, v), newlines=False))
    return grid


def _short_file(rel: str) -> str:
    prefix = f"{layout.ANNOTATIONS}/"
    return rel[len(prefix) :] if rel.startswith(prefix) else rel


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _what(issue) -> str:
    """The message without the file name the table already shows in its own column."""
    message = issue.message
    for prefix in (f"{issue.file}: ", f"{issue.file} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


class DataScreen(Screen):
    """Data root and feature folder in; counts, coverage, warnings and errors out."""

    CSS_PATH = Path(__file__).with_name("data.tcss")  # absolute: subclasses elsewhere keep it
    BINDINGS = DATA_BINDINGS
    AUTO_FOCUS = "#features"  # not the path input: the number keys must switch screens

    def __init__(self) -> None:
        super().__init__()
        self.folders: list[FeatureFolder] = []
        self.issues: list = []

    def compose(self) -> ComposeResult:
        yield NavBar()
        with Horizontal(id="root-row"):
            yield Label("Data root", classes="field-label")
            yield SafeInput(
                id="root",
                compact=True,
                suggester=DirSuggester(),
                placeholder=f"path of the Ego4D folder ({layout.EGO4D_JSON}, {layout.ANNOTATIONS}/)",
            )
        yield Static("", id="root-check")
        yield Static("", id="load-error", classes="error-panel")
        with Horizontal(id="load-row"):
            yield ProgressBar(id="progress", show_eta=False)
            yield Static("", id="load-stage")
        with Horizontal(id="data-body"):
            with Vertical(id="features-box"):
                yield Label("[b]Feature folders[/] [dim]enter: use[/]")
                yield OptionList(id="features")
            with VerticalScroll(id="counts-box"):
                yield Static("", id="counts")
        yield Label("[b]Warnings and errors[/]", id="issues-title")
        yield VirtualTable(
            [Column("level", 7), Column("file", 20), Column("what", None, min_width=20), Column("count", 7, "right")],
            id="issues",
            empty_text="nothing to report",
        )
        yield Footer()

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < 100, "-narrow")

    def on_mount(self) -> None:
        ctx = self.app.ctx
        self.query_one("#load-error").display = False
        self.query_one("#load-row").display = False
        root_input = self.query_one("#root", Input)
        with root_input.prevent(Input.Changed):
            root_input.value = display_path(ctx.data_root)
        self._validate(root_input.value)
        if ctx.index is not None:
            self._show_index()
        elif ctx.data_root is None:
            root_input.focus()
        if ctx.load_error:  # the start-up load failed before this screen was built
            self._show_error(ctx.load_error, load_failed=True)
        self.call_after_refresh(self._refresh_folders, root_input.value)

    # the root path -----------------------------------------------------------------------
    def _validate(self, text: str) -> bool:
        ok, message = quick_check(text)
        self.query_one("#root-check", Static).update(content((message, "green" if ok else "yellow")))
        return ok

    @on(Input.Changed, "#root")
    def _root_changed(self, event: Input.Changed) -> None:
        if self._validate(event.value):
            self._refresh_folders(event.value)

    @on(Input.Submitted, "#root")
    def _root_submitted(self, event: Input.Submitted) -> None:
        if not self._validate(event.value):
            ok, message = quick_check(event.value)
            self._show_error(message)
            return
        root = Path(event.value.strip()).expanduser().resolve()
        features = self.app.ctx.features
        names = [f.name for f in self.folders]
        if names and features not in names:
            features = max(self.folders, key=lambda f: f.files).name
            notify(self, f"no {self.app.ctx.features} folder here; using {features}", title="Features")
        self.app.load_data(root, features)

    @work(thread=True, exclusive=True, group="data-folders", exit_on_error=False)
    def _refresh_folders(self, text: str) -> list[FeatureFolder]:
        if not text.strip():
            return []
        root = Path(text.strip()).expanduser()
        if not root.is_dir():
            return []
        return list_feature_folders(root, self.app.ctx.index)

    def _show_folders(self, folders: list[FeatureFolder]) -> None:
        self.folders = folders
        ctx = self.app.ctx
        ol = self.query_one("#features", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        if not folders:
            ol.add_option(Option("[dim]no feature folders under v1/[/]", id="-", disabled=True))
            return
        n_videos = ctx.index.n_videos if ctx.index is not None else None
        for f in folders:
            mark = "●" if f.name == ctx.features and ctx.index is not None else " "
            dim = f"{f.dim}-d" if f.dim else "?-d"
            cover = f"{f.covered:,}/{n_videos:,} videos" if f.covered is not None and n_videos else f"{f.files:,} files"
            prompt = content(f"{mark} {f.name}", NEWLINE, "    ", (f"{dim} · {cover}", "dim"))
            ol.add_option(Option(prompt, id=f.name))
        if highlighted is not None and highlighted < len(folders):
            ol.highlighted = highlighted

    @on(OptionList.OptionSelected, "#features")
    def _feature_selected(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id
        if not name or name == "-":
            return
        text = self.query_one("#root", Input).value
        ok, message = quick_check(text)
        if not ok:
            self._show_error(message)
            return
        self.app.load_data(Path(text.strip()).expanduser().resolve(), name)

    # loading -------------------------------------------------------------------------------
    def on_load_progress(self, event: LoadProgress) -> None:
        self.query_one("#load-row").display = True
        bar = self.query_one("#progress", ProgressBar)
        if event.total:
            bar.update(total=event.total, progress=event.done)
        else:
            bar.update(total=None)
        self.query_one("#load-stage", Static).update(content((event.stage, "dim")))

    def on_index_changed(self, event: IndexChanged) -> None:
        self.query_one("#load-row").display = False
        if event.error is not None:
            self._show_error(event.error, load_failed=True)
            return
        self.query_one("#load-error").display = False
        root_input = self.query_one("#root", Input)
        with root_input.prevent(Input.Changed):
            root_input.value = display_path(self.app.ctx.data_root)
        self._validate(root_input.value)
        self._show_index()
        self._refresh_folders(root_input.value)

    def _show_error(self, message: str, load_failed: bool = False) -> None:
        ctx = self.app.ctx
        kept = (
            f"still using {display_path(ctx.data_root)} ({ctx.features})" if ctx.index is not None else "no data loaded"
        )
        panel = self.query_one("#load-error", Static)
        panel.update(content(("Not loaded:", "bold"), " ", message, NEWLINE, (kept, "dim")))
        panel.display = True
        if not load_failed:
            return
        # The typed folder passed the quick check but its files did not load: the hint under the
        # path must not still invite a load as if nothing happened, and with no index kept the
        # table shows the error rather than "nothing to report".
        hint = "not loaded (above): fix or replace that file, then press enter to load again"
        self.query_one("#root-check", Static).update(content((hint, "yellow")))
        if ctx.index is None:
            from engine.index import Issue

            self._set_issues([Issue("error", "not_loaded", "", message)])

    def _show_index(self) -> None:
        ctx = self.app.ctx
        if ctx.index is None:
            return
        self.query_one("#counts", Static).update(counts_table(ctx.counts or ctx.index.counts))
        self._set_issues(list(ctx.index.issues) + list(ctx.extra_issues))

    def _set_issues(self, issues: list) -> None:
        issues = sorted(issues, key=lambda i: (i.level != "error", i.file))
        self.issues = issues
        table = self.query_one("#issues", VirtualTable)
        table.set_source(
            len(issues),
            lambda i: (issues[i].level, _short_file(issues[i].file), _what(issues[i]), f"{issues[i].count:,}"),
        )
        n_err = sum(1 for i in issues if i.level == "error")
        self.query_one("#issues-title", Label).update(
            f"[b]Warnings and errors[/] [dim]{_count(n_err, 'error')} · {_count(len(issues) - n_err, 'warning')}[/]"
        )

    # the full check (opens feature files, so torch loads) ----------------------------------------
    def action_full_check(self) -> None:
        ctx = self.app.ctx
        text = self.query_one("#root", Input).value
        ok, message = quick_check(text)
        if not ok:
            self._show_error(message)
            return
        self.notify("checking every file; feature files are opened, this can take a while", title="Full check")
        self._full_check(Path(text.strip()).expanduser().resolve(), ctx.features)

    @work(thread=True, exclusive=True, group="data-check", exit_on_error=False)
    def _full_check(self, root: Path, features: str):
        from engine.ego4d import check

        return check(root, features=features)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        group = worker.group
        if event.state == WorkerState.SUCCESS:
            if group == "data-folders":
                self._show_folders(worker.result)
            elif group == "data-check":
                report = worker.result
                self.query_one("#counts", Static).update(counts_table(report.counts))
                self._set_issues(list(report.issues))
                dims = {d["name"]: d.get("dim") for d in report.feature_dirs}  # read with torch: authoritative
                self._show_folders(
                    [FeatureFolder(f.name, dims.get(f.name) or f.dim, f.files, f.covered) for f in self.folders]
                )
                self.notify(
                    f"{len(report.errors)} errors, {len(report.warnings)} warnings",
                    title="Full check",
                    severity="error" if report.errors else "information",
                )
        elif event.state == WorkerState.ERROR and group.startswith("data-"):
            message = error_message(worker.error)
            if group == "data-check":
                self._show_error(message)
            else:
                notify(self, message, severity="warning")

    # actions ---------------------------------------------------------------------------------
    def action_leave_input(self) -> None:
        self.query_one("#features", OptionList).focus()

    def action_focus_root(self) -> None:
        self.query_one("#root", Input).focus()

    def action_reload(self) -> None:
        ctx = self.app.ctx
        if ctx.data_root is None:
            self.action_focus_root()
            return
        self.app.load_data(ctx.data_root, ctx.features)

    def action_browse(self) -> None:
        text = self.query_one("#root", Input).value.strip()
        here = Path(text).expanduser() if text else None
        # Start beside the typed folder (so it and its siblings show), else in the current one.
        start = here.parent if here is not None and here.is_dir() else Path.cwd()
        self.app.push_screen(RootPicker(start.resolve()), self._picked)

    def _picked(self, path: Path | None) -> None:
        if path is None:
            return
        root_input = self.query_one("#root", Input)
        root_input.value = display_path(path)
        root_input.focus()
        notify(self, "press enter to load it", title=display_path(path))

    def action_focus_features(self) -> None:
        self.query_one("#features", OptionList).focus()

    @on(VirtualTable.RowSelected, "#issues")
    def _issue_selected(self, event: VirtualTable.RowSelected) -> None:
        issue = self.issues[event.row]
        notify(
            self,
            issue.message,
            title=f"{issue.level}: {issue.code}",
            severity="error" if issue.level == "error" else "warning",
            timeout=10,
        )

    def action_focus_issues(self) -> None:
        self.query_one("#issues", VirtualTable).focus()
