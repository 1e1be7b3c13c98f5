"""GPU utilisation, memory and temperature for the Train screen, through NVML or `nvidia-smi`.

Reading never raises: a machine without a GPU, without the driver, with a hung `nvidia-smi`
or a garbled answer reads as "no GPU" (with the reason), so a panel that polls this every few
seconds can never take the app down. Neither way imports torch: starting CUDA in the TUI
process would hold GPU memory the training run needs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass

QUERY = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu"
SMI_TIMEOUT_S = 2.0
# After a failure, ask again only this much later: a missing driver stays missing, and a hung
# nvidia-smi must not be started twice a second.
RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class GpuStat:
    index: int
    name: str
    util: float | None  # percent
    mem_used_mib: float | None
    mem_total_mib: float | None
    temp_c: float | None

    def line(self) -> str:
        """`GPU0 H200 87% 41.2/139.8 GiB 63°C` (a field nvidia-smi did not report reads `?`)."""
        util = "?" if self.util is None else f"{self.util:.0f}%"
        if self.mem_used_mib is None or self.mem_total_mib is None:
            mem = "? GiB"
        else:
            mem = f"{self.mem_used_mib / 1024:.1f}/{self.mem_total_mib / 1024:.1f} GiB"
        temp = "?" if self.temp_c is None else f"{self.temp_c:.0f}°C"
        return f"GPU{self.index} {_short_name(self.name)} {util} {mem} {temp}"


@dataclass(frozen=True)
class GpuReading:
    gpus: tuple[GpuStat, ...]
    source: str  # "nvml" | "nvidia-smi" | "" (none)
    note: str = ""  # why there is no reading

    @property
    def available(self) -> bool:
        return bool(self.gpus)

    def lines(self) -> list[str]:
        if not self.gpus:
            return ["no GPU" + (f" ({self.note})" if self.note else "")]
        return [g.line() for g in self.gpus]


def _short_name(name: str) -> str:
    for prefix in ("NVIDIA ", "Tesla ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _number(text: str) -> float | None:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def parse_smi(text: str) -> list[GpuStat]:
    """GPUs from `nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits`; bad lines skipped."""
    out: list[GpuStat] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 6:
            continue
        index = _number(parts[0])
        if index is None:
            continue
        out.append(
            GpuStat(int(index), parts[1], _number(parts[2]), _number(parts[3]), _number(parts[4]), _number(parts[5]))
        )
    return out


def _read_nvml() -> list[GpuStat] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else str(name)
            util = mem_used = mem_total = temp = None
            try:
                util = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:
                pass
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                mem_used, mem_total = mem.used / 2**20, mem.total / 2**20
            except Exception:
                pass
            try:
                temp = float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
            except Exception:
                pass
            out.append(GpuStat(i, name, util, mem_used, mem_total, temp))
        return out
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _read_smi(binary: str, timeout: float) -> tuple[list[GpuStat], str]:
    try:
        p = subprocess.run(
            [binary, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return [], f"nvidia-smi did not answer in {timeout:.0f} s"
    except OSError as exc:
        return [], f"nvidia-smi: {exc.strerror or exc}"
    if p.returncode != 0:
        first = (p.stderr or p.stdout).strip().splitlines()
        return [], "nvidia-smi: " + (first[0][:80] if first else f"exit status {p.returncode}")
    gpus = parse_smi(p.stdout)
    return gpus, "" if gpus else "nvidia-smi listed no GPU"


class GpuMonitor:
    """Reads the GPUs on demand; remembers a failure for RETRY_AFTER_S so polling stays cheap."""

    def __init__(
        self, *, smi: str | None = "nvidia-smi", use_nvml: bool = True, timeout: float = SMI_TIMEOUT_S
    ) -> None:
        self.smi = smi
        self.use_nvml = use_nvml
        self.timeout = timeout
        self._failed_at: float | None = None
        self._last_failure = GpuReading((), "", "")

    def read(self, now: float | None = None) -> GpuReading:
        now = time.monotonic() if now is None else now
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_S:
            return self._last_failure
        try:
            reading = self._read()
        except Exception as exc:  # never let a monitoring glitch reach the caller
            reading = GpuReading((), "", f"{type(exc).__name__}: {exc}")
        if reading.available:
            self._failed_at = None
        else:
            self._failed_at = now
            self._last_failure = reading
        return reading

    def _read(self) -> GpuReading:
        if self.use_nvml:
            gpus = _read_nvml()
            if gpus:
                return GpuReading(tuple(gpus), "nvml")
        binary = shutil.which(self.smi) if self.smi else None
        if binary is None:
            return GpuReading((), "", "")
        gpus, note = _read_smi(binary, self.timeout)
        return GpuReading(tuple(gpus), "nvidia-smi" if gpus else "", note)
