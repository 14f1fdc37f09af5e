"""Paired comparison of two models (two runs, or two models in one run).

Dialogues are paired by (task, card). Differences are B − A ("v2 − v1": an improvement of B is
positive) and win/tie/loss counts from B's side. Per dimension (and the average): the mean
difference with a paired bootstrap CI, a paired test (Wilcoxon signed-rank, or the exact sign
test for few non-zero differences) with its Holm adjustment over the dimensions, win/tie/loss,
how many pairs the row uses and why others were left out, and a verdict that says "no
detectable difference" when the CI spans 0. The same rows per language and per category, and
the pairs whose averages differ most.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esc_bench.analysis.breakdown import group_key, group_label, group_order
from esc_bench.analysis.runs import (
    LoadedRun,
    dialogue_average,
    metric_names,
    run_specs,
    scores_by_dialogue,
)
from esc_bench.analysis.stats import (
    paired_bootstrap_diff_ci,
    paired_test_result,
    win_tie_loss,
)
from esc_bench.errors import UserError
from esc_bench.records import DialogueRecord, ProtocolSpec, ScoreRecord

NO_DIFFERENCE = "no detectable difference"
HOLM_FAILED = "(not after Holm correction)"  # ends a verdict whose CI excludes 0 but whose Holm p does not pass
SETTINGS = ("protocol", "simulator", "judge")
ORIENTATION = "differences are B − A; win/tie/loss count from B's side (win: B scored higher)"
COMPARE_FACETS: tuple[str, ...] = ("language", "category")
POOLED = "all tasks"

Scores = dict[str, float | None]
PairKey = tuple[str, str]  # task, card_id


@dataclass
class Side:
    """One model's dialogues and (one judge's) scores, with the settings of each task."""

    label: str
    model: str
    run_id: str
    dialogues: list[DialogueRecord]
    scores: list[ScoreRecord]
    meta_by_task: dict[str, dict[str, Any]]
    metrics: list[str] = field(default_factory=list)
    specs: dict[str, ProtocolSpec] = field(default_factory=dict)  # task -> its protocol's spec

    @classmethod
    def from_run(cls, run: LoadedRun, model: str, label: str | None = None) -> Side:
        dialogues = [d for d in run.dialogues if d.model == model]
        if not dialogues:
            have = ", ".join(run.models) or "none"
            raise UserError(f"{run.path}: no dialogues of model {model!r} (models: {have})")
        return cls(
            label=label or model,
            model=model,
            run_id=run.run_id,
            dialogues=dialogues,
            scores=[s for s in run.scores if s.model == model],
            meta_by_task=run.meta_by_task,
            metrics=metric_names(run),
            specs=run_specs(run),
        )


@dataclass
class DimComparison:
    dimension: str
    n: int  # pairs where both sides have this score
    mean_a: float | None
    mean_b: float | None
    diff: float | None  # mean of B − A over the pairs
    ci95: tuple[float, float] | None
    p_value: float | None
    test: str
    p_holm: float | None  # Holm-adjusted over the dimensions (None for the average)
    win: int  # B higher
    tie: int
    loss: int  # A higher
    verdict: str
    n_missing_a: int = 0  # ok pairs left out because A's score is missing (B's may be too)
    n_missing_b: int = 0  # ok pairs left out because B's score is missing


@dataclass
class GroupComparison:
    """The rows over the pairs of one language / category."""

    facet: str
    group: str
    label: str
    n_pairs: int
    rows: list[DimComparison]


@dataclass
class PairDiff:
    """One paired card: both dialogues' scores and the difference of their averages (B − A)."""

    task: str
    card_id: str
    avg_a: float | None
    avg_b: float | None
    diff: float
    scores_a: Scores
    scores_b: Scores
    a: DialogueRecord
    b: DialogueRecord
    records_a: dict[str, ScoreRecord] = field(default_factory=dict)  # metric -> score record (judge's reply)
    records_b: dict[str, ScoreRecord] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "card_id": self.card_id, "avg_a": _r(self.avg_a), "avg_b": _r(self.avg_b),
                "diff": _r(self.diff), "scores_a": self.scores_a, "scores_b": self.scores_b}


@dataclass
class Comparison:
    label_a: str
    label_b: str
    scope: str  # the task, or POOLED
    tasks: list[str]
    n_pairs: int  # (task, card) where both dialogues are ok
    n_failed: int  # common (task, card) dropped because a dialogue failed
    n_only_a: int
    n_only_b: int
    settings: dict[str, dict[str, dict[str, Any]]]  # task -> "a"/"b" -> protocol/simulator/judge
    differences: list[str]
    rows: list[DimComparison] = field(default_factory=list)
    breakdowns: dict[str, list[GroupComparison]] = field(default_factory=dict)
    top_pairs: list[PairDiff] = field(default_factory=list)
    specs: dict[str, ProtocolSpec] = field(default_factory=dict)  # task -> spec (how pages show its dialogues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label_a": self.label_a,
            "label_b": self.label_b,
            "orientation": ORIENTATION,
            "scope": self.scope,
            "tasks": self.tasks,
            "n_pairs": self.n_pairs,
            "n_failed": self.n_failed,
            "n_only_a": self.n_only_a,
            "n_only_b": self.n_only_b,
            "settings": self.settings,
            "differences": self.differences,
            "rows": [_row_dict(r) for r in self.rows],
            "breakdowns": {
                facet: [{"facet": g.facet, "group": g.group, "label": g.label, "n_pairs": g.n_pairs,
                         "rows": [_row_dict(r) for r in g.rows]} for g in groups]
                for facet, groups in self.breakdowns.items()
            },
            "top_pairs": [p.to_dict() for p in self.top_pairs],
        }


