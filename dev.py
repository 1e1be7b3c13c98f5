#!/usr/bin/env python3
"""Set up a virtual environment for nlq-tui and run it or its tests.

    python3 dev.py app      # set up .venv (first time), open the app on sample_data/
    python3 dev.py test     # set up .venv (first time), run the guardrails and the test suite
    python3 dev.py check    # the guardrails only: ruff, ruff format, import contracts, mypy
    python3 dev.py setup    # set up .venv only

Only the standard library is used here, so this runs on a fresh machine with just Python.

torch is installed before the package, so that the machine gets the right build without the
user thinking about it (a range in pyproject.toml then installs nothing more):
- an NVIDIA driver is present: the CUDA build, from the package index;
- no driver: the CPU build, from PyTorch's CPU wheel index when it answers within a few
  seconds, else from the configured package index (which may hold a local CPU file).
`NLQ_TORCH=cpu|cuda` forces either build; `NLQ_TORCH=<pip spec>` installs exactly that spec;
`NLQ_TORCH_INDEX=URL` names the index to take torch from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("NLQ_VENV", ROOT / ".venv"))
TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 4.0


@dataclass(frozen=True)
class TorchChoice:
    """What to pip-install for torch, and why (printed, so the user sees the decision)."""

    spec: str
    pip_args: list[str] = field(default_factory=list)
    reason: str = ""

    def key(self) -> str:
        return " ".join([self.spec, *self.pip_args])


def has_nvidia_driver() -> bool:
    """An NVIDIA kernel driver is loaded (or its CLI is installed)."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def index_reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """True if `url` answers HTTP 2xx/3xx within `timeout` seconds, DNS included.

    A socket timeout does not cover name resolution, so the request runs in a daemon thread
    and the caller waits on the thread: a network that swallows packets cannot hang set-up.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
                result.append(200 <= resp.status < 400)
        except Exception:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def choose_torch(
    env: dict[str, str] | os._Environ[str],
    driver: Callable[[], bool] = has_nvidia_driver,
    reachable: Callable[[str], bool] = index_reachable,
) -> TorchChoice:
    """Decide which torch build to install; the probes are parameters so tests can fake them."""
    wanted = env.get("NLQ_TORCH", "").strip()
    index = env.get("NLQ_TORCH_INDEX", "").strip()
    index_args = ["--index-url", index] if index else []
    spec = f"torch=={TORCH_VERSION}"
    if wanted and wanted not in {"cpu", "cuda"}:
        return TorchChoice(wanted, index_args, "NLQ_TORCH names the spec")
    if index:
        return TorchChoice(spec, index_args, "NLQ_TORCH_INDEX names the index")
    if wanted == "cuda" or (not wanted and driver()):
        why = "NLQ_TORCH=cuda" if wanted else "an NVIDIA driver is present"
        return TorchChoice(spec, [], f"{why}: the CUDA build from the package index")
    why = "NLQ_TORCH=cpu" if wanted else "no NVIDIA driver"
    if reachable(f"{CPU_INDEX}/torch/"):
        return TorchChoice(spec, ["--index-url", CPU_INDEX], f"{why}: the CPU build from PyTorch's CPU wheel index")
    return TorchChoice(
        spec,
        [],
        f"{why}, and PyTorch's CPU wheel index did not answer in {PROBE_SECONDS:.0f} s: torch from the "
        "configured package index (a CPU file where one lies on disk; set NLQ_TORCH_INDEX to choose)",
    )


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp(choice_key: str) -> str:
    """What the environment was built from; a change rebuilds it (the C scanner's source too:
    the editable install builds it in place, once)."""
    h = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    h.update((ROOT / "engine" / "ego4d" / "_scan.c").read_bytes())
    h.update(choice_key.encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str | Path]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def setup() -> Path:
    py = _venv_python()
    stamp_file = VENV / ".nlq-stamp"
    # The stamp records the torch choice that built the venv; an existing venv is kept as long
    # as pyproject.toml is unchanged, without probing the network again.
    if py.exists() and stamp_file.exists():
        built_from = stamp_file.read_text().split("\n", 1)
        if len(built_from) == 2 and built_from[0] == _stamp(built_from[1]):
            return py
    choice = choose_torch(os.environ)
    print(f"torch: {choice.spec} ({choice.reason})", flush=True)
    if not py.exists():
        _run([sys.executable, "-m", "venv", VENV])
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, *choice.pip_args, choice.spec])
    _run([*pip, "-e", f"{ROOT}[dev]"])
    stamp_file.write_text(f"{_stamp(choice.key())}\n{choice.key()}")
    return py


def check(py: Path) -> int:
    """The guardrails, each naming the file and the rule when it fails."""
    bindir = py.parent
    steps = [
        [bindir / "ruff", "check", "--no-cache", "."],
        [bindir / "ruff", "format", "--check", "--no-cache", "."],
        [bindir / "lint-imports", "--no-cache"],
        [py, "-m", "mypy", "engine"],
    ]
    for cmd in steps:
        print("+", " ".join(str(c) for c in cmd), flush=True)
        rc = subprocess.call([str(c) for c in cmd], cwd=ROOT)
        if rc:
            print(f"guardrail failed: {Path(cmd[0]).name} {cmd[1]} (exit {rc})", file=sys.stderr)
            return rc
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"app", "test", "check", "setup"}:
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
    if argv[0] == "check":
        return check(py)
    rc = check(py)
    if rc:
        return rc
    return subprocess.call([str(py), "-m", "pytest", *_parallel(argv[1:]), *argv[1:]], env=env, cwd=ROOT)


def _parallel(args: list[str]) -> list[str]:
    """pytest-xdist workers, one per core up to 4, unless the caller chose (`-n`, `-p no:xdist`).

    Many tests wait on subprocesses, servers and Pilot frames rather than compute, so two
    workers on a 2-core CI box take about a third of the serial time; past four, the
    subprocess-heavy tests only crowd each other.
    """
    if any(a == "-n" or a.startswith(("-n", "--numprocesses")) or "xdist" in a for a in args):
        return []
    return ["-n", str(max(1, min(4, os.cpu_count() or 1)))]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
