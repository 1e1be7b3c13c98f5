#!/usr/bin/env python3
"""Set up a virtual environment for nlq-tui and run it or its tests.

    python3 dev.py app      # set up .venv (first time), open the app on sample_data/
    python3 dev.py test     # set up .venv (first time), run the test suite

Only the standard library is used here, so this runs on a fresh machine with just Python.
torch is installed before the package so that pip takes the right build for the machine:
pinned `torch==2.13.0` resolves to the CPU file that lies on machines without a GPU
(and to the CUDA build from the package index on a GPU box); `NLQ_TORCH` overrides it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("NLQ_VENV", ROOT / ".venv"))
TORCH_SPEC = os.environ.get("NLQ_TORCH", "torch==2.13.0")


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp() -> str:
    """What the environment was built from; a change rebuilds it."""
    h = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    h.update(TORCH_SPEC.encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str | Path]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def setup() -> Path:
    py = _venv_python()
    stamp_file = VENV / ".nlq-stamp"
    if py.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return py
    if not py.exists():
        _run([sys.executable, "-m", "venv", VENV])
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, TORCH_SPEC])
    _run([*pip, "-e", f"{ROOT}[dev]"])
    stamp_file.write_text(_stamp())
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"app", "test", "setup"}:
        print(__doc__)
        return 2
    py = setup()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    bindir = py.parent
    if argv[0] == "setup":
        return 0
    if argv[0] == "app":
        exe = shutil.which("nlq-tui", path=str(bindir)) or "nlq-tui"
        return subprocess.call([exe, "--data", str(ROOT / "sample_data"), *argv[1:]], env=env, cwd=ROOT)
    return subprocess.call([str(py), "-m", "pytest", *argv[1:]], env=env, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
