"""Timing helper shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import time


def best_time(function, repeats=3, warm_up=False):
    """The fastest of ``repeats`` timed calls of ``function``, optionally after an untimed one."""
    if warm_up:
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
