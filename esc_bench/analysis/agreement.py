"""A judge's agreement with reference scores (human annotations or another judge): the metrics.

Metrics per dimension and pooled ("all"): exact accuracy and ±1 accuracy (the paper's ACC and
ACC_soft), quadratic-weighted kappa, Spearman's rho, Krippendorff's alpha (ordinal), the mean
difference judge − reference; n; bootstrap 95% CIs (resampling dialogues, so "all" keeps a
dialogue's dimensions together). Reading references: agreement_refs.py; pairing: agreement_match.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esc_bench.analysis.agreement_match import Pair, match
from esc_bench.analysis.agreement_refs import RefScore
from esc_bench.dimensions import DIMENSION_NAMES, SCORE_MAX, SCORE_MIN
from esc_bench.errors import UserError
from esc_bench.records import ScoreRecord

if TYPE_CHECKING:
    import numpy as np

K = SCORE_MAX - SCORE_MIN + 1  # 5 categories
METRICS = ("exact", "within1", "qwk", "spearman", "alpha", "bias")
ALL = "all"


def metrics_from_confusion(m: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric for a batch of K×K confusion matrices (shape (..., K, K)); NaN where undefined."""
    import numpy as np

    m = np.asarray(m, dtype=float)
    idx = np.arange(K, dtype=float)
    n = m.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = idx[:, None] - idx[None, :]
        exact = np.trace(m, axis1=-2, axis2=-1) / n
        within1 = (m * (np.abs(diff) <= 1)).sum(axis=(-2, -1)) / n
        bias = (m * diff).sum(axis=(-2, -1)) / n
        rows, cols = m.sum(axis=-1), m.sum(axis=-2)
        # quadratic-weighted kappa
        w = diff**2 / (K - 1) ** 2
        expected = rows[..., :, None] * cols[..., None, :] / n[..., None, None]
        den = (w * expected).sum(axis=(-2, -1))
        qwk = np.where(den > 0, 1 - (w * m).sum(axis=(-2, -1)) / np.where(den > 0, den, 1), np.nan)
        # Spearman: Pearson correlation of mid-ranks, weighted by cell counts
        ra = np.cumsum(rows, axis=-1) - rows + (rows + 1) / 2
        rb = np.cumsum(cols, axis=-1) - cols + (cols + 1) / 2
        mean_a = (rows * ra).sum(-1) / n
        mean_b = (cols * rb).sum(-1) / n
        da, db = ra - mean_a[..., None], rb - mean_b[..., None]
        cov = (m * da[..., :, None] * db[..., None, :]).sum(axis=(-2, -1))
        va, vb = (rows * da**2).sum(-1), (cols * db**2).sum(-1)
        spearman = np.where((va > 0) & (vb > 0), cov / np.sqrt(np.where(va * vb > 0, va * vb, 1)), np.nan)
        # Krippendorff's alpha, ordinal, two coders, no missing values
        o = m + np.swapaxes(m, -1, -2)
        nc = o.sum(axis=-1)
        total = nc.sum(-1)
        cum = np.cumsum(nc, axis=-1)
        lo_i, hi_i = np.minimum.outer(np.arange(K), np.arange(K)), np.maximum.outer(np.arange(K), np.arange(K))
        cum_before = np.concatenate([np.zeros_like(cum[..., :1]), cum[..., :-1]], axis=-1)
        span = np.take(cum, hi_i, axis=-1) - np.take(cum_before, lo_i, axis=-1)
        delta = (span - (nc[..., :, None] + nc[..., None, :]) / 2) ** 2
        d_o = (o * delta).sum(axis=(-2, -1))
        d_e = (nc[..., :, None] * nc[..., None, :] * delta).sum(axis=(-2, -1))
        alpha = np.where(d_e > 0, 1 - (total - 1) * d_o / np.where(d_e > 0, d_e, 1), np.nan)
    return {"exact": exact, "within1": within1, "qwk": qwk, "spearman": spearman, "alpha": alpha, "bias": bias}


def confusion(judge: list[int], ref: list[int]) -> np.ndarray:
    import numpy as np

    m = np.zeros((K, K))
    np.add.at(m, (np.asarray(judge, dtype=int) - SCORE_MIN, np.asarray(ref, dtype=int) - SCORE_MIN), 1)
    return m


def qwk(judge: list[int], ref: list[int]) -> float | None:
    v = float(metrics_from_confusion(confusion(judge, ref))["qwk"])
    return None if v != v else v


def spearman(judge: list[int], ref: list[int]) -> float | None:
    import warnings

    from scipy import stats

    if len(judge) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = float(stats.spearmanr(judge, ref).statistic)
    return None if v != v else v


