"""The figures the benchmarks report, from raw timings: nearest-rank percentiles, milliseconds, ratios."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(ordered: Sequence[float], p: int) -> float:
    """The p-th percentile of ``ordered`` (sorted, not empty) by the nearest-rank method."""
    rank = max(1, -(-p * len(ordered) // 100))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def latency_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of ``latencies_s`` (seconds, any order, not empty), in milliseconds."""
    ordered = sorted(latencies_s)
    return {
        "p50": ms(percentile(ordered, 50)),
        "p99": ms(percentile(ordered, 99)),
        "mean": ms(statistics.fmean(ordered)),
        "max": ms(ordered[-1]),
    }


def times(value: float, base: float) -> str:
    """``value`` as a multiple of ``base``: ``x2.31``, or ``-`` when there is no base."""
    return f"x{value / base:.2f}" if base else "-"
