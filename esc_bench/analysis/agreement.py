"""A judge's agreement with reference scores (human annotations or another judge).

Reference format (JSONL, one object a line; or CSV with a header; or a JSON list):
    {"task": "esc_eval_en", "model": "llama3", "card_id": "32025", "dimension": "empathy", "score": 3}
`task` and `model` are optional (then a row matches on card and dimension alone, and must match
exactly one scored dialogue). `dimension` is a paper name (fluency, expression, empathy,
information, skillful, humanoid, overall) or an upstream key (diversity, empathic, suggestion,
tech, human). `score` is 0-4; empty, null or -1 = missing. A run folder is a reference too.

Metrics per dimension and pooled ("all"): exact accuracy and ±1 accuracy (the paper's ACC and
ACC_soft), quadratic-weighted kappa, Spearman's rho, Krippendorff's alpha (ordinal), the mean
difference judge − reference; n; bootstrap 95% CIs (resampling dialogues, so "all" keeps a
dialogue's dimensions together).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esc_bench.dimensions import BY_KEY, BY_NAME, DIMENSION_NAMES, SCORE_MAX, SCORE_MIN
from esc_bench.errors import DataError, UserError, parse_json, read_text
from esc_bench.records import DialogueRecord, ScoreRecord

if TYPE_CHECKING:
    import numpy as np

K = SCORE_MAX - SCORE_MIN + 1  # 5 categories
METRICS = ("exact", "within1", "qwk", "spearman", "alpha", "bias")
ALL = "all"
Pair = tuple[tuple[str, str, str], str, int, int]  # (dialogue key, dimension, judge score, reference score)


@dataclass(frozen=True)
class RefScore:
    card_id: str
    dimension: str
    score: int | None
    task: str | None = None
    model: str | None = None


def normalize_dimension(name: str) -> str:
    """A paper name or upstream key (any case) -> the paper name."""
    key = str(name).strip().lower()
    if key in BY_NAME:
        return key
    if key in BY_KEY:
        return BY_KEY[key].name
    raise ValueError(f"unknown dimension {name!r} (one of {', '.join(DIMENSION_NAMES)} or their upstream keys)")


def _parse_score(value: Any, where: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "null", "None", "NA", "nan")):
        return None
    if isinstance(value, bool):
        raise DataError(f"{where}: score {value!r} is not a number")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: score {value!r} is not a number") from None
    if not math.isfinite(f):
        raise DataError(f"{where}: score {value!r} is not a finite number")
    if f != int(f):
        raise DataError(f"{where}: score {value!r} is not a whole number")
    v = int(f)
    if v == -1:
        return None
    if not SCORE_MIN <= v <= SCORE_MAX:
        raise DataError(f"{where}: score {v} is outside {SCORE_MIN}-{SCORE_MAX}")
    return v


def _row_to_ref(row: dict[str, Any], where: str) -> RefScore:
    for need in ("card_id", "dimension", "score"):
        if need not in row:
            raise DataError(f"{where}: missing field {need!r} (need card_id, dimension, score; task, model optional)")
    try:
        dim = normalize_dimension(row["dimension"])
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None
    opt = {k: (str(row[k]).strip() or None) if row.get(k) is not None else None for k in ("task", "model")}
    return RefScore(card_id=str(row["card_id"]).strip(), dimension=dim,
                    score=_parse_score(row["score"], where), **opt)


def load_reference_file(path: Path) -> list[RefScore]:
    """Reference scores from JSONL (.jsonl/.ndjson), CSV (.csv) or a JSON list (.json)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"reference {path} not found")
    suffix = path.suffix.lower()
    text = read_text(path, what="reference")
    out = []
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for i, row in enumerate(reader, start=2):
            out.append(_row_to_ref({k.strip(): v for k, v in row.items() if k}, f"{path}:{i}"))
        return out
    if suffix == ".json":
        data = parse_json(text, str(path))
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of score objects")
        for i, r in enumerate(data):
            if not isinstance(r, dict):
                raise DataError(f"{path}[{i}]: expected a score object, got {type(r).__name__}")
            out.append(_row_to_ref(r, f"{path}[{i}]"))
        return out
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = parse_json(line, str(path), line=i)
        if not isinstance(row, dict):
            raise DataError(f"{path}:{i}: expected an object")
        out.append(_row_to_ref(row, f"{path}:{i}"))
    return out


