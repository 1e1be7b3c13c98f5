"""The checks worker starts inside the app, where Textual's stdout/stderr have no file descriptor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_checks_worker_starts_when_stderr_has_no_file_descriptor():
    # A fresh interpreter, so multiprocessing's resource tracker is not running yet: its start is
    # what handed fd -1 to the spawn ("bad value(s) in fds_to_keep") when a job began in the app.
    code = textwrap.dedent(
        """
        import io, sys
        class Capture(io.StringIO):  # what Textual puts in sys.stdout / sys.stderr
            def fileno(self):
                return -1
        sys.stdout = sys.stderr = Capture()
        from engine.generation.deferred import DeferredChecks
        d = DeferredChecks(lambda results, secs: None)
        ok = d._proc.is_alive() or d._proc.exitcode == 0
        d.close()
        sys.__stdout__.write("started\\n" if ok else "dead\\n")
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "started", r.stdout + r.stderr
