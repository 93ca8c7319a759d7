"""Side-by-side timing for the kit's speed benchmarks (MoE layer, SSD decode).

Each function is timed in turn within one loop, so machine load hits every contender alike and a ratio of two
medians stays meaningful on a busy machine even when the absolute times do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turn ``repeats`` times after ``warmup`` calls each."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
