"""Helpers shared by the benchmarks: interleaved timing and a side-by-side table.

Machines here are shared and noisy, so every benchmark measures corral and
its baseline in the same run, alternating them call by call, and reports
medians and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(
    candidates: dict[str, Callable[[], object]], runs: int, warmup: int = 20
) -> dict[str, list[float]]:
    """Times each candidate ``runs`` times, round-robin, after ``warmup`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(warmup + runs):
        for name, call in candidates.items():
            started = time.perf_counter()
            call()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                times[name].append(elapsed)
    return times


def table(title: str, times: dict[str, list[float]], baseline: str, unit: str = "ms") -> None:
    scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    base = statistics.median(times[baseline])
    print(f"\n{title}")
    print(f"  {'':<44} {'median':>10} {'p10':>10} {'p90':>10} {'ratio':>7}")
    for name, values in times.items():
        values = sorted(values)
        med = statistics.median(values)
        p10 = values[len(values) // 10]
        p90 = values[len(values) * 9 // 10]
        print(
            f"  {name:<44} {med * scale:>8.3f}{unit} {p10 * scale:>8.3f}{unit}"
            f" {p90 * scale:>8.3f}{unit} {med / base:>7.2f}"
        )


def price(title: str, candidates: dict[str, Callable[[], object]], runs: int, without: str,
          with_: str, calls: int, what: str) -> None:
    """Times ``candidates`` interleaved and prints them against ``without``,
    then what ``with_`` costs over it for each of the ``calls`` a run makes."""
    times = interleaved(candidates, runs, warmup=3)
    table(title, times, baseline=without)
    extra = statistics.median(times[with_]) - statistics.median(times[without])
    print(f"\n  {what}: {extra / calls * 1e6:.1f} us per call")
