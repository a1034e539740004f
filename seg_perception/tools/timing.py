"""Side-by-side timing for the benchmark commands (numpy only)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_interleaved(
    runs: dict[str, Callable[[], object]], iterations: int, warmup: int
) -> dict[str, dict[str, float]]:
    """{name: {"median", "p90"}} ms per call of each zero-argument callable, calling them in turn every iteration
    (the order reversed on odd iterations) after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for iteration in range(iterations):
        order = list(runs.items())
        for name, run in order if iteration % 2 == 0 else reversed(order):
            start = time.perf_counter()
            run()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {
        name: {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}
        for name, values in times.items()
    }
