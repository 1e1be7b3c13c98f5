"""The user's own settings: `$XDG_CONFIG_HOME/nlq-tui/config.toml` (default ~/.config/nlq-tui/).

```toml
workspace = "~/nlq-workspace"   # default workspace (NLQ_WORKSPACE and --workspace win)
reviewer = "ann"                # default reviewer name (the workspace's and --reviewer win)
theme = "textual-dark"          # written back when a theme is picked in the app

[generate]                      # defaults of `nlq-tui generate` and the Generate screen
backend = "openai"
base_url = "http://localhost:8000/v1"
model = "llama-3.1-8b-instruct"

[keymap]                        # binding id = "key[,key...]" (ids: nlq_tui/bindings.py)
"review.accept" = "a,y"
```

Precedence, highest first: the command line, then `NLQ_WORKSPACE` (for the workspace only),
then the workspace's own setting, then this file, then the built-in default. The file is
optional; a malformed one is a ConfigError naming it and the key (docs/ARCHITECTURE.md,
"Trust").
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigError

GENERATE_KEYS = ("backend", "base_url", "model")
TOP_KEYS = ("workspace", "reviewer", "theme")
MAX_BYTES = 1 << 20  # a config file is a few lines; anything larger is not one


def config_path(env: dict | None = None) -> Path:
    """Where the user config lives: $XDG_CONFIG_HOME/nlq-tui/config.toml, else ~/.config/..."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base).expanduser() if base.strip() else Path(env.get("HOME") or Path.home()).expanduser() / ".config"
    return root / "nlq-tui" / "config.toml"


@dataclass
class UserConfig:
    """The parsed file; every field None/empty when unset. `unknown`: keys it does not know."""

    path: Path
    workspace: str | None = None
    reviewer: str | None = None
    theme: str | None = None
    generate: dict[str, str] = field(default_factory=dict)
    keymap: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def _string(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: {key} must be a non-empty string (got {type(value).__name__}); fix or remove it")
    return value


def load_user_config(path: Path | None = None) -> UserConfig:
    """Read the user config (a missing file is an empty config)."""
    path = path or config_path()
    try:
        raw = path.read_bytes()[: MAX_BYTES + 1]
    except FileNotFoundError:
        return UserConfig(path)
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML file; move it aside") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than 1 MB, not a config file; move it aside")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix it or move it aside") from None
    cfg = UserConfig(path)
    for key, value in data.items():
        if key in TOP_KEYS:
            setattr(cfg, key, _string(path, key, value))
        elif key in ("generate", "keymap"):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table; see `nlq-tui --help` for the format")
            for k, v in value.items():
                if key == "generate" and k not in GENERATE_KEYS:
                    cfg.unknown.append(f"generate.{k}")
                    continue
                getattr(cfg, key)[str(k)] = _string(path, f"{key}.{k}", v)
        else:
            cfg.unknown.append(key)
    return cfg


def resolve_workspace(cli_value: str | None, cfg: UserConfig, env: dict | None = None) -> str | None:
    """The workspace folder to use: --workspace, else $NLQ_WORKSPACE, else the config's, else
    None (the built-in ./nlq-workspace)."""
    env = os.environ if env is None else env
    if cli_value:
        return cli_value
    if (env.get("NLQ_WORKSPACE") or "").strip():
        return str(Path(env["NLQ_WORKSPACE"]).expanduser())
    if cfg.workspace:
        return str(Path(cfg.workspace).expanduser())
    return None


def generation_defaults(cfg: UserConfig, saved: dict | None) -> dict:
    """The Generate screen's starting settings: the workspace's saved ones over the config's."""
    out: dict = {}
    if cfg.generate.get("backend"):
        out["backend"] = cfg.generate["backend"]
    if cfg.generate.get("model"):
        out["model"] = cfg.generate["model"]
    if cfg.generate.get("base_url"):
        out["base_urls"] = cfg.generate["base_url"]
    out.update(saved if isinstance(saved, dict) else {})
    return out


_THEME_LINE = re.compile(r"^[ \t]*theme[ \t]*=.*$", re.M)
_TABLE = re.compile(r"^[ \t]*\[", re.M)


def remember_theme(name: str, path: Path | None = None) -> Path:
    """Write `theme = "name"` into the config file (created if absent), keeping every other
    line as it is. Raises OSError when the file cannot be written."""
    from engine.workspace import atomic_write_bytes

    path = path or config_path()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    line = f"theme = {json.dumps(name)}"  # a JSON string is a valid TOML basic string
    table = _TABLE.search(text)  # top-level keys must come before the first [table]
    head, rest = (text[: table.start()], text[table.start() :]) if table else (text, "")
    if _THEME_LINE.search(head):
        head = _THEME_LINE.sub(line, head, count=1)
    else:
        head = line + "\n" + head
    if rest and not head.endswith("\n"):
        head += "\n"
    new = head + rest
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, new.encode("utf-8"))
    return path
