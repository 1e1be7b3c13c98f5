"""The command line's niceties: --version, shell completion, the user config and its precedence,
`logs -f`, `review --status`, and the check that `engine` is ours."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env.pop("NLQ_WORKSPACE", None)
    env.update(extra)
    return env


def _cli(tmp_path, *argv, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nlq_tui", *argv],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=120,
    )


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    """An empty XDG config home for this test; returns the config file's path (not yet written)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NLQ_WORKSPACE", raising=False)
    path = tmp_path / "xdg" / "nlq-tui" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


# -- --version ----------------------------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path):
    from nlq_tui import __version__

    out = _cli(tmp_path, "--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"nlq-tui {__version__}"


# -- completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_names_every_subcommand_flag_and_choice(shell, capsys):
    from nlq_tui.cli import build_parser, main, subparsers

    assert main(["completion", shell]) == 0
    text = capsys.readouterr().out
    names = subparsers(build_parser())
    assert {"generate", "review", "logs", "completion", "export", "runs"} <= set(names)
    for name in names:
        assert name in text, name
    for word in ("--backend", "template openai hf", "--workspace", "--screen"):
        assert word.lstrip("-") in text, word


def test_bash_completion_is_valid_bash_and_completes_commands_flags_and_values(tmp_path, capsys):
    from nlq_tui.cli import main

    main(["completion", "bash"])
    script = tmp_path / "nlq-tui.bash"
    script.write_text(capsys.readouterr().out)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0

    def complete(*words: str) -> list[str]:
        words_q = " ".join(f"'{w}'" for w in ("nlq-tui", *words))
        probe = (
            f'source "{script}"; COMP_WORDS=({words_q}); COMP_CWORD={len(words)}; _nlq_tui; echo "${{COMPREPLY[@]}}"'
        )
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("gen") == ["generate"]
    assert complete("generate", "--backend", "") == ["template", "openai", "hf"]
    assert {"--backend", "--base-url", "--batch-size"} <= set(complete("generate", "--ba"))
    assert complete("completion", "") == ["bash", "zsh", "fish"]
    (tmp_path / "data-folder").mkdir()
    assert "data-folder" in complete("--data", "data-")  # a path flag completes file names


@pytest.mark.parametrize("shell,check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_zsh_and_fish_scripts_parse_in_their_shell(shell, check, tmp_path, capsys):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{check[0]} is not installed here; the script is still generated (test above)")
    from nlq_tui.cli import main

    main(["completion", shell])
    script = tmp_path / f"nlq-tui.{shell}"
    script.write_text(capsys.readouterr().out)
    out = subprocess.run([*check, str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_fish_completes_commands_and_flag_values(tmp_path, capsys):
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed here")
    from nlq_tui.cli import main

    main(["completion", "fish"])
    script = tmp_path / "nlq-tui.fish"
    script.write_text(capsys.readouterr().out)

    def complete(line: str) -> list[str]:
        out = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(os.environ, HOME=str(tmp_path)),
        )
        assert out.returncode == 0, out.stderr
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("nlq-tui gen") == ["generate"]
    assert sorted(complete("nlq-tui generate --backend ")) == ["hf", "openai", "template"]


# -- the user config ------------------------------------------------------------------------------

CONFIG = """
workspace = "{ws}"
reviewer = "cfg-reviewer"
theme = "nord"

[generate]
backend = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "cfg-model"

[keymap]
"app.screen.lab" = "l"
"""


def _args(**kw) -> argparse.Namespace:
    base = {"data": None, "workspace": None, "screen": None, "reviewer": None}
    return argparse.Namespace(**{**base, **kw})


def test_workspace_comes_from_the_flag_then_nlq_workspace_then_the_config(user_config, tmp_path, monkeypatch):
    from nlq_tui.config import load_user_config, resolve_workspace
    from nlq_tui.context import AppContext

    user_config.write_text(CONFIG.format(ws=tmp_path / "from-config"))
    cfg = load_user_config()
    assert cfg.path == user_config and cfg.unknown == []
    assert resolve_workspace(None, cfg, {}) == str(tmp_path / "from-config")
    assert resolve_workspace(None, cfg, {"NLQ_WORKSPACE": str(tmp_path / "from-env")}) == str(tmp_path / "from-env")
    assert resolve_workspace("flag-ws", cfg, {"NLQ_WORKSPACE": "env-ws"}) == "flag-ws"
    assert AppContext.from_args(_args()).workspace.path == tmp_path / "from-config"
    monkeypatch.setenv("NLQ_WORKSPACE", str(tmp_path / "from-env"))
    assert AppContext.from_args(_args()).workspace.path == tmp_path / "from-env"
    assert AppContext.from_args(_args(workspace=str(tmp_path / "flag"))).workspace.path == tmp_path / "flag"
    # and the headless commands get the same workspace
    out = _cli(tmp_path, "review", "--status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["workspace"] == str(tmp_path / "from-config")
    out = _cli(tmp_path, "review", "--status", NLQ_WORKSPACE=str(tmp_path / "from-env"))
    assert out.returncode == 0 and "from-env" in out.stdout


def test_reviewer_comes_from_the_flag_then_the_workspace_then_the_config(user_config, tmp_path):
    from nlq_tui.context import AppContext

    user_config.write_text(CONFIG.format(ws=tmp_path / "ws"))
    assert AppContext.from_args(_args()).reviewer == "cfg-reviewer"
    Workspace(tmp_path / "ws").set("reviewer", "ws-reviewer")
    assert AppContext.from_args(_args()).reviewer == "ws-reviewer"
    assert AppContext.from_args(_args(reviewer="flag-reviewer")).reviewer == "flag-reviewer"


def test_generate_defaults_come_from_the_config_and_a_flag_wins(user_config, tmp_path):
    from nlq_tui.cli import _finish_args, apply_user_config, build_parser
    from nlq_tui.config import generation_defaults, load_user_config

    user_config.write_text(CONFIG.format(ws=tmp_path / "ws"))
    cfg = load_user_config()
    parser = build_parser()
    apply_user_config(parser, cfg)
    args = parser.parse_args(["generate"])
    _finish_args(args, cfg)
    assert (args.backend, args.model, args.base_urls) == ("openai", "cfg-model", ["http://127.0.0.1:9/v1"])
    args = parser.parse_args(["generate", "--backend", "template", "--base-url", "http://h:1/v1", "--model", "x"])
    _finish_args(args, cfg)
    assert (args.backend, args.model, args.base_urls) == ("template", "x", ["http://h:1/v1"])
    # the Generate screen: the workspace's saved settings over the config's
    assert generation_defaults(cfg, None)["base_urls"] == "http://127.0.0.1:9/v1"
    assert generation_defaults(cfg, {"model": "saved"})["model"] == "saved"


async def test_keymap_and_theme_come_from_the_config_and_a_picked_theme_is_remembered(user_config, tmp_path):
    from nlq_tui.app import NLQApp
    from nlq_tui.config import load_user_config
    from nlq_tui.context import AppContext
    from nlq_tui.screens.lab import LabScreen

    user_config.write_text(CONFIG.format(ws=tmp_path / "ws") + "# a comment that must stay\n")
    Workspace(tmp_path / "ws").set("keymap", {"app.help": "h"})  # the workspace adds to the config's keys
    app = NLQApp(AppContext.from_args(_args()), "data", load_on_start=False)
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        assert app.theme == "nord"
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LabScreen)
        await pilot.press("h")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        app.theme = "gruvbox"
        await pilot.pause(0.2)
    assert load_user_config().theme == "gruvbox"
    text = user_config.read_text()
    assert "# a comment that must stay" in text and 'model = "cfg-model"' in text
    assert text.count("theme =") == 1


def test_remember_theme_writes_a_new_file_and_keeps_tables_in_place(tmp_path):
    from nlq_tui.config import load_user_config, remember_theme

    path = tmp_path / "c" / "config.toml"
    remember_theme("nord", path)
    assert load_user_config(path).theme == "nord"
    path.write_text('[keymap]\n"app.help" = "h"\n')
    remember_theme("gruvbox", path)
    cfg = load_user_config(path)
    assert cfg.theme == "gruvbox" and cfg.keymap == {"app.help": "h"}


@pytest.mark.parametrize(
    "text,words",
    [
        ("workspace = [1, 2]\n", ["workspace must be a non-empty string"]),
        ("[keymap\n", ["not valid TOML"]),
        ("keymap = 3\n", ["[keymap] must be a table"]),
        ('[generate]\nbackend = "gpt"\n', ["generate.backend must be template, openai or hf"]),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it_and_exit_2(user_config, tmp_path, text, words):
    user_config.write_text(text)
    out = _cli(tmp_path, "runs", "--workspace", str(tmp_path / "ws"))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.toml" in lines[0] and "Traceback" not in out.stderr
    for w in words:
        assert w in lines[0]


# -- logs -f --------------------------------------------------------------------------------------


def test_logs_follow_prints_lines_as_they_come_and_stops_when_the_run_ends(tmp_path):
    from engine.runs import create_run
    from engine.workspace import atomic_write_json

    ws = Workspace(tmp_path / "ws")
    run = create_run(ws, {"stage": "baseline"})
    atomic_write_json(run.status_path, {"state": "running", "pid": os.getpid(), "heartbeat": time.time()})
    run.log_path.write_text("line 0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlq_tui", "logs", run.id[-6:], "-f", "--workspace", str(ws.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        for i in range(1, 6):
            time.sleep(0.3)
            with open(run.log_path, "a") as f:
                f.write(f"line {i}\n")
                if i == 3:
                    f.write("torn ")  # a line written in two parts comes out whole
                    f.flush()
                    time.sleep(0.4)
                    f.write("line \x1b]2;x\x07end\n")
            atomic_write_json(run.status_path, {"state": "running", "pid": os.getpid(), "heartbeat": time.time()})
        atomic_write_json(run.status_path, {"state": "done", "pid": None, "heartbeat": time.time()})
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines == ["line 0", "line 1", "line 2", "line 3", "torn line ␛]2;x␇end", "line 4", "line 5"]


def test_logs_without_follow_prints_the_last_lines_and_a_missing_run_is_one_line(tmp_path, capsys):
    from engine.runs import create_run
    from nlq_tui.cli import main

    ws = Workspace(tmp_path / "ws")
    run = create_run(ws, {"stage": "baseline"})
    run.log_path.write_text("".join(f"step {i}\n" for i in range(50)))
    assert main(["logs", "latest", "-n", "3", "--workspace", str(ws.path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["step 47", "step 48", "step 49"]
    assert main(["logs", "nope", "--workspace", str(ws.path)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


# -- review --status ------------------------------------------------------------------------------


def test_review_status_counts_the_decisions_headless(tmp_path, capsys):
    from review_fixtures import populate

    from engine.store import CandidateStore
    from nlq_tui.cli import main

    ws = Workspace(tmp_path / "ws")
    store = CandidateStore(ws, reviewer="ann")
    ids = populate(store, 10)
    store.begin_review()
    store.decide(ids[0], "accept")
    store.decide(ids[1], "reject")
    store.decide(ids[2], "edit", text="Where did I put the cup?")
    store.close()
    assert main(["review", "--status", "--json", "--workspace", str(ws.path)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["reviewed"], s["total"], s["open"]) == (3, 10, 7)
    assert s["counts"]["accepted"] == s["counts"]["rejected"] == s["counts"]["edited"] == 1
    assert main(["review", "--status", "--workspace", str(ws.path)]) == 0
    line = capsys.readouterr().out.strip()
    assert "reviewed 3 of 10 (30%)" in line and "pending 7" in line and "\n" not in line


# -- the engine is ours -----------------------------------------------------------------------------


def test_a_foreign_engine_package_is_one_line_and_exit_2(tmp_path):
    fake = tmp_path / "fake"
    (fake / "engine").mkdir(parents=True)
    (fake / "engine" / "__init__.py").write_text("# another distribution's top-level 'engine'\n")
    probe = "import sys; from nlq_tui.cli import main; sys.exit(main(['runs']))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=_env(tmp_path, PYTHONPATH=os.pathsep.join([str(fake), str(REPO)])),
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(fake / "engine") in lines[0] and "shadows" in lines[0]


def test_review_without_status_opens_the_app_on_the_review_screen(tmp_path, monkeypatch):
    import nlq_tui.cli as cli

    opened = []
    monkeypatch.setattr(cli, "run_app", lambda args: opened.append(args.screen) or 0)
    assert cli.main(["review", "--workspace", str(tmp_path / "ws")]) == 0
    assert opened == ["review"]
    assert cli.main(["review", "--json", "--workspace", str(tmp_path / "ws")]) == 2  # --json needs --status


def test_a_user_error_naming_a_hostile_path_is_printed_as_one_visible_line(tmp_path, capsys):
    from nlq_tui.cli import main

    hostile = tmp_path / "w[/]\x1b]2;TITLE\x07\x9b2J"
    assert main(["review", "--status", "--workspace", str(hostile)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err
    assert "␛]2;TITLE␇\\x9b2J" in err and len(err.strip().splitlines()) == 1