def krippendorff_alpha(judge: list[int], ref: list[int]) -> float | None:
    """Ordinal alpha from the `krippendorff` package (None when undefined)."""
    import warnings

    import krippendorff
    import numpy as np

    if len(judge) < 2:
        return None
    data = np.vstack([np.asarray(judge, dtype=float), np.asarray(ref, dtype=float)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                         value_domain=list(range(SCORE_MIN, SCORE_MAX + 1))))
        except (ValueError, ZeroDivisionError):
            return None
    return None if v != v else v


@dataclass
class Metric:
    value: float | None
    ci95: tuple[float, float] | None = None


@dataclass
class AgreementRow:
    dimension: str  # a paper name or "all"
    n: int
    metrics: dict[str, Metric] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "n": self.n,
            **{k: {"value": m.value, "ci95": list(m.ci95) if m.ci95 else None} for k, m in self.metrics.items()},
        }


def _r(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 6)


def agreement_row(
    dimension: str,
    pairs: list[Pair],
    *,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> AgreementRow:
    """Metrics of the given (dialogue, dimension, judge, reference) pairs, with cluster-bootstrap CIs."""
    import numpy as np

    n = len(pairs)
    row = AgreementRow(dimension=dimension, n=n)
    if n == 0:
        row.metrics = {k: Metric(None) for k in METRICS}
        return row
    js, rs = [p[2] for p in pairs], [p[3] for p in pairs]
    point: dict[str, float | None] = {k: float(v) for k, v in metrics_from_confusion(confusion(js, rs)).items()}
    point["spearman"] = spearman(js, rs)
    point["alpha"] = krippendorff_alpha(js, rs)
    # Units = dialogues: a resample draws dialogues with replacement and keeps all their pairs.
    units: dict[tuple, int] = {}
    unit_of = [units.setdefault(p[0], len(units)) for p in pairs]
    cells = np.zeros((len(units), K * K))
    np.add.at(cells, (np.asarray(unit_of), np.asarray(js) * K + np.asarray(rs) - SCORE_MIN * (K + 1)), 1)
    cis: dict[str, tuple[float, float] | None] = {k: None for k in METRICS}
    if len(units) >= 2:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(len(units), np.full(len(units), 1 / len(units)), size=n_resamples)
        boot = metrics_from_confusion((weights @ cells).reshape(n_resamples, K, K))
        tail = (1 - confidence) / 2 * 100
        for k, vals in boot.items():
            ok = vals[~np.isnan(vals)]
            if ok.size >= max(2, n_resamples // 2):
                cis[k] = (round(float(np.percentile(ok, tail)), 6), round(float(np.percentile(ok, 100 - tail)), 6))
    values = {k: _r(point[k]) for k in METRICS}
    row.metrics = {k: Metric(values[k], cis[k] if values[k] is not None else None) for k in METRICS}
    return row


@dataclass
class Agreement:
    judge: str
    reference: str
    tasks: list[str]
    rows: list[AgreementRow]
    n_judge_missing: int
    n_ref_missing: int
    n_unmatched_ref: int
    n_unreferenced: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "reference": self.reference,
            "tasks": self.tasks,
            "n_judge_missing": self.n_judge_missing,
            "n_ref_missing": self.n_ref_missing,
            "n_unmatched_ref": self.n_unmatched_ref,
            "n_unreferenced": self.n_unreferenced,
            "rows": [r.to_dict() for r in self.rows],
        }


def agreement(
    judged: list[ScoreRecord],
    refs: list[RefScore],
    *,
    judge: str = "judge",
    reference: str = "reference",
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> Agreement:
    """Per dimension (paper order) and pooled over dimensions ("all")."""
    m = match(judged, refs)
    if not m.pairs:
        raise UserError(
            f"no scores to compare: {m.n_unmatched_ref} reference rows matched no scored dialogue, "
            f"{m.n_judge_missing} had no judge score, {m.n_ref_missing} no reference score"
        )
    def row(dim: str, pairs: list[Pair]) -> AgreementRow:
        return agreement_row(dim, pairs, seed=seed, confidence=confidence, n_resamples=n_resamples)

    rows = [row(dim, [p for p in m.pairs if p[1] == dim]) for dim in DIMENSION_NAMES]
    rows = [r for r in rows if r.n]
    rows.append(row(ALL, m.pairs))
    return Agreement(
        judge=judge, reference=reference, tasks=sorted({p[0][0] for p in m.pairs}), rows=rows,
        n_judge_missing=m.n_judge_missing, n_ref_missing=m.n_ref_missing,
        n_unmatched_ref=m.n_unmatched_ref, n_unreferenced=m.n_unreferenced,
    )
