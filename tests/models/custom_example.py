"""What the tests of `examples/custom-model` share (not a test module): its folder, its files
imported as the example's own modules, and a benchmark short enough for a test."""

import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "custom-model"
QUICK = {"runs_per_round": 5, "min_rounds": 2, "max_rounds": 3, "throughput_batches": [8], "throughput_seconds": 0.2,
         "warmup": 2}


def example_module(name: str):
    """The example's `name`.py (model, data, metrics), imported as the example imports it."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLE))
