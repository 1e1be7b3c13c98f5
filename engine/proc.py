"""Which process a status file names, and what a detached child inherits (docs/ARCHITECTURE.md, "Runs").

A pid alone names nothing for long: after the process ends the kernel hands the number to the
next process that starts, and a status file on a shared filesystem may name a pid of another
machine. So a launcher records the process's identity, `identity(pid)`: the host, the pid,
its start time in clock ticks since boot (field 22 of /proc/PID/stat) and the boot id. Before
signalling, `same_process` checks all of them against the live process; anything that does
not match (another host, an ended process, a reused pid, a reboot) is reported, not signalled.

`child_env` is the environment a detached child gets: the parent's, minus every variable that
may hold an LLM key (names ending in _API_KEY, plus any the user named, e.g. --api-key-env),
because a training process never calls an LLM and a key in its environment could leak through
/proc/PID/environ or a crash dump.

Standard library only, so that every room (runs, generation jobs) can share it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

SECRET_SUFFIXES = ("_API_KEY",)


def this_host() -> str:
    return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ")"
    head, sep, rest = text.rpartition(")")
    return rest.split() if sep else None


def process_start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat); None when
    there is no such process or no /proc (then identity cannot be checked)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22, counted from field 3
    except ValueError:
        return None


def process_group(pid: int) -> int | None:
    """The process group of `pid` (field 5 of /proc/PID/stat), or None."""
    fields = _stat_fields(pid)
    try:
        return int(fields[2]) if fields and len(fields) > 2 else None
    except ValueError:
        return None


def boot_id() -> str | None:
    """This boot's id: start times are counted from boot, so they only compare within one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def pid_alive(pid: object) -> bool:
    """True when a process with this pid exists on this machine and is not a zombie."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    fields = _stat_fields(pid)
    # an exited child that its parent has not reaped yet still answers kill(0)
    return not (fields and fields[0] == "Z")


def identity(pid: int) -> dict:
    """What a status file records about the process it names, so a later `stop` can tell
    this process from one that got its pid afterwards."""
    return {"host": this_host(), "pid": pid, "start_time": process_start_time(pid), "boot_id": boot_id()}


def _whole(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def same_process(recorded: Mapping) -> tuple[bool, str]:
    """(True, "") when the process `recorded` names (host, pid, start_time, boot_id, as
    `identity` wrote them) is alive on this host and is that very process; else (False, why),
    `why` a phrase for a one-line message. Missing or damaged fields never match: a process
    that cannot be identified is never signalled."""
    host = recorded.get("host")
    if isinstance(host, str) and host and host != this_host():
        return False, f"runs on {host}; stop it there"
    pid = _whole(recorded.get("pid"))
    if not pid or pid <= 0:
        return False, "status.json names no process id"
    if not pid_alive(pid):
        return False, f"the run process (pid {pid}) is gone already"
    want = _whole(recorded.get("start_time"))
    if want is None:
        return False, f"status.json records no start time for pid {pid}, so it cannot be told from another process"
    boot = recorded.get("boot_id")
    if isinstance(boot, str) and boot and boot_id() not in (None, boot):
        return False, f"pid {pid} was recorded before this machine restarted; that process is gone"
    now = process_start_time(pid)
    if now is None:
        return (
            False,
            f"the start time of pid {pid} cannot be read here (no /proc), so it cannot be told from another process",
        )
    if now != want:
        return False, f"pid {pid} now belongs to another process (it started later than the run)"
    return True, ""


def pid_reused(recorded: Mapping) -> bool:
    """True when the live process with the recorded pid is known to be another one (its start
    time or this machine's boot differs); False when it matches or cannot be told."""
    pid, want = _whole(recorded.get("pid")), _whole(recorded.get("start_time"))
    if not pid or want is None:
        return False
    boot = recorded.get("boot_id")
    if isinstance(boot, str) and boot and boot_id() not in (None, boot):
        return True
    now = process_start_time(pid)
    return now is not None and now != want


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    return name.upper().endswith(SECRET_SUFFIXES) or name in set(extra)


def child_env(env: Mapping[str, str] | None = None, secret_names: Iterable[str] = ()) -> dict[str, str]:
    """`env` (default: this process's) without any LLM key variable: every name ending in
    _API_KEY and each of `secret_names` (the variable a user named with --api-key-env)."""
    extra = {n for n in secret_names if isinstance(n, str) and n}
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_secret_name(k, extra)}
