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
import errno
import fcntl
import json
import os
import tempfile
import time
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


def file_mode() -> int:
    """The mode a plain `open()` would give a new file: 0o666 less the user's umask."""
    mask = None
    try:  # Linux: read it without changing it (os.umask would, for every thread, for a moment)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                mask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    if mask is None:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def disk_error(path: Path | None, what: str, exc: OSError) -> WorkspaceError:
    """One line for a failed write; a full disk or an I/O error names the disk."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkspaceError(
            f"the disk holding {path} is full: could not write {what}; nothing was recorded, free some space and retry"
        )
    if exc.errno == errno.EIO:
        return WorkspaceError(
            f"the disk holding {path} reports an I/O error: could not write {what}; nothing was recorded"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WorkspaceError(f"{path}: cannot write {what} ({exc.strerror}); reading still works")
    return WorkspaceError(
        f"{path}: could not write {what} ({exc.strerror or exc}); nothing was recorded, free some disk space and try again"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: Path) -> None:
    """Remove temp files a killed writer left in `folder` (its pid is gone, or it is an hour old)."""
    try:
        names = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    except OSError:
        return
    now = time.time()
    for p in names:
        parts = p.name.split(".")
        pid = next((int(x[3:]) for x in parts if x.startswith("pid") and x[3:].isdigit()), None)
        try:
            stale = (pid is not None and pid != os.getpid() and not _pid_alive(pid)) or now - p.stat().st_mtime > 3600
            if stale:
                p.unlink()
        except OSError:
            pass


def atomic_write_bytes(path: Path, data: bytes, what: str | None = None) -> None:
    """Write `data` to `path` so that a reader sees the old or the new content, never a mix.

    The file gets the user's umask (teammates on a shared box can read runs and exports); a
    full disk or an I/O error is one line naming the disk; a temp file a killed writer left in
    the same folder is removed first.
    """
    path = Path(path)
    clean_stale_temps(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise disk_error(path, what or path.name, exc) from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise disk_error(path, what or path.name, exc) from None
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, what: str | None = None) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8", "backslashreplace"), what)


class AtomicJSONStorage(Storage):
    """TinyDB storage that never leaves a half-written file behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problems: list[str] = []

    def read(self) -> dict | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise WorkspaceError(f"{self.path}: is a folder, not a file; move it aside") from None
        if not raw.strip():
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise WorkspaceError(
                f"{self.path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                "restore it from a backup or move it aside to start the workspace afresh"
            ) from None
        except RecursionError:
            raise WorkspaceError(f"{self.path}: nested too deeply to be a workspace file; move it aside") from None
        if not isinstance(data, dict):
            raise WorkspaceError(f"{self.path}: expected a JSON object; move it aside to start afresh")
        return self._well_typed(data)

    def _well_typed(self, data: dict) -> dict:
        # TinyDB needs {table: {doc_id: {...}}}; a hand-edited table or record of another
        # shape is left out (and named once) instead of raising deep inside TinyDB.
        out = {}
        for name, table in data.items():
            if not isinstance(table, dict):
                self._problem(f"{self.path}: table {name!r} is not an object; ignored")
                continue
            docs = {k: v for k, v in table.items() if isinstance(v, dict) and str(k).isdigit()}
            if len(docs) != len(table):
                self._problem(f"{self.path}: {len(table) - len(docs)} records of {name!r} with wrong types ignored")
            out[name] = docs
        return out

    def _problem(self, line: str) -> None:
        if line not in self.problems:
            self.problems.append(line)

    def write(self, data: dict) -> None:
        atomic_write_json(self.path, data)

    def close(self) -> None:
        pass


# Settings other rooms read, with the type they expect; a value of another type reads as unset.
SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "data_root": str,
    "features": str,
    "reviewer": str,
    "keymap": dict,
    "generation": dict,
    "theme": str,
}
SUBFOLDERS = ("candidates", "exports", "runs", "locks")


class Workspace:
    """A workspace folder; created on first use (`Workspace.existing` never creates anything)."""

    def __init__(self, path: str | Path | None = None, *, create: bool = True, make_folders: bool = True) -> None:
        self.path = Path(path or DEFAULT_WORKSPACE).expanduser().resolve()
        self.problems: list[str] = []  # one line per damaged part; the rest still works
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
        for sub in SUBFOLDERS:
            p = self.path / sub
            if p.exists() and not p.is_dir():
                self.problems.append(f"{p}: is a file where the {sub} folder should be; move it aside")
            elif make_folders:
                try:
                    p.mkdir(exist_ok=True)
                except OSError as exc:  # a read-only workspace still browses
                    self.problems.append(f"{p}: cannot create it ({exc.strerror})")
        self._db: TinyDB | None = None

    @classmethod
    def existing(cls, path: str | Path | None = None) -> Workspace:
        """Open a workspace that must exist, creating nothing (for read-only commands)."""
        p = Path(path or DEFAULT_WORKSPACE).expanduser().resolve()
        if not p.is_dir():
            what = "is a file, not a workspace folder" if p.exists() else "no such workspace"
            raise WorkspaceError(f"{p}: {what}; check --workspace")
        return cls(p, create=False, make_folders=False)

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
            storage = self._db.storage
            self._storage_problems = storage.problems if isinstance(storage, AtomicJSONStorage) else []
        return self._db

    def all_problems(self) -> list[str]:
        """What is damaged in the workspace so far (folders, workspace.json), one line each."""
        extra = getattr(self, "_storage_problems", [])
        return self.problems + [p for p in extra if p not in self.problems]

    def table(self, name: str):
        """A TinyDB table of workspace.json (e.g. "prompts", "jobs", "runs")."""
        return self.db.table(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Serialise a read-modify-write of workspace.json across processes."""
        if not (self.path / "locks").is_dir():
            raise WorkspaceError(
                f"{self.path / 'locks'}: is not a folder (a file, or missing); move it aside, then retry"
            )
        with open(self.path / "locks" / "workspace.json.lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def get(self, key: str, default: Any = None) -> Any:
        """A setting (e.g. "data_root", "features"); one of the wrong type reads as unset, named once."""
        doc = self.table("settings").get(doc_id=1)
        value = (doc or {}).get(key, default)
        kind = SETTING_TYPES.get(key)
        if value is not None and value is not default and kind is not None and not isinstance(value, kind):
            line = (
                f"{self.path / 'workspace.json'}: setting {key!r} is not a {getattr(kind, '__name__', kind)}; ignored"
            )
            if line not in self.problems:
                self.problems.append(line)
            return default
        return value

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
        locks = self.path / "locks"
        if not locks.is_dir():
            raise WorkspaceError(f"{locks}: is not a folder (a file, or missing); move it aside, then retry")
        return WriterLock(self.path / "locks" / f"{name}.lock", name, purpose)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class WriterLock:
    """An flock held for as long as the object lives (released on process death by the OS)."""

    def __init__(self, path: Path, name: str, purpose: str) -> None:
        self.path = path
        try:
            self._f = open(path, "a+")
        except OSError as exc:  # a read-only disk or folder: reading still works, writing does not
            raise WorkspaceError(
                f"{path.parent.parent}: cannot take the {name} lock ({exc.strerror}); it can only be read"
            ) from None
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
