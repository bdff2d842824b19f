"""Inference runtimes behind one interface, and the timing that compares them fairly."""

from edgetune.runtimes.base import RUNTIMES, Runtime, get_runtime
from edgetune.runtimes.timing import Timing, throughput, time_interleaved

__all__ = ["RUNTIMES", "Runtime", "Timing", "get_runtime", "throughput", "time_interleaved"]
