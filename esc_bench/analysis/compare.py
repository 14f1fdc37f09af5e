"""Paired comparison of two models (two runs, or two models in one run).

Dialogues are paired by (task, card). Per dimension: the mean difference A − B with a paired
bootstrap CI, a paired test (Wilcoxon signed-rank, or the exact sign test for few non-zero
differences), win/tie/loss counts and a verdict that says "no detectable difference" when
the CI spans 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from esc_bench.analysis.runs import LoadedRun, dialogue_average, scores_by_dialogue
from esc_bench.analysis.stats import paired_bootstrap_diff_ci, paired_test_result, win_tie_loss
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from esc_bench.records import DialogueRecord, ScoreRecord

NO_DIFFERENCE = "no detectable difference"
SETTINGS = ("protocol", "simulator", "judge")


@dataclass
class Side:
    """One model's dialogues and (one judge's) scores, with the settings of each task."""

    label: str
    model: str
    run_id: str
    dialogues: list[DialogueRecord]
    scores: list[ScoreRecord]
    meta_by_task: dict[str, dict[str, Any]]

    @classmethod
    def from_run(cls, run: LoadedRun, model: str, label: str | None = None) -> "Side":
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
        )


@dataclass
class DimComparison:
    dimension: str
    n: int  # pairs where both have this score
    mean_a: float | None
    mean_b: float | None
    diff: float | None  # mean of A − B over the pairs
    ci95: tuple[float, float] | None
    p_value: float | None
    test: str
    p_holm: float | None  # Holm-adjusted over the seven dimensions (None for the average)
    win: int  # A higher
    tie: int
    loss: int  # B higher
    verdict: str


@dataclass
class Comparison:
    label_a: str
    label_b: str
    tasks: list[str]
    n_pairs: int  # (task, card) where both dialogues are ok
    n_failed: int  # common (task, card) dropped because a dialogue failed
    n_only_a: int
    n_only_b: int
    settings: dict[str, dict[str, dict[str, Any]]]  # task -> "a"/"b" -> protocol/simulator/judge
    differences: list[str]
    rows: list[DimComparison] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for row in d["rows"]:
            if row["ci95"] is not None:
                row["ci95"] = list(row["ci95"])
        return d


def verdict(ci: tuple[float, float] | None, n: int, label_a: str, label_b: str) -> str:
    if n == 0:
        return "no pairs"
    if ci is None:
        return "too few pairs"
    lo, hi = ci
    if lo <= 0 <= hi:
        return NO_DIFFERENCE
    return f"{label_a} higher" if lo > 0 else f"{label_b} higher"


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


def _common_averages(ra: dict[str, int | None], rb: dict[str, int | None]) -> tuple[float | None, float | None]:
    """Each side's mean over the dimensions scored on BOTH sides (None, None when there are none),
    so a pair never sets a 6-dimension mean against a 7-dimension one."""
    common = [d for d in DIMENSION_NAMES if ra.get(d) is not None and rb.get(d) is not None]
    return dialogue_average({d: ra[d] for d in common}), dialogue_average({d: rb[d] for d in common})


def compare_sides(
    a: Side,
    b: Side,
    *,
    tasks: list[str] | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> Comparison:
    """Pair A's and B's dialogues by (task, card) and compare each dimension and the average."""
    da = {(d.task, d.card_id): d for d in a.dialogues if tasks is None or d.task in tasks}
    db = {(d.task, d.card_id): d for d in b.dialogues if tasks is None or d.task in tasks}
    common = [k for k in da if k in db]
    if not common:
        raise UserError(f"{a.label} and {b.label} have no (task, card) in common to pair")
    common_tasks = list(dict.fromkeys(t for t, _ in common))
    pairs = [k for k in common if da[k].status == "ok" and db[k].status == "ok"]
    sa, sb = scores_by_dialogue(a.scores), scores_by_dialogue(b.scores)

    def dims(side_scores: dict, dlg: DialogueRecord) -> dict[str, int | None]:
        return side_scores.get(dlg.key, {})

    rows = []
    for dim in [*DIMENSION_NAMES, "average"]:
        xs, ys = [], []
        for k in pairs:
            ra, rb = dims(sa, da[k]), dims(sb, db[k])
            if dim == "average":
                va, vb = _common_averages(ra, rb)
            else:
                va, vb = ra.get(dim), rb.get(dim)
            if va is not None and vb is not None:
                xs.append(float(va))
                ys.append(float(vb))
        n = len(xs)
        ci = paired_bootstrap_diff_ci(xs, ys, confidence=confidence, n_resamples=n_resamples, seed=seed)
        test = paired_test_result(xs, ys)
        wtl = win_tie_loss(xs, ys)
        rows.append(
            DimComparison(
                dimension=dim,
                n=n,
                mean_a=_r(sum(xs) / n) if n else None,
                mean_b=_r(sum(ys) / n) if n else None,
                diff=_r((sum(xs) - sum(ys)) / n) if n else None,
                ci95=None if ci is None else (_r(ci[0]), _r(ci[1])),
                p_value=test.p_value,
                test=test.method,
                p_holm=None,
                win=wtl.win,
                tie=wtl.tie,
                loss=wtl.loss,
                verdict=verdict(ci, n, a.label, b.label),
            )
        )
    _apply_holm(rows)
    return Comparison(
        label_a=a.label,
        label_b=b.label,
        tasks=common_tasks,
        n_pairs=len(pairs),
        n_failed=len(common) - len(pairs),
        n_only_a=len(da) - len(common),
        n_only_b=len(db) - len(common),
        settings={
            t: {"a": {k: a.meta_by_task.get(t, {}).get(k) for k in SETTINGS},
                "b": {k: b.meta_by_task.get(t, {}).get(k) for k in SETTINGS}}
            for t in common_tasks
        },
        differences=settings_differences(a, b, common_tasks),
        rows=rows,
    )


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
    """Seven dimensions are seven tests: adjust their p-values, and say when a CI-based
    difference does not survive the adjustment."""
    tested = [r for r in rows if r.dimension != "average" and r.p_value is not None]
    for r, adj in zip(tested, holm([r.p_value for r in tested])):  # type: ignore[misc]
        r.p_holm = _r(adj) if adj >= 1e-4 else adj
        if r.verdict.endswith("higher") and adj >= alpha:
            r.verdict += " (not after Holm correction)"


def render_comparison(cmp: Comparison, console, scale: str = "4") -> None:
    """A rich table: one row per dimension (and the average)."""
    from rich.table import Table
    from rich.text import Text

    f, digits = (1.0, 2) if str(scale) == "4" else (25.0, 1)

    def num(x: float | None, signed: bool = False) -> str:
        if x is None:
            return "–"
        return f"{x * f:+.{digits}f}" if signed else f"{x * f:.{digits}f}"

    table = Table(
        title=Text(f"{cmp.label_a} (A) vs {cmp.label_b} (B)", style="bold"),
        caption=Text(
            f"tasks {', '.join(cmp.tasks)}; {cmp.n_pairs} paired dialogues"
            + (f", {cmp.n_failed} dropped (failed)" if cmp.n_failed else "")
            + (f", {cmp.n_only_a} only in A" if cmp.n_only_a else "")
            + (f", {cmp.n_only_b} only in B" if cmp.n_only_b else "")
            + f"; scale 0–{'4' if f == 1.0 else '100'}; 95% paired bootstrap CI; "
            "p (Holm): adjusted over the 7 dimensions"
        ),
        title_justify="left",
        caption_justify="left",
    )
    for col, just in [("dimension", "left"), ("A", "right"), ("B", "right"), ("A − B", "right"),
                      ("95% CI", "right"), ("p", "right"), ("p (Holm)", "right"), ("win/tie/loss", "right"),
                      ("n", "right"),
                      ("verdict", "left")]:
        table.add_column(col, justify=just, no_wrap=col != "verdict")
    for r in cmp.rows:
        ci = "–" if r.ci95 is None else f"[{num(r.ci95[0], True)}, {num(r.ci95[1], True)}]"
        p = "–" if r.p_value is None else (f"{r.p_value:.3g}" if r.p_value >= 0.001 else "<0.001")
        style = "" if r.verdict == NO_DIFFERENCE else ("green" if r.verdict.endswith("higher") else "yellow")
        ph = "–" if r.p_holm is None else (f"{r.p_holm:.3g}" if r.p_holm >= 0.001 else "<0.001")
        cells = [num(r.mean_a), num(r.mean_b), num(r.diff, True), ci,
                 f"{p} ({r.test})" if r.p_value is not None else p, ph, f"{r.win}/{r.tie}/{r.loss}", str(r.n)]
        table.add_row(
            Text(r.dimension, style="bold" if r.dimension == "average" else ""),
            *(Text(c) for c in cells), Text(r.verdict, style=style),
        )
    console.print(table)
