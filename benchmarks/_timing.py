"""Shared by the benchmark scripts: whole commands timed in turn (A B A B ...), ratios per pair."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence


def run_once(command: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Wall seconds of one run of ``command`` (its output thrown away); it must exit 0 or 1."""
    t0 = time.perf_counter()
    result = subprocess.run(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    elapsed = time.perf_counter() - t0
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}")
    return elapsed


def alternate(
    a: Sequence[str], b: Sequence[str], runs: int, warmup: int = 1, env_a: Mapping[str, str] | None = None
) -> tuple[list[float], list[float], list[float]]:
    """``runs`` pairs of (A, B) after ``warmup`` unpaired ones: A's times, B's, and A/B pair by
    pair (A runs with ``env_a`` when given)."""
    for _ in range(warmup):
        run_once(a, env_a)
        run_once(b)
    ta, tb = [], []
    for _ in range(runs):
        ta.append(run_once(a, env_a))
        tb.append(run_once(b))
    return ta, tb, [x / y for x, y in zip(ta, tb)]


def line(label: str, ta: list[float], tb: list[float], ratios: list[float], target: str) -> str:
    return (
        f"{label:<34} {statistics.median(ta) * 1000:>8.0f} ms {statistics.median(tb) * 1000:>8.0f} ms"
        f"  ratio median {statistics.median(ratios):.2f}x (best {min(ratios):.2f}x)  target {target}"
    )
