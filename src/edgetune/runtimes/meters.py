"""Energy and memory, read from what the machine exposes, and None where it exposes nothing:
a profiler that invents a power figure is worse than one that says it cannot see it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


def rss_bytes() -> int | None:
    """Resident memory of this process (Linux /proc), None elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _rapl_domains() -> list[Path]:
    """Package-level RAPL counters (Intel, and AMD on kernels that expose them the same way)."""
    if not POWERCAP.is_dir():
        return []
    found = []
    for d in sorted(POWERCAP.glob("*rapl:*")):
        if d.name.count(":") == 1 and (d / "energy_uj").is_file() and os.access(d / "energy_uj", os.R_OK):
            found.append(d)
    return found


def energy_source(device: str) -> str | None:
    if device.lower().startswith(("cuda", "tensorrt")):
        try:
            import pynvml

            pynvml.nvmlInit()
            return "nvml"
        except Exception:  # noqa: BLE001 - NVML missing or no driver: no reading, not an error
            return None
    return "rapl" if _rapl_domains() else None


def measure_energy(call: Callable[[], object], device: str, seconds: float = 1.0) -> tuple[float, float] | None:
    """(joules per call, average watts) over `seconds` of calls, or None where no meter is readable."""
    source = energy_source(device)
    if source is None:
        return None
    if source == "rapl":
        domains = _rapl_domains()

        def read() -> float:
            return sum(int((d / "energy_uj").read_text()) for d in domains) / 1e6
    else:
        import pynvml

        handle = pynvml.nvmlDeviceGetHandleByIndex(0)

        def read() -> float:
            return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3

    e0, t0, n = read(), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        call()
        n += 1
    joules, elapsed = read() - e0, time.perf_counter() - t0
    if joules <= 0:  # counter wrapped or not updating
        return None
    return joules / n, joules / elapsed
