"""Where a run trains: the device, the CPU threads, and its place under torchrun (docs/ARCHITECTURE.md, "Runs")."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from engine.errors import ConfigError


@dataclass
class DistInfo:
    """Where this process sits under torchrun (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised: bool = False

    @classmethod
    def from_env(cls) -> DistInfo:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local, initialised=True)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when `flag` is True on any (so all ranks stop at the same step)."""
        if not self.initialised:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            dist.barrier()

    def shutdown(self) -> None:
        if self.initialised:
            import torch.distributed as dist

            with contextlib.suppress(Exception):
                dist.destroy_process_group()
            self.initialised = False


def resolve_device(name: str, dist: DistInfo | None = None) -> torch.device:
    """ "auto" is the GPU when there is one; asking for CUDA without one is a ConfigError."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA GPU is visible here; use --device cpu or auto")
        if dist is not None and dist.world > 1:
            return torch.device("cuda", dist.local_rank)
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ConfigError(f"--device {name!r}: use auto, cpu, cuda or cuda:N") from None
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
        return device
    if name != "cpu":
        raise ConfigError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def pick_threads(requested: int = 0) -> int:
    """torch CPU threads for this run: NLQ_TORCH_THREADS, else `requested`, else one per idle core.

    On a shared CPU box torch's one-thread-per-core default can run several times slower than
    one thread (the threads wait on each other and on the neighbours), so an unset count takes
    only the cores that are idle now.
    """
    env = os.environ.get("NLQ_TORCH_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"NLQ_TORCH_THREADS={env[:20]!r}: not a whole number of threads") from None
    if requested and requested > 0:
        return int(requested)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        from engine.ego4d.parallel import idle_cpus

        idle = idle_cpus(cores)
    except ImportError:
        try:
            idle = cores - os.getloadavg()[0] + 1  # + 1: this process is part of the load
        except OSError:
            idle = float(cores)
    return max(1, min(cores, int(idle + 0.5)))
