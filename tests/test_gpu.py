"""GPU readings: nvidia-smi's CSV parsed, and every way it can fail reads as "no GPU"."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from engine.gpu import RETRY_AFTER_S, GpuMonitor, parse_smi

# what `nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu
# --format=csv,noheader,nounits` prints on a two-GPU box (the second without a temperature sensor)
SMI_OUT = "0, NVIDIA H200, 87, 42196, 143771, 63\n1, NVIDIA H200, 0, 4, 143771, [N/A]\n"


def fake_smi(tmp_path: Path, body: str) -> str:
    """An executable `nvidia-smi` script that counts its calls in calls.txt."""
    path = tmp_path / "nvidia-smi"
    path.write_text(f"#!/bin/sh\necho x >> {tmp_path / 'calls.txt'}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def calls(tmp_path: Path) -> int:
    p = tmp_path / "calls.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0


def test_smi_csv_gives_util_memory_and_temperature_per_gpu():
    gpus = parse_smi(SMI_OUT + "garbage line\n\n")
    assert [g.index for g in gpus] == [0, 1]
    g0, g1 = gpus
    assert (g0.util, g0.mem_used_mib, g0.mem_total_mib, g0.temp_c) == (87.0, 42196.0, 143771.0, 63.0)
    assert g1.temp_c is None
    assert g0.line() == "GPU0 H200 87% 41.2/140.4 GiB 63°C"
    assert g1.line().endswith("?")


def test_monitor_reads_a_real_nvidia_smi_subprocess(tmp_path):
    smi = fake_smi(tmp_path, f"printf '{SMI_OUT}'")
    reading = GpuMonitor(smi=smi, use_nvml=False).read()
    assert reading.available and reading.source == "nvidia-smi"
    assert reading.lines()[0].startswith("GPU0 H200 87%")


def test_no_nvidia_smi_reads_no_gpu(tmp_path):
    reading = GpuMonitor(smi=str(tmp_path / "absent"), use_nvml=False).read()
    assert not reading.available
    assert reading.lines() == ["no GPU"]


def test_a_failing_nvidia_smi_says_why_and_is_not_asked_again_at_once(tmp_path):
    smi = fake_smi(
        tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9"
    )
    mon = GpuMonitor(smi=smi, use_nvml=False)
    first = mon.read(now=100.0)
    assert first.lines() == [
        "no GPU (nvidia-smi: NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.)"
    ]
    assert mon.read(now=101.0) is first
    assert calls(tmp_path) == 1
    mon.read(now=100.0 + RETRY_AFTER_S + 1)
    assert calls(tmp_path) == 2


def test_a_hung_nvidia_smi_times_out_instead_of_blocking(tmp_path):
    smi = fake_smi(tmp_path, "exec sleep 20")
    t0 = time.perf_counter()
    reading = GpuMonitor(smi=smi, use_nvml=False, timeout=0.5).read()
    assert time.perf_counter() - t0 < 10
    assert not reading.available and "did not answer" in reading.note


def test_garbled_output_reads_no_gpu(tmp_path):
    smi = fake_smi(tmp_path, "echo 'Failed to initialize NVML: Driver/library version mismatch'")
    reading = GpuMonitor(smi=smi, use_nvml=False).read()
    assert not reading.available and reading.note == "nvidia-smi listed no GPU"
    assert os.path.exists(smi)
