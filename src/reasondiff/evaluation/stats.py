"""Uncertainty for benchmark figures: bootstrap 95 % intervals of a mean and of a paired difference.

A gap between two methods on 200 cases is only evidence when its interval excludes 0; the mini results of
session 3 (0.770 vs 0.415 on unseen pairs) shrank to +0.175 [-0.05, +0.40] on fresh seeds. Both methods are
scored on the same cases, so the difference is taken per case before resampling (a paired bootstrap), which
is much tighter than comparing two independent intervals.

Cases that share an image are not independent: SynthWorld-Bench's counterfactual split asks four prompts of one
image, and a method that misreads the image fails all four. Resampling cases then counts one image's luck four
times and the interval comes out too narrow. Given each case's image (`clusters`), the bootstrap resamples
images instead, each with all its cases (a clustered bootstrap; the mean is over the cases drawn). With one case
per image it is the case bootstrap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def cluster_bootstrap_ci(values: Sequence[float], clusters: Sequence, seed: int = 0,
                         resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the mean, resampling whole clusters (`clusters[i]` is the cluster of
    `values[i]`, e.g. the case's image): each draw takes as many clusters as there are, with replacement, and
    averages every value of the clusters drawn."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return (float("nan"), float("nan"))
    _, index = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    sums, counts = np.bincount(index, weights=array), np.bincount(index).astype(np.float64)
    draws = np.random.default_rng(seed).integers(len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


def mean_ci(values: Sequence[float], seed: int = 0, clusters: Sequence | None = None) -> dict:
    """`{"mean", "ci95": [lo, hi], "n"}` of the non-None values; with `clusters` (one per value, e.g. the case's
    image) the interval is the clustered bootstrap's and the entry adds `"clusters"`: how many there were."""
    keep = [i for i, v in enumerate(values) if v is not None]
    array = [values[i] for i in keep]
    mean = float(np.mean(array)) if array else float("nan")
    if clusters is None:
        return {"mean": mean, "ci95": list(bootstrap_ci(array, seed)), "n": len(array)}
    groups = [clusters[i] for i in keep]
    return {"mean": mean, "ci95": list(cluster_bootstrap_ci(array, groups, seed)), "n": len(array),
            "clusters": len(set(map(str, groups)))}


def paired_difference(method: Mapping[str, float], reference: Mapping[str, float], seed: int = 0,
                      clusters: Mapping[str, Any] | None = None) -> dict:
    """Mean of method − reference over the cases both scored (case id -> score), with its bootstrap interval;
    `clusters` (case id -> image) makes it the clustered bootstrap (cases without one are their own cluster)."""
    shared = sorted(k for k in method.keys() & reference.keys() if method[k] is not None and reference[k] is not None)
    groups = None if clusters is None else [clusters.get(k, f"case:{k}") for k in shared]
    return mean_ci([method[k] - reference[k] for k in shared], seed, groups)