def _row_dict(r: DimComparison) -> dict[str, Any]:
    d = dict(r.__dict__)
    if d["ci95"] is not None:
        d["ci95"] = list(d["ci95"])
    return d


def verdict(ci: tuple[float, float] | None, n: int, label_a: str, label_b: str) -> str:
    """Which side is higher (B − A's CI excludes 0), or why no side is."""
    if n == 0:
        return "no pairs"
    if ci is None:
        return "too few pairs"
    lo, hi = ci
    if lo <= 0 <= hi:
        return NO_DIFFERENCE
    return f"{label_b} higher" if lo > 0 else f"{label_a} higher"


def settings_differences(a: Side, b: Side, tasks: list[str]) -> list[str]:
    """Lines naming each protocol / simulator / judge that differs between the sides."""
    out = []
    for task in tasks:
        ma, mb = a.meta_by_task.get(task, {}), b.meta_by_task.get(task, {})
        for key in SETTINGS:
            va, vb = ma.get(key), mb.get(key)
            if va != vb:
                out.append(f"{task}: {key} {va} ({a.label}) vs {vb} ({b.label})")
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def _common_averages(ra: Scores, rb: Scores, metrics: list[str]) -> tuple[float | None, float | None]:
    """Each side's mean over the dimensions scored on BOTH sides (None, None when there are none),
    so a pair never sets a 6-dimension mean against a 7-dimension one."""
    common = [d for d in metrics if ra.get(d) is not None and rb.get(d) is not None]
    return dialogue_average({d: ra[d] for d in common}), dialogue_average({d: rb[d] for d in common})


@dataclass
class _Pairs:
    """The ok pairs of two sides with each side's scores, and the metrics to compare."""

    keys: list[PairKey]
    da: dict[PairKey, DialogueRecord]
    db: dict[PairKey, DialogueRecord]
    sa: dict[PairKey, Scores]
    sb: dict[PairKey, Scores]
    metrics: list[str]
    records_a: dict[PairKey, dict[str, ScoreRecord]] = field(default_factory=dict)
    records_b: dict[PairKey, dict[str, ScoreRecord]] = field(default_factory=dict)


def _rows(p: _Pairs, keys: list[PairKey], label_a: str, label_b: str, *, seed: int, confidence: float,
          n_resamples: int) -> list[DimComparison]:
    rows = []
    for dim in [*p.metrics, "average"]:
        xs, ys = [], []
        miss_a = miss_b = 0
        for k in keys:
            ra, rb = p.sa.get(k, {}), p.sb.get(k, {})
            if dim == "average":
                va, vb = _common_averages(ra, rb, p.metrics)
            else:
                va, vb = ra.get(dim), rb.get(dim)
            if va is None:
                miss_a += 1
            if vb is None:
                miss_b += 1
            if va is not None and vb is not None:
                xs.append(float(va))
                ys.append(float(vb))
        n = len(xs)
        ci = paired_bootstrap_diff_ci(ys, xs, confidence=confidence, n_resamples=n_resamples, seed=seed)
        test = paired_test_result(ys, xs)
        wtl = win_tie_loss(ys, xs)
        rows.append(
            DimComparison(
                dimension=dim,
                n=n,
                mean_a=_r(sum(xs) / n) if n else None,
                mean_b=_r(sum(ys) / n) if n else None,
                diff=_r((sum(ys) - sum(xs)) / n) if n else None,
                ci95=None if ci is None else (_r(ci[0]), _r(ci[1])),  # type: ignore[arg-type]
                p_value=test.p_value,
                test=test.method,
                p_holm=None,
                win=wtl.win,
                tie=wtl.tie,
                loss=wtl.loss,
                verdict=verdict(ci, n, label_a, label_b),
                n_missing_a=miss_a,
                n_missing_b=miss_b,
            )
        )
    _apply_holm(rows)
    return rows


def _records(scores: list[ScoreRecord], pair_of: dict[Any, PairKey]) -> dict[PairKey, dict[str, ScoreRecord]]:
    """Each pair's score records on one side (later records win), for the pages' judge replies."""
    out: dict[PairKey, dict[str, ScoreRecord]] = {}
    for sc in scores:
        k = pair_of.get((sc.task, sc.model, sc.card_id))
        if k is not None:
            out.setdefault(k, {})[sc.dimension] = sc
    return out


