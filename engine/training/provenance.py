"""What a run was trained on and with, recorded in its config.json (docs/ARCHITECTURE.md, "Runs").

`record(run, cfg, device, paths)` adds a `provenance` object to the run's config.json when the
training process has resolved everything (device, feature and text widths):

    provenance.files       the train and val files: path, bytes, sha256
    provenance.export      the training file's export manifest (path, sha256, variant, counts) or null
    provenance.project     nlq-tui version, git commit and whether the checkout had local changes
    provenance.packages    python, torch, transformers, numpy versions
    provenance.device      the torch device the run trains on (and the GPU's name)
    provenance.seed        the seed
    provenance.config      the full resolved TrainConfig (the one the run actually trains with)

A resumed run keeps the provenance of its first start and appends a `resumes` entry; a
training file whose sha256 changed since is logged as a warning there, not silently mixed in.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from engine.workspace import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
CHUNK = 1 << 20
HEAD_MAX_BYTES = 16 << 20  # a manifest's summary fields, its prompt texts and variants: far less than this


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: str | Path) -> dict:
    """path, bytes and sha256 of a file; a missing file says so instead of raising."""
    p = Path(path)
    try:
        return {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
    except OSError as exc:
        return {"path": str(p), "bytes": None, "sha256": None, "error": type(exc).__name__}


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(repo: Path = REPO) -> dict:
    """commit and dirty flag of the checkout the code runs from; empty when it is not one."""
    if not (repo / ".git").exists():
        return {}
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit or None, "git_dirty": bool(changes.strip())} if commit else {}


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def manifest_head(
    path: str | Path, *, max_bytes: int = HEAD_MAX_BYTES, skip: tuple[str, ...] = ("queries",)
) -> dict | None:
    """The top-level fields of an export manifest without its per-query list.

    A manifest lists every exported query (hundreds of MB at Ego4D scale), after the summary
    fields; this decodes the object one top-level member at a time from at most `max_bytes`
    and stops at the first `skip` key, so a run's start never parses the query list.
    None when the file is missing or does not start as a JSON object.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes)
        text = raw.decode("utf-8", "replace")
        cut = len(raw) == max_bytes
    except OSError:
        return None
    dec = json.JSONDecoder()
    i = _skip_space(text, 0)
    if text[i : i + 1] != "{":
        return None
    out: dict = {}
    i += 1
    try:
        while True:
            i = _skip_space(text, i)
            if text[i : i + 1] in ("}", ""):
                return out
            key, i = dec.raw_decode(text, i)
            i = _skip_space(text, i)
            if text[i : i + 1] != ":" or key in skip:
                return out
            value, i = dec.raw_decode(text, _skip_space(text, i + 1))
            if cut and i >= len(text):  # a number cut at max_bytes decodes as a shorter number
                return out
            out[key] = value
            i = _skip_space(text, i)
            if text[i : i + 1] == ",":
                i += 1
    except (ValueError, RecursionError):  # cut at max_bytes, or damaged: what was read so far
        return out


def export_record(train_file: str | Path) -> dict | None:
    """The manifest beside an exported training file (`<file>.manifest.json`), summarised."""
    manifest = Path(str(train_file) + ".manifest.json")
    data = manifest_head(manifest)
    if not data:
        return None
    variants: list = data["variants"] if isinstance(data.get("variants"), list) else []
    return {
        "manifest": str(manifest.resolve()),
        "manifest_sha256": sha256_file(manifest),
        "variant": data.get("variant"),
        "variants": [
            {k: v.get(k) for k in ("name", "backend", "model", "prompt_version", "exported")}
            for v in variants
            if isinstance(v, dict)
        ],
        "file_sha256": data.get("sha256"),
        "exported": data.get("exported"),
        "statuses": data.get("statuses"),
        "prompt_versions": data.get("prompt_versions"),
        "workspace": data.get("workspace"),
    }


def device_record(device: Any) -> dict:
    out = {"device": str(device)}
    if getattr(device, "type", None) == "cuda":
        import torch

        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def collect(cfg, device, paths: dict[str, Path]) -> dict:
    """The provenance object of a run that trains `cfg` on `device` from `paths` (Trainer.paths())."""
    files = {k: file_record(p) for k, p in paths.items() if k in ("train", "val") and Path(p).is_file()}
    return {
        "recorded": time.time(),
        "files": files,
        "export": export_record(paths["train"]) if "train" in paths else None,
        "project": {"name": "nlq-tui", "version": package_version("nlq-tui"), **git_state()},
        "packages": {
            "python": platform.python_version(),
            "torch": package_version("torch"),
            "transformers": package_version("transformers"),
            "numpy": package_version("numpy"),
        },
        **device_record(device),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
    }


def record(run, cfg, device, paths: dict[str, Path], *, resume: bool = False, log=None) -> dict:
    """Write the provenance into the run's config.json; on resume keep the first and note the resume."""
    config = run.config()
    now = collect(cfg, device, paths)
    old = config.get("provenance")
    if resume and isinstance(old, dict):
        changed = [
            k
            for k, f in now["files"].items()
            if (old.get("files") or {}).get(k, {}).get("sha256") not in (None, f.get("sha256"))
        ]
        if changed and log is not None:
            log.warning("resume: %s changed since the run started (sha256 differs)", ", ".join(changed))
        old.setdefault("resumes", []).append(
            {"recorded": now["recorded"], "device": now["device"], "changed_files": changed}
        )
        config["provenance"] = old
    else:
        config["provenance"] = now
    atomic_write_json(run.config_path, config)
    return config["provenance"]
