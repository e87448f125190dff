"""Uncertainty for benchmark figures: bootstrap 95 % intervals of a mean and of a paired difference.

A gap between two methods on 200 cases is only evidence when its interval excludes 0; the mini results of
session 3 (0.770 vs 0.415 on unseen pairs) shrank to +0.175 [-0.05, +0.40] on fresh seeds. Both methods are
scored on the same cases, so the difference is taken per case before resampling (a paired bootstrap), which
is much tighter than comparing two independent intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RESAMPLES = 2000


def bootstrap_ci(values: Sequence[float], seed: int = 0, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean (NaNs when there are no values)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = array[rng.integers(array.size, size=(resamples, array.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def mean_ci(values: Sequence[float], seed: int = 0) -> dict:
    """`{"mean", "ci95": [lo, hi], "n"}` of the non-None values."""
    array = [v for v in values if v is not None]
    return {"mean": float(np.mean(array)) if array else float("nan"), "ci95": list(bootstrap_ci(array, seed)),
            "n": len(array)}


def paired_difference(method: Mapping[str, float], reference: Mapping[str, float], seed: int = 0) -> dict:
    """Mean of method − reference over the cases both scored (case id -> score), with its bootstrap interval."""
    shared = sorted(k for k in method.keys() & reference.keys() if method[k] is not None and reference[k] is not None)
    return mean_ci([method[k] - reference[k] for k in shared], seed)