def refs_from_scores(scores: list[ScoreRecord]) -> list[RefScore]:
    return [RefScore(card_id=s.card_id, dimension=s.dimension, score=_int_score(s.score), task=s.task, model=s.model)
            for s in scores]


def _int_score(score: float | None) -> int | None:
    """A rubric score (0-4) as the int the confusion matrix indexes by."""
    return None if score is None else int(score)


def transcript_digest(d: DialogueRecord) -> str:
    """A digest of a dialogue's transcript: the speaker and text of every turn, in order."""
    turns = [[t.speaker, t.text] for t in d.transcript]
    return hashlib.sha256(json.dumps(turns, ensure_ascii=False).encode("utf-8")).hexdigest()


def transcript_mismatches(
    judged: list[ScoreRecord],
    refs: list[RefScore],
    dialogues: list[DialogueRecord],
    ref_dialogues: list[DialogueRecord],
) -> set[tuple[str, str, str]]:
    """(task, model, card) of the dialogues scored on both sides whose transcripts differ.

    For a reference that is another run: the same card ids do not make the same dialogue. A
    dialogue with no record on one side counts as differing (nothing shows it is the same).
    """
    mine = {d.key: transcript_digest(d) for d in dialogues}
    theirs = {d.key: transcript_digest(d) for d in ref_dialogues}
    ref_keys = {(r.task, r.model, r.card_id) for r in refs}
    both = {(s.task, s.model, s.card_id) for s in judged} & ref_keys
    return {k for k in both if mine.get(k) is None or mine.get(k) != theirs.get(k)}


@dataclass
class Matched:
    pairs: list[Pair]  # (dialogue key, dimension, judge, reference)
    n_judge_missing: int = 0
    n_ref_missing: int = 0
    n_unmatched_ref: int = 0  # reference rows with no scored dialogue
    n_unreferenced: int = 0  # judge scores without a reference


def match(judged: list[ScoreRecord], refs: list[RefScore]) -> Matched:
    """Pair each reference row with the judge's score of the same dialogue and dimension."""
    index: dict[tuple[str, str], list[ScoreRecord]] = {}
    for s in judged:
        index.setdefault((s.card_id, s.dimension), []).append(s)
    out = Matched(pairs=[])
    used: dict[tuple, RefScore] = {}
    for r in refs:
        cands = [s for s in index.get((r.card_id, r.dimension), [])
                 if (r.task is None or s.task == r.task) and (r.model is None or s.model == r.model)]
        if not cands:
            out.n_unmatched_ref += 1
            continue
        if len(cands) > 1:
            where = ", ".join(sorted({f"{s.task}/{s.model}" for s in cands})[:4])
            raise UserError(
                f"reference card {r.card_id} {r.dimension} matches {len(cands)} scored dialogues ({where}); "
                "give task/model in the reference or choose with --task/--model"
            )
        s = cands[0]
        if s.key in used:
            raise DataError(f"two reference scores for {s.task}/{s.model} card {s.card_id} {s.dimension}")
        used[s.key] = r
        if s.score is None:
            out.n_judge_missing += 1
        elif r.score is None:
            out.n_ref_missing += 1
        else:
            judge_score = _parse_score(s.score, f"judge {s.judge}, {s.task}/{s.model} card {s.card_id} {s.dimension}")
            if judge_score is None:
                out.n_judge_missing += 1
                continue
            out.pairs.append(((s.task, s.model, s.card_id), s.dimension, judge_score, r.score))
    out.n_unreferenced = sum(1 for s in judged if s.key not in used)
    return out


# -- metrics from confusion matrices (rows: judge, columns: reference) --------------------------


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