def _top_pairs(p: _Pairs, keys: list[PairKey], limit: int) -> list[PairDiff]:
    """The pairs whose averages differ most (largest |B − A| first; ties by task and card)."""
    out = []
    for k in keys:
        ra, rb = p.sa.get(k, {}), p.sb.get(k, {})
        va, vb = _common_averages(ra, rb, p.metrics)
        if va is None or vb is None or vb == va:
            continue
        out.append(PairDiff(task=k[0], card_id=k[1], avg_a=va, avg_b=vb, diff=vb - va,
                            scores_a=dict(ra), scores_b=dict(rb), a=p.da[k], b=p.db[k],
                            records_a=p.records_a.get(k, {}), records_b=p.records_b.get(k, {})))
    out.sort(key=lambda x: (-abs(x.diff), x.task, x.card_id))
    return out[:limit]


def compare_sides(
    a: Side,
    b: Side,
    *,
    tasks: list[str] | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    facets: tuple[str, ...] = COMPARE_FACETS,
    top: int = 10,
    scope: str | None = None,
) -> Comparison:
    """Pair A's and B's dialogues by (task, card) over `tasks` (default all) and compare them."""
    da = {(d.task, d.card_id): d for d in a.dialogues if tasks is None or d.task in tasks}
    db = {(d.task, d.card_id): d for d in b.dialogues if tasks is None or d.task in tasks}
    common = [k for k in da if k in db]
    if not common:
        raise UserError(f"{a.label} and {b.label} have no (task, card) in common to pair")
    common_tasks = list(dict.fromkeys(t for t, _ in common))
    keys = [k for k in common if da[k].status == "ok" and db[k].status == "ok"]
    by_a, by_b = scores_by_dialogue(a.scores), scores_by_dialogue(b.scores)
    metrics = list(dict.fromkeys([*a.metrics, *b.metrics])) or metric_names(None)
    p = _Pairs(keys=keys, da=da, db=db, sa={k: by_a.get(da[k].key, {}) for k in keys},
               sb={k: by_b.get(db[k].key, {}) for k in keys}, metrics=metrics,
               records_a=_records(a.scores, {da[k].key: k for k in keys}),
               records_b=_records(b.scores, {db[k].key: k for k in keys}))
    kw: dict[str, Any] = {"seed": seed, "confidence": confidence, "n_resamples": n_resamples}
    breakdowns: dict[str, list[GroupComparison]] = {}
    for facet in facets:
        groups: dict[str, list[PairKey]] = {}
        for k in keys:
            groups.setdefault(group_key(da[k], facet), []).append(k)
        if len(groups) < 2:
            continue  # one group: the same rows as the whole table
        breakdowns[facet] = [
            GroupComparison(facet=facet, group=g, label=group_label(facet, g), n_pairs=len(ks),
                            rows=_rows(p, ks, a.label, b.label, **kw))
            for g, ks in sorted(groups.items(), key=lambda item: group_order(facet, item[0]))
        ]
    return Comparison(
        label_a=a.label,
        label_b=b.label,
        scope=scope or (common_tasks[0] if len(common_tasks) == 1 else POOLED),
        tasks=common_tasks,
        n_pairs=len(keys),
        n_failed=len(common) - len(keys),
        n_only_a=len(da) - len(common),
        n_only_b=len(db) - len(common),
        settings={
            t: {"a": {k: a.meta_by_task.get(t, {}).get(k) for k in SETTINGS},
                "b": {k: b.meta_by_task.get(t, {}).get(k) for k in SETTINGS}}
            for t in common_tasks
        },
        differences=settings_differences(a, b, common_tasks),
        rows=_rows(p, keys, a.label, b.label, **kw),
        breakdowns=breakdowns,
        top_pairs=_top_pairs(p, keys, top),
        specs={t: s for t in common_tasks if (s := a.specs.get(t) or b.specs.get(t)) is not None},
    )


def compare_per_task(a: Side, b: Side, *, tasks: list[str] | None = None, **kw: Any) -> list[Comparison]:
    """One comparison per task the sides share (each language its own table)."""
    pooled_tasks = [t for t in dict.fromkeys(d.task for d in a.dialogues) if tasks is None or t in tasks]
    shared = {d.task for d in b.dialogues}
    out = [compare_sides(a, b, tasks=[t], scope=t, **kw) for t in pooled_tasks if t in shared
           and {d.card_id for d in a.dialogues if d.task == t} & {d.card_id for d in b.dialogues if d.task == t}]
    if not out:
        raise UserError(f"{a.label} and {b.label} have no (task, card) in common to pair")
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _apply_holm(rows: list[DimComparison], alpha: float = 0.05) -> None:
    """The dimensions are as many tests: adjust their p-values, and say when a CI-based
    difference does not survive the adjustment."""
    tested = [r for r in rows if r.dimension != "average" and r.p_value is not None]
    for r, adj in zip(tested, holm([r.p_value for r in tested])):  # type: ignore[misc]
        r.p_holm = _r(adj) if adj >= 1e-4 else adj
        if r.verdict.endswith("higher") and adj >= alpha:
            r.verdict += f" {HOLM_FAILED}"
