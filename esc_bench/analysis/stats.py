"""Statistics for reports: bootstrap confidence intervals, paired tests, win/tie/loss counts.

Every function is deterministic for a given seed. numpy and scipy are imported inside the
functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

Interval = tuple[float, float]

# Below this many non-zero differences the Wilcoxon test is replaced by the exact sign test.
MIN_WILCOXON_NONZERO = 10
# Up to this many non-zero differences the Wilcoxon p-value is exact (ties and zeros included).
MAX_EXACT_WILCOXON = 400


class PairedTest(NamedTuple):
    p_value: float | None  # None when there are no pairs
    method: str  # "wilcoxon" | "sign" | "none"
    n: int  # pairs
    n_nonzero: int  # pairs whose difference is not 0


class WinTieLoss(NamedTuple):
    win: int  # a > b
    tie: int
    loss: int  # a < b


@functools.lru_cache(maxsize=1)
def _rng_keyword() -> str:
    """scipy >= 1.15 takes `rng`; older releases take `random_state`."""
    from scipy import stats

    return "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def _rng_kwargs(seed: int) -> dict:
    import numpy as np

    return {_rng_keyword(): np.random.default_rng(seed)}


def _clean(values: Sequence[float | None]) -> np.ndarray:
    import numpy as np

    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[~np.isnan(arr)]


_BLOCK_VALUES = 1 << 18  # resampled values drawn at a time by the percentile bootstrap (2 MB)


def bootstrap_mean_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: str = "percentile",
) -> Interval | None:
    """A bootstrap confidence interval of the mean (None values are dropped).

    Fewer than 2 values: None. All values equal: (v, v). `method` is "percentile" (default)
    or "BCa" (falls back to percentile where BCa is undefined).
    """
    arr = _clean(values)
    return _bootstrap_mean(arr, confidence=confidence, n_resamples=n_resamples, seed=seed, method=method)


def _bootstrap_mean(arr: np.ndarray, *, confidence: float, n_resamples: int, seed: int, method: str) -> Interval | None:
    import warnings

    import numpy as np

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if method not in ("percentile", "BCa", "basic"):
        raise ValueError(f"unknown bootstrap method {method!r}")
    if arr.size < 2:
        return None
    if np.all(arr == arr[0]):
        v = float(arr[0])
        return (v, v)
    if method == "percentile":
        # The percentile bootstrap needs no more than numpy; it spares every run scipy's ~2 s
        # import. tests/test_stats.py checks it against scipy.stats.bootstrap.
        # Resampled in blocks of rows: memory stays small for thousands of values, and the draws
        # (so the interval) are exactly those of one (n_resamples, n) draw.
        rng = np.random.default_rng(seed)
        block = max(1, _BLOCK_VALUES // arr.size)
        means = np.concatenate([
            arr[rng.integers(0, arr.size, size=(min(block, n_resamples - i), arr.size))].mean(axis=1)
            for i in range(0, n_resamples, block)
        ])
        tail = (1 - confidence) / 2 * 100
        lo, hi = np.percentile(means, [tail, 100 - tail])
        return (float(lo), float(hi))
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's degenerate-distribution warning: handled below
        res = stats.bootstrap(
            (arr,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method=method,
            vectorized=True,
            **_rng_kwargs(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if (np.isnan(lo) or np.isnan(hi)) and method != "percentile":
        return _bootstrap_mean(arr, confidence=confidence, n_resamples=n_resamples, seed=seed, method="percentile")
    if np.isnan(lo) or np.isnan(hi):
        return None
    return (lo, hi)


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)})")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def paired_bootstrap_diff_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: str = "percentile",
) -> Interval | None:
    """CI of mean(a - b), resampling pairs (the pairing is kept)."""
    x, y = _paired_arrays(a, b)
    return _bootstrap_mean(x - y, confidence=confidence, n_resamples=n_resamples, seed=seed, method=method)


def paired_test_result(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Two-sided paired test of a against b.

    Wilcoxon signed-rank (Pratt's handling of zero differences: they are ranked, then dropped,
    which suits scores with many ties): exact up to MAX_EXACT_WILCOXON non-zero differences
    (the permutation distribution given the tied ranks), scipy's normal approximation with tie
    correction beyond. The exact sign test when fewer than MIN_WILCOXON_NONZERO differences are
    non-zero; p = 1 when every difference is 0.
    """
    import numpy as np
    from scipy import stats

    x, y = _paired_arrays(a, b)
    d = x - y
    n = int(d.size)
    if n == 0:
        return PairedTest(None, "none", 0, 0)
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        return PairedTest(1.0, "sign", n, 0)
    if nonzero < MIN_WILCOXON_NONZERO:
        k = int(np.count_nonzero(d > 0))
        p = stats.binomtest(k, nonzero, 0.5, alternative="two-sided").pvalue
        return PairedTest(float(min(1.0, p)), "sign", n, nonzero)
    if nonzero <= MAX_EXACT_WILCOXON:
        return PairedTest(signed_rank_exact_p(d), "wilcoxon", n, nonzero)
    try:
        res = stats.wilcoxon(d, zero_method="pratt", alternative="two-sided", method="asymptotic")
    except ValueError:  # scipy < 1.13 calls the normal approximation "approx"
        res = stats.wilcoxon(d, zero_method="pratt", alternative="two-sided", method="approx")
    return PairedTest(float(min(1.0, res.pvalue)), "wilcoxon", n, nonzero)


