"""The ratio table the interleaved benchmarks print: minimum and median of each measurement, and the ratio
of minimums against the baseline measured in the same run."""

from __future__ import annotations

import statistics


def ratio_row(label: str, low: float, median: float, baseline: float, width: int) -> str:
    return f"{label:<{width}} {low * 1000:8.1f} {median * 1000:10.1f} {low / baseline:10.2f}x"


def print_ratio_table(samples: dict[str, list[float]], baseline_label: str, width: int) -> float:
    """Print one row per measurement (seconds in, milliseconds out); return the baseline's minimum."""
    baseline = min(samples[baseline_label])
    print(f"{'measurement':<{width}} {'min ms':>8} {'median ms':>10} {'ratio(min)':>11}")
    for label, values in samples.items():
        print(ratio_row(label, min(values), statistics.median(values), baseline, width))
    return baseline
