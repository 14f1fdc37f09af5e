"""Leaderboard entries from dialogue and score records: means, bootstrap CIs, counts.

What an entry carries is the task's protocol spec (esc_bench.records.ProtocolSpec, kept in the
run's manifest): one score per metric (the mean over dialogues with a score; missing scores are
left out and counted), `average` when the spec has one (per dialogue, the mean of its scored
metrics, then the mean over dialogues), the count of each outcome the spec names (dialogues
whose `end` is that outcome) and, for a spec with a trajectory, the mean per seeker turn of that
state value. Failed dialogues count in n_failed and have no scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esc_bench.analysis.runs import LoadedRun, dialogue_average, load_runs, run_specs, scores_by_dialogue
from esc_bench.analysis.stats import bootstrap_mean_ci, mean_trajectory
from esc_bench.errors import UserError
from esc_bench.records import (
    ESC_EVAL_SPEC,
    DialogueRecord,
    DimensionScore,
    Leaderboard,
    LeaderboardEntry,
    MetricSpec,
    ProtocolSpec,
    ScoreRecord,
)

MIXED = "mixed"
_DIGITS = 6
NO_SCORE = DimensionScore(mean=None, score_100=None, ci95=None, n=0)


@dataclass
class Aggregate:
    n_dialogues: int
    n_failed: int
    scores: dict[str, DimensionScore]
    average: DimensionScore
    outcomes: dict[str, int] = field(default_factory=dict)
    trajectory: list[float] = field(default_factory=list)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), _DIGITS)


def dimension_score(
    values: list[float],
    n_missing: int,
    *,
    metric: MetricSpec = ESC_EVAL_SPEC.metrics[0],
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> DimensionScore:
    """Mean (on the metric's scale), its 0-100 view (when the metric has one), a bootstrap CI, n, n_missing."""
    if not values:
        return DimensionScore(mean=None, score_100=None, ci95=None, n=0, n_missing=n_missing)
    mean = sum(values) / len(values)
    ci = bootstrap_mean_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return DimensionScore(
        mean=_r(mean),
        score_100=None if metric.to_100 is None else _r(mean * metric.to_100),
        ci95=None if ci is None else (round(float(ci[0]), _DIGITS), round(float(ci[1]), _DIGITS)),
        n=len(values),
        n_missing=n_missing,
    )


def state_trajectory(dialogue: DialogueRecord, key: str) -> list[float]:
    """A dialogue's value of state `key` at each seeker turn that recorded it."""
    return [float(t.state[key]) for t in dialogue.transcript
            if t.speaker == "seeker" and t.state and t.state.get(key) is not None]


def aggregate(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    spec: ProtocolSpec = ESC_EVAL_SPEC,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> Aggregate:
    """Counts and per-metric statistics of a group of dialogues (scores of one judge), as `spec` says.

    An ok dialogue without a score for a metric (a missing score, or none recorded yet)
    counts in that metric's n_missing.
    """
    by_key = {d.key: d for d in dialogues}
    names = set(spec.metric_names)
    lookup = {k: {m: v for m, v in dims.items() if m in names} for k, dims in scores_by_dialogue(scores).items()}
    ok = [d for d in by_key.values() if d.status == "ok"]
    kw: dict[str, Any] = {"seed": seed, "confidence": confidence, "n_resamples": n_resamples}
    dims: dict[str, DimensionScore] = {}
    for metric in spec.metrics:
        vals = [v for d in ok if (v := lookup.get(d.key, {}).get(metric.name)) is not None]
        dims[metric.name] = dimension_score([float(v) for v in vals], len(ok) - len(vals), metric=metric, **kw)
    average = NO_SCORE
    if spec.average:
        avgs = [a for d in ok if (a := dialogue_average(lookup.get(d.key, {}))) is not None]
        average = dimension_score(avgs, len(ok) - len(avgs), metric=spec.metrics[0], **kw)
    trajectory: list[float] = []
    if spec.trajectory is not None:
        key = spec.trajectory.key
        trajectory = list(mean_trajectory([state_trajectory(d, key) for d in ok])[0])
    return Aggregate(
        n_dialogues=len(by_key),
        n_failed=len(by_key) - len(ok),
        scores=dims,
        average=average,
        outcomes={o: sum(1 for d in ok if d.end == o) for o in spec.outcomes},
        trajectory=trajectory,
    )


def build_entries(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    judge: str | None,
    meta_by_task: dict[str, dict[str, Any]],
    specs: dict[str, ProtocolSpec] | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> list[LeaderboardEntry]:
    """One entry per (task, model) among `dialogues`, scored by `judge`'s records.

    judge=None: the one judge found in `scores` (an error when there are several).
    meta_by_task[task] gives protocol / simulator / judge for the entry; specs[task] its metrics
    (ESC-Eval's seven dimensions when absent).
    """
    if judge is None:
        found = sorted({s.judge for s in scores})
        if len(found) > 1:
            raise UserError(f"scores by several judges ({', '.join(found)}); name one")
        judge = found[0] if found else None
    mine = [s for s in scores if s.judge == judge]
    groups: dict[tuple[str, str], list[DialogueRecord]] = {}
    for d in dialogues:
        groups.setdefault((d.task, d.model), []).append(d)
    score_groups: dict[tuple[str, str], list[ScoreRecord]] = {}
    for s in mine:
        score_groups.setdefault((s.task, s.model), []).append(s)
    entries = []
    for (task, model), recs in groups.items():
        agg = aggregate(recs, score_groups.get((task, model), []), spec=(specs or {}).get(task, ESC_EVAL_SPEC),
                        seed=seed, confidence=confidence, n_resamples=n_resamples)
        meta = meta_by_task.get(task, {})
        entries.append(
            LeaderboardEntry(
                model=model,
                task=task,
                protocol=meta.get("protocol"),
                simulator=meta.get("simulator"),
                judge=meta.get("judge") or judge,
                n_dialogues=agg.n_dialogues,
                n_failed=agg.n_failed,
                scores=agg.scores,
                average=agg.average,
                outcomes=agg.outcomes,
                trajectory=agg.trajectory,
            )
        )
    return sort_entries(entries)


def sort_entries(entries: list[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """By task, then headline descending (unscored last), then model name."""
    def key(e: LeaderboardEntry) -> tuple:
        avg = e.headline
        return (e.task, avg is None, -(avg or 0.0), e.model)

    return sorted(entries, key=key)


def _common(values: list[str | None]) -> str | None:
    distinct = {v for v in values if v is not None}
    if not distinct:
        return None
    return distinct.pop() if len(distinct) == 1 else MIXED


def build_leaderboard(
    run_id: str, created: str, entries: list[LeaderboardEntry], specs: dict[str, ProtocolSpec] | None = None
) -> Leaderboard:
    """The board; its protocol / simulator / judge is the entries' common value or "mixed".

    `specs` (task -> spec) travel with it, so every renderer shows each task's own metrics.
    """
    tasks = list(dict.fromkeys(e.task for e in entries))
    kept = {t: (specs or {}).get(t, ESC_EVAL_SPEC) for t in tasks}
    names = list(dict.fromkeys(m for spec in kept.values() for m in spec.metric_names))
    return Leaderboard(
        run_id=run_id,
        created=created,
        protocol=_common([e.protocol for e in entries]),
        simulator=_common([e.simulator for e in entries]),
        judge=_common([e.judge for e in entries]),
        dimensions=names or ESC_EVAL_SPEC.metric_names,
        specs=kept,
        entries=sort_entries(entries),
    )


def run_entries(run: LoadedRun, *, seed: int = 0) -> list[LeaderboardEntry]:
    """Entries of one loaded run, each task scored by its own judge.

    A run folder without dialogue records (only a leaderboard.json kept) gives that board's entries.
    """
    if not run.dialogues:
        from esc_bench.store.run_dir import RunDir

        rd = RunDir(run.path)
        return list(rd.read_leaderboard().entries) if rd.leaderboard_path.exists() else []
    entries: list[LeaderboardEntry] = []
    for task in run.tasks:
        entries += build_entries(
            [d for d in run.dialogues if d.task == task],
            [s for s in run.scores if s.task == task],
            judge=run.judges.get(task),
            meta_by_task={task: run.meta_by_task[task]},
            specs=run_specs(run),
            seed=seed,
        )
    return entries


def run_leaderboard(run: LoadedRun, *, seed: int = 0) -> Leaderboard:
    return build_leaderboard(run.run_id, run.created, run_entries(run, seed=seed), run_specs(run))


def mixed_settings(entries: list[LeaderboardEntry], labels: dict[int, str] | None = None) -> list[str]:
    """One line per setting (protocol, simulator, judge) that differs between entries."""
    out = []
    for attr in ("protocol", "simulator", "judge"):
        seen: dict[str, list[str]] = {}
        for i, e in enumerate(entries):
            v = getattr(e, attr)
            if v is None:
                continue
            where = (labels or {}).get(i, f"{e.task}/{e.model}")
            seen.setdefault(v, [])
            if where not in seen[v]:
                seen[v].append(where)
        if len(seen) > 1:
            parts = "; ".join(f"{v} ({', '.join(w[:3])}{'…' if len(w) > 3 else ''})" for v, w in seen.items())
            out.append(f"{attr}: {parts}")
    return out


def merge_runs(
    run_dirs: list[Path],
    allow_mixed: bool = False,
    *,
    judge: str | None = None,
    seed: int = 0,
    run_id: str | None = None,
) -> Leaderboard:
    """One board from several run folders, recomputed from their records.

    Refuses runs that differ in protocol, simulator or judge unless allow_mixed (then the
    board says "mixed"). A (task, model) found in several runs appears once per run, as
    MODEL@RUN_ID.
    """
    runs = load_runs([Path(p) for p in run_dirs], judge=judge)
    entries: list[LeaderboardEntry] = []
    specs: dict[str, ProtocolSpec] = {}
    labels: dict[int, str] = {}
    for run in runs:
        specs = {**run_specs(run), **specs}
        for e in run_entries(run, seed=seed):
            labels[len(entries)] = f"run {run.run_id}"
            entries.append(e)
    if not allow_mixed:
        diffs = mixed_settings(entries, labels)
        if diffs:
            raise UserError(f"runs differ in {' | '.join(diffs)}; pass --allow-mixed to merge anyway")
    rid = run_id or "+".join(dict.fromkeys(r.run_id for r in runs))
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return build_leaderboard(rid, created, entries, specs)
