"""Paired significance tests: hand-computed cases, degenerate inputs, and scipy as the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from synthrank.evaluate.significance import bootstrap_ci, paired_t_test, randomization_test


def _mean_difference(x, y, axis):
    return np.mean(x - y, axis=axis)


def _scipy_randomization_p(a, b, n_resamples, seed):
    return stats.permutation_test(
        (a, b),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=seed,
    ).pvalue


# ----------------------------------------------------------------------------- hand-computed


def test_randomization_two_queries_by_hand():
    # d = [1, 2]: signed sums 3, 1, -1, -3; |sum| >= 3 for 2 of the 4 assignments.
    assert randomization_test([1.0, 2.0], [0.0, 0.0]) == 0.5


def test_randomization_three_queries_by_hand():
    # d = [1, -1, 2], observed |sum| = 2; the 8 signed sums are 4, 0, 2, -2, 2, -2, 0, -4:
    # six of them reach |sum| >= 2.
    assert randomization_test([1.0, -1.0, 2.0], [0.0, 0.0, 0.0]) == 0.75


def test_randomization_monte_carlo_floor_is_one_over_resamples_plus_one():
    # 50 positive differences: no random sign assignment (probability 2 / 2**50) reaches the
    # observed sum, so only the +1 correction counts.
    a = np.linspace(0.2, 0.9, 50)
    assert randomization_test(a, a - 0.1, n_resamples=999) == pytest.approx(1 / 1000)
    assert randomization_test(a, a - 0.1) == pytest.approx(1 / 10001)


def test_t_test_by_hand():
    # d = [1, 2, 3]: t = 2 / (1 / sqrt(3)) = 2 sqrt(3), df = 2, and for df = 2 the two-sided
    # p-value is 1 - t / sqrt(t**2 + 2) = 1 - sqrt(6 / 7).
    assert paired_t_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]) == pytest.approx(1 - math.sqrt(6 / 7), rel=1e-12)


# ----------------------------------------------------------------------------- degenerate cases


@pytest.mark.parametrize("n", [1, 5, 200])
def test_identical_arrays_give_p_one(n):
    a = np.random.default_rng(n).random(n)
    assert paired_t_test(a, a.copy()) == 1.0
    assert randomization_test(a, a.copy()) == 1.0


def test_t_test_constant_nonzero_differences_give_zero():
    assert paired_t_test([0.5, 0.6, 0.7], [0.25, 0.35, 0.45]) == 0.0


def test_clearly_shifted_pair_is_significant():
    rng = np.random.default_rng(7)
    baseline = rng.random(100) * 0.6
    system = baseline + 0.2 + rng.normal(0.0, 0.05, 100)
    assert paired_t_test(system, baseline) < 0.01
    assert randomization_test(system, baseline) < 0.01


@pytest.mark.parametrize("bad", [([0.1, 0.2], [0.1]), ([], []), ([0.1, float("nan")], [0.1, 0.2]), ([[0.1]], [[0.2]])])
def test_malformed_pairs_are_refused(bad):
    a, b = bad
    with pytest.raises(ValueError):
        paired_t_test(a, b)
    with pytest.raises(ValueError):
        randomization_test(a, b)


def test_randomization_is_seeded_and_symmetric():
    rng = np.random.default_rng(3)
    a, b = rng.random(40), rng.random(40)
    p = randomization_test(a, b, seed=11)
    assert randomization_test(a, b, seed=11) == p
    assert randomization_test(b, a, seed=11) == p


# ----------------------------------------------------------------------------- against scipy


def test_t_test_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a, b = rng.random(60), rng.random(60)
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)


def test_exact_randomization_matches_scipy_exactly():
    # 2**10 = 1024 <= 10000 resamples: both enumerate every sign assignment.
    rng = np.random.default_rng(1)
    a = rng.random(10)
    b = a - 0.05 + rng.normal(0.0, 0.2, 10)
    assert randomization_test(a, b) == pytest.approx(_scipy_randomization_p(a, b, 10000, 0), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_monte_carlo_randomization_agrees_with_scipy(seed):
    rng = np.random.default_rng(100 + seed)
    n = 40
    a = rng.random(n)
    b = a - 0.04 * seed + rng.normal(0.0, 0.2, n)
    n_resamples = 10000
    ours = randomization_test(a, b, n_resamples=n_resamples, seed=seed)
    theirs = _scipy_randomization_p(a, b, n_resamples, seed + 1000)
    # Two independent Monte-Carlo estimates of the same p: allow 5 standard errors of their difference.
    p = (ours + theirs) / 2
    tolerance = 5 * math.sqrt(2 * p * (1 - p) / n_resamples) + 2 / n_resamples
    assert abs(ours - theirs) <= tolerance


def test_bootstrap_ci_agrees_with_scipy_and_brackets_the_mean():
    rng = np.random.default_rng(5)
    a = rng.random(80)
    b = a - 0.05 + rng.normal(0.0, 0.2, 80)
    low, high = bootstrap_ci(a, b, confidence=0.95, seed=0)
    assert low < np.mean(a - b) < high
    reference = stats.bootstrap(
        (a - b,), np.mean, confidence_level=0.95, method="percentile", n_resamples=10000, random_state=1
    ).confidence_interval
    width = high - low
    assert low == pytest.approx(reference.low, abs=0.05 * width)
    assert high == pytest.approx(reference.high, abs=0.05 * width)


def test_bootstrap_ci_of_identical_arrays_is_zero():
    a = np.random.default_rng(2).random(30)
    assert bootstrap_ci(a, a.copy()) == (0.0, 0.0)