def signed_rank_exact_p(d: np.ndarray) -> float:
    """Two-sided exact p of the Wilcoxon signed-rank test (Pratt), ties and zeros included.

    Ranks of |d| are mid-ranks over all differences (zeros too); the zeros' ranks are then
    dropped. Under H0 each remaining sign is + or − with probability 1/2: the distribution of
    the positive-rank sum is counted exactly (ranks doubled to integers). p = 2·min(tails), ≤ 1.
    """
    import numpy as np
    from scipy import stats

    d = np.asarray(d, dtype=float)
    ranks = stats.rankdata(np.abs(d))
    nz = d != 0
    r2 = np.rint(ranks[nz] * 2).astype(np.int64)
    s_obs = int(r2[d[nz] > 0].sum())
    total = int(r2.sum())
    prob = np.zeros(total + 1, dtype=np.float64)  # P(positive-rank sum = s), built one sign at a time
    prob[0] = 1.0
    for r in r2:
        shifted = np.zeros_like(prob)
        shifted[r:] = prob[: total + 1 - r]
        prob = (prob + shifted) / 2
    lower = prob[: s_obs + 1].sum()
    upper = prob[s_obs:].sum()
    return float(min(1.0, 2 * min(lower, upper)))


def paired_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The p-value of paired_test_result (None without pairs)."""
    return paired_test_result(a, b).p_value


def win_tie_loss(a: Sequence[float], b: Sequence[float]) -> WinTieLoss:
    """Pairs where a scores higher, equal, lower than b."""
    x, y = _paired_arrays(a, b)
    win = int((x > y).sum())
    loss = int((x < y).sum())
    return WinTieLoss(win, int(x.size) - win - loss, loss)


def half_width(ci: Interval | None) -> float | None:
    return None if ci is None else (ci[1] - ci[0]) / 2


def mean_trajectory(trajectories: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Mean value per turn index over all dialogues (one that ended carries its last value forward),
    and how many dialogues were still going at each index."""
    rows = [list(t) for t in trajectories if len(t)]
    if not rows:
        return (), ()
    length = max(len(t) for t in rows)
    means, active = [], []
    for i in range(length):
        values = [t[i] if i < len(t) else t[-1] for t in rows]
        means.append(round(sum(values) / len(values), 4))
        active.append(sum(1 for t in rows if i < len(t)))
    return tuple(means), tuple(active)
