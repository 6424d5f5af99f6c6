"""Paired significance tests on per-query scores of two systems.

Every function takes two aligned 1-D arrays ``a: [Q]`` and ``b: [Q]``: ``a[i]`` and ``b[i]``
are the scores of system A and system B on the same query ``i`` (for example nDCG@10 per query).
The tested quantity is the mean paired difference ``mean(a - b)``; all tests are two-sided.

Bad input (not 1-D, different lengths, empty, NaN or infinite values) raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

ArrayLike = Sequence[float] | np.ndarray

#: Upper bound on the size of one block of random signs, ``[resamples, Q]`` elements.
_MAX_BLOCK_ELEMENTS = 1 << 22

#: Relative tolerance when comparing a resampled statistic with the observed one, so that
#: resamples equal to the observed value up to floating-point summation order count as ties.
_TIE_TOLERANCE = 1e-10

#: Relative spread below which paired differences count as all equal (zero variance).
_CONSTANT_TOLERANCE = 1e-12


def paired_differences(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Return ``a - b`` as a float64 array ``[Q]`` after checking the pair is well formed."""
    a_arr = np.asarray(a, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if a_arr.ndim != 1 or b_arr.ndim != 1:
        raise ValueError(f"expected two 1-D score arrays, got shapes {a_arr.shape} and {b_arr.shape}")
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"score arrays are not paired: {a_arr.size} vs {b_arr.size} values")
    if a_arr.size == 0:
        raise ValueError("score arrays are empty: there is nothing to test")
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("score arrays contain NaN or infinite values")
    return a_arr - b_arr


def paired_t_test(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided paired t-test p-value for ``mean(a - b) != 0`` (``scipy.stats.ttest_rel``).

    Degenerate cases, where the t statistic is undefined, are given fixed values:

    - all differences are 0, or there is a single pair: ``1.0`` (no evidence of a difference);
    - all differences are equal and non-zero (zero variance, up to a relative 1e-12 of float
      rounding, as in ``[0.5, 0.6] - [0.25, 0.35]``): ``0.0``.
    """
    differences = paired_differences(a, b)
    if differences.size < 2 or not differences.any():
        return 1.0
    if np.ptp(differences) <= _CONSTANT_TOLERANCE * np.abs(differences).max():
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def randomization_test(a: ArrayLike, b: ArrayLike, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip permutation) test p-value.

    Under the null hypothesis the labels A and B are exchangeable within each query, so every
    difference ``d_i = a_i - b_i`` keeps or flips its sign with probability 1/2. The p-value is
    the share of sign assignments whose ``|mean(±d)|`` is at least the observed ``|mean(d)|``.

    - When ``2**Q <= n_resamples`` every assignment is enumerated and the p-value is exact
      (``count / 2**Q``), as ``scipy.stats.permutation_test`` does.
    - Otherwise ``n_resamples`` random assignments are drawn with ``numpy.random.default_rng(seed)``
      and the observed assignment is counted once more: ``p = (count + 1) / (n_resamples + 1)``,
      so ``p >= 1 / (n_resamples + 1)`` and never 0.

    Identical arrays give ``1.0``. Memory stays below ~32 MB whatever ``Q`` is (resamples are
    processed in blocks); time is ``O(n_resamples * Q)``.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    differences = paired_differences(a, b)
    observed = abs(differences.sum())
    tolerance = _TIE_TOLERANCE * np.abs(differences).sum()
    threshold = observed - tolerance
    n = differences.size

    if n < 63 and 2**n <= n_resamples:
        flips = _all_flip_masks(n)
        extreme = np.count_nonzero(_abs_flipped_sums(flips, differences) >= threshold)
        return float(extreme / flips.shape[0])

    rng = np.random.default_rng(seed)
    extreme = 0
    block = max(1, _MAX_BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        flips = _random_flip_masks(rng, size, n)
        extreme += int(np.count_nonzero(_abs_flipped_sums(flips, differences) >= threshold))
    return float((extreme + 1) / (n_resamples + 1))


def bootstrap_ci(
    a: ArrayLike,
    b: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval ``(low, high)`` for ``mean(a - b)``.

    Queries are resampled with replacement (pairs stay together) ``n_resamples`` times with
    ``numpy.random.default_rng(seed)``; the interval spans the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the resampled means.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    differences = paired_differences(a, b)
    n = differences.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    block = max(1, _MAX_BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        picks = rng.integers(0, n, size=(size, n))
        means[start : start + size] = differences[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _abs_flipped_sums(flip_masks: np.ndarray, differences: np.ndarray) -> np.ndarray:
    """``|sum(±d)|`` per row of ``flip_masks: [R, Q]`` (1 = flip the sign of that query)."""
    flipped_part = flip_masks.astype(np.float64) @ differences
    return np.abs(differences.sum() - 2.0 * flipped_part)


def _all_flip_masks(n: int) -> np.ndarray:
    """All ``2**n`` sign assignments as a ``[2**n, n]`` 0/1 array (row 0 is the identity)."""
    codes = np.arange(2**n, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n, dtype=np.int64)) & 1).astype(np.uint8)


def _random_flip_masks(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``[rows, n]`` independent fair 0/1 flips, drawn 8 per random byte."""
    random_bytes = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(random_bytes, axis=1, count=n)
