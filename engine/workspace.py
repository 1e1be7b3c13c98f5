"""The workspace: one folder that holds everything a user produces.

    WS/workspace.json   TinyDB: settings, data root, prompt versions, generation jobs, run index
    WS/candidates/      generated candidates and review decisions (engine.store)
    WS/exports/         exported NLQ files + manifests
    WS/runs/<run_id>/   training runs

`workspace.json` is small and written rarely, so TinyDB serves it well, with two changes to
plain JSONStorage: every write goes to a temp file that is fsynced and renamed over the old
one (a kill mid-write never leaves a torn file), and read-modify-write steps from several
processes are serialised by an advisory lock (`Workspace.transaction()`).

Long-lived writers (a review session, a generation job) take a named lock with
`Workspace.lock(name)`; a second process gets a `WorkspaceError` naming the holder instead
of silently interleaving writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage

from engine.errors import WorkspaceError

DEFAULT_WORKSPACE = "nlq-workspace"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old or the new content, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8"))


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"{self.path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                "restore it from a backup or move it aside to start the workspace afresh"
            ) from None
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.path}: expected a JSON object; move it aside to start afresh")
        return data

    def write(self, data: dict) -> None:
        atomic_write_json(self.path, data)

    def close(self) -> None:
        pass


class Workspace:
    """A workspace folder; created on first use."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True) -> None:
        self.path = Path(path or DEFAULT_WORKSPACE).expanduser().resolve()
        if self.path.exists() and not self.path.is_dir():
            raise WorkspaceError(f"{self.path}: is a file, not a workspace folder; choose another --workspace")
        if not self.path.exists():
            if not create:
                raise WorkspaceError(f"{self.path}: no such workspace; check --workspace")
            try:
                self.path.mkdir(parents=True)
            except OSError as exc:
                raise WorkspaceError(
                    f"{self.path}: cannot create the workspace ({exc.strerror}); check --workspace"
                ) from None
        for sub in ("candidates", "exports", "runs", "locks"):
            (self.path / sub).mkdir(exist_ok=True)
        self._db: TinyDB | None = None

    # folders -------------------------------------------------------------------------------
    @property
    def candidates_dir(self) -> Path:
        return self.path / "candidates"

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    # workspace.json --------------------------------------------------------------------------
    @property
    def db(self) -> TinyDB:
        if self._db is None:
            self._db = TinyDB(self.path / "workspace.json", storage=AtomicJSONStorage)
        return self._db

    def table(self, name: str):
        """A TinyDB table of workspace.json (e.g. "prompts", "jobs", "runs")."""
        return self.db.table(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Serialise a read-modify-write of workspace.json across processes."""
        with open(self.path / "locks" / "workspace.json.lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def get(self, key: str, default: Any = None) -> Any:
        """A setting (e.g. "data_root", "features")."""
        doc = self.table("settings").get(doc_id=1)
        return (doc or {}).get(key, default)

    def set(self, key: str, value: Any) -> None:
        with self.transaction():
            table = self.table("settings")
            if table.get(doc_id=1) is None:
                table.insert({key: value})
            else:
                table.update({key: value}, doc_ids=[1])

    def settings(self) -> dict:
        return dict(self.table("settings").get(doc_id=1) or {})

    # long-lived writer locks -----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, purpose: str = "") -> Iterator[None]:
        """Hold the named writer lock for the block, or raise WorkspaceError naming the holder."""
        handle = self.acquire(name, purpose)
        try:
            yield
        finally:
            handle.release()

    def acquire(self, name: str, purpose: str = "") -> WriterLock:
        return WriterLock(self.path / "locks" / f"{name}.lock", name, purpose)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class WriterLock:
    """An flock held for as long as the object lives (released on process death by the OS)."""

    def __init__(self, path: Path, name: str, purpose: str) -> None:
        self.path = path
        self._f = open(path, "a+")
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.seek(0)
            holder = self._f.read().strip() or "another process"
            self._f.close()
            raise WorkspaceError(
                f"{path.parent.parent}: the {name} are in use by {holder}; "
                "close that nlq-tui first or use another --workspace"
            ) from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"pid {os.getpid()}" + (f" ({purpose})" if purpose else ""))
        self._f.flush()

    def release(self) -> None:
        if not self._f.closed:
            self._f.seek(0)
            self._f.truncate()
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
            self._f.close()
