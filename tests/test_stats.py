"""Bootstrap CIs, paired tests and win/tie/loss counts against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from esc_bench.analysis.stats import (
    MAX_EXACT_WILCOXON,
    MIN_WILCOXON_NONZERO,
    bootstrap_mean_ci,
    half_width,
    paired_bootstrap_diff_ci,
    paired_test,
    paired_test_result,
    signed_rank_exact_p,
    win_tie_loss,
)


def _scipy_ci(values, method="percentile", seed=0, n=2000, conf=0.95):
    res = stats.bootstrap((np.asarray(values, float),), np.mean, n_resamples=n, confidence_level=conf,
                          method=method, vectorized=True, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def test_bootstrap_ci_is_scipys_percentile_interval_for_the_seed() -> None:
    values = [0, 1, 1, 2, 3, 3, 3, 4, 2, 1, 0, 4]
    assert bootstrap_mean_ci(values) == pytest.approx(_scipy_ci(values))
    assert bootstrap_mean_ci(values, method="BCa", seed=7) == pytest.approx(_scipy_ci(values, "BCa", 7))


def test_bootstrap_ci_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    values = list(np.random.default_rng(3).random(40) * 4)  # continuous: quantiles move with the seed
    assert bootstrap_mean_ci(values, seed=1) == bootstrap_mean_ci(values, seed=1)
    assert bootstrap_mean_ci(values, seed=1) != bootstrap_mean_ci(values, seed=2)


def test_bootstrap_ci_matches_the_normal_interval_for_a_large_sample() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, 2000).astype(float)
    lo, hi = bootstrap_mean_ci(values, n_resamples=4000)
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert lo == pytest.approx(values.mean() - 1.96 * se, abs=0.2 * se)
    assert hi == pytest.approx(values.mean() + 1.96 * se, abs=0.2 * se)


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_mean_ci([]) is None
    assert bootstrap_mean_ci([3]) is None
    assert bootstrap_mean_ci([None, 2]) is None  # None values are dropped
    assert bootstrap_mean_ci([2, 2, 2, 2]) == (2.0, 2.0)
    assert bootstrap_mean_ci([2, 2, 2, 2], method="BCa") == (2.0, 2.0)
    # BCa is undefined for a near-degenerate sample: falls back to percentile, never NaN.
    ci = bootstrap_mean_ci([0] * 30 + [1], method="BCa")
    assert ci is not None and not any(math.isnan(x) for x in ci)
    narrow, wide = bootstrap_mean_ci([0, 1, 2, 3, 4] * 4, confidence=0.5), bootstrap_mean_ci([0, 1, 2, 3, 4] * 4)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1, 2], confidence=1.5)
    assert half_width((1.0, 2.0)) == 0.5 and half_width(None) is None


def test_paired_ci_keeps_the_pairing() -> None:
    rng = np.random.default_rng(5)
    b = rng.integers(0, 4, 50).astype(float)
    a = b + 1  # every pair differs by exactly 1, though both samples vary a lot
    assert paired_bootstrap_diff_ci(a, b) == (1.0, 1.0)
    a2 = rng.integers(0, 5, 50)
    diffs = a2 - b
    assert paired_bootstrap_diff_ci(a2, b, seed=4) == pytest.approx(_scipy_ci(diffs, seed=4))
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap_diff_ci([1, 2], [1])


def test_paired_test_all_ties_gives_p_one() -> None:
    r = paired_test_result([1, 2, 3, 4], [1, 2, 3, 4])
    assert r.p_value == 1.0 and r.method == "sign" and r.n == 4 and r.n_nonzero == 0
    assert paired_test([], []) is None


def test_paired_test_uses_the_exact_sign_test_for_few_nonzero_differences() -> None:
    # 5 positive differences, 1 zero: two-sided exact sign test p = 2 * 0.5**5
    r = paired_test_result([3, 3, 3, 3, 3, 2], [2, 2, 2, 1, 0, 2])
    assert r.method == "sign" and r.n_nonzero == 5
    assert r.p_value == pytest.approx(2 * 0.5**5)
    # 3 up, 1 down: p = 2 * P(X >= 3 | n=4) = 2 * 5/16
    assert paired_test([2, 2, 2, 0], [1, 1, 1, 1]) == pytest.approx(10 / 16)


def test_wilcoxon_exact_for_distinct_differences_hand_computed() -> None:
    # differences 1..20, all positive: W- = 0, exact two-sided p = 2 / 2**20
    b = [0.0] * 20
    a = [float(i) for i in range(1, 21)]
    r = paired_test_result(a, b)
    assert r.method == "wilcoxon"
    assert r.p_value == pytest.approx(2 / 2**20)


def test_exact_wilcoxon_with_ties_and_zeros_is_scipys_exhaustive_permutation_test() -> None:
    # ties and zeros: scipy enumerates all 2**n sign patterns for n <= 13 (slow); ours counts them
    d = np.array([1, -1, 2, -2, 0, 1, 3, -1, 1, 2, 1])
    a, b = d + 2, np.full(d.size, 2)
    r = paired_test_result(a, b)
    assert r.method == "wilcoxon" and r.n_nonzero == MIN_WILCOXON_NONZERO == 10
    assert r.p_value == pytest.approx(stats.wilcoxon(d, zero_method="pratt").pvalue, rel=1e-9)
    assert signed_rank_exact_p(np.ones(12)) == pytest.approx(2 / 2**12)


def test_large_samples_use_the_normal_approximation_with_pratt_zeros() -> None:
    rng = np.random.default_rng(11)
    a = rng.integers(0, 5, 2 * MAX_EXACT_WILCOXON)
    b = np.clip(a + rng.integers(-1, 2, a.size) - (rng.random(a.size) < 0.2), 0, 4)
    d = a - b
    assert np.count_nonzero(d) > MAX_EXACT_WILCOXON and np.count_nonzero(d) < d.size
    expected = stats.wilcoxon(d, zero_method="pratt", method="asymptotic").pvalue
    r = paired_test_result(a, b)
    assert r.method == "wilcoxon" and r.p_value == pytest.approx(expected)
    assert paired_test(a, b) == pytest.approx(paired_test(b, a))  # two-sided: symmetric
    # exact and approximate agree closely at moderate n
    m = rng.integers(-2, 3, 200)
    approx = stats.wilcoxon(m, zero_method="pratt", method="asymptotic").pvalue
    assert signed_rank_exact_p(m) == pytest.approx(approx, abs=0.02)


def test_win_tie_loss_counts() -> None:
    assert win_tie_loss([3, 2, 1, 4, 0], [1, 2, 3, 4, 1]) == (1, 2, 2)
    w = win_tie_loss([1, 2], [0, 0])
    assert (w.win, w.tie, w.loss) == (2, 0, 0)
