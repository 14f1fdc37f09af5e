"""Leaderboard entries from dialogue and score records: means, bootstrap CIs, counts.

Per dimension the mean is over dialogues with a score (missing scores are left out and
counted); `average` is, per dialogue, the mean of its scored dimensions, then the mean over
dialogues. Failed dialogues count in n_failed and have no scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esc_bench.analysis.runs import LoadedRun, dialogue_average, load_runs, scores_by_dialogue
from esc_bench.analysis.stats import bootstrap_mean_ci
from esc_bench.dimensions import DIMENSION_NAMES, SCALE_100
from esc_bench.errors import UserError
from esc_bench.records import DialogueRecord, DimensionScore, Leaderboard, LeaderboardEntry, ScoreRecord

MIXED = "mixed"
_DIGITS = 6


@dataclass
class Aggregate:
    n_dialogues: int
    n_failed: int
    scores: dict[str, DimensionScore]
    average: DimensionScore


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), _DIGITS)


def dimension_score(
    values: list[float], n_missing: int, *, seed: int = 0, confidence: float = 0.95, n_resamples: int = 2000
) -> DimensionScore:
    """Mean (0-4), the paper's 0-100 value, a bootstrap CI, n and n_missing."""
    if not values:
        return DimensionScore(mean=None, score_100=None, ci95=None, n=0, n_missing=n_missing)
    mean = sum(values) / len(values)
    ci = bootstrap_mean_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return DimensionScore(
        mean=_r(mean),
        score_100=_r(mean * SCALE_100),
        ci95=None if ci is None else (round(float(ci[0]), _DIGITS), round(float(ci[1]), _DIGITS)),
        n=len(values),
        n_missing=n_missing,
    )


def aggregate(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> Aggregate:
    """Counts and per-dimension statistics of a group of dialogues (scores of one judge).

    An ok dialogue without a score for a dimension (a missing score, or none recorded yet)
    counts in that dimension's n_missing.
    """
    by_key = {d.key: d for d in dialogues}
    lookup = scores_by_dialogue(scores)
    ok = [d for d in by_key.values() if d.status == "ok"]
    kw: dict[str, Any] = {"seed": seed, "confidence": confidence, "n_resamples": n_resamples}
    dims: dict[str, DimensionScore] = {}
    for dim in DIMENSION_NAMES:
        vals = [v for d in ok if (v := lookup.get(d.key, {}).get(dim)) is not None]
        dims[dim] = dimension_score([float(v) for v in vals], len(ok) - len(vals), **kw)
    avgs = [a for d in ok if (a := dialogue_average(lookup.get(d.key, {}))) is not None]
    return Aggregate(
        n_dialogues=len(by_key),
        n_failed=len(by_key) - len(ok),
        scores=dims,
        average=dimension_score(avgs, len(ok) - len(avgs), **kw),
    )


def build_entries(
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    judge: str | None,
    meta_by_task: dict[str, dict[str, Any]],
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> list[LeaderboardEntry]:
    """One entry per (task, model) among `dialogues`, scored by `judge`'s records.

    judge=None: the one judge found in `scores` (an error when there are several).
    meta_by_task[task] gives protocol / simulator / judge for the entry.
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
        agg = aggregate(recs, score_groups.get((task, model), []), seed=seed, confidence=confidence,
                        n_resamples=n_resamples)
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
            )
        )
    return sort_entries(entries)


def sort_entries(entries: list[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """By task, then average descending (unscored last), then model name."""
    def key(e: LeaderboardEntry) -> tuple:
        avg = e.average.mean
        return (e.task, avg is None, -(avg or 0.0), e.model)

    return sorted(entries, key=key)


def _common(values: list[str | None]) -> str | None:
    distinct = {v for v in values if v is not None}
    if not distinct:
        return None
    return distinct.pop() if len(distinct) == 1 else MIXED


def build_leaderboard(run_id: str, created: str, entries: list[LeaderboardEntry]) -> Leaderboard:
    """The board; its protocol / simulator / judge is the entries' common value or "mixed"."""
    return Leaderboard(
        run_id=run_id,
        created=created,
        protocol=_common([e.protocol for e in entries]),
        simulator=_common([e.simulator for e in entries]),
        judge=_common([e.judge for e in entries]),
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
            seed=seed,
        )
    return entries


def run_leaderboard(run: LoadedRun, *, seed: int = 0) -> Leaderboard:
    return build_leaderboard(run.run_id, run.created, run_entries(run, seed=seed))


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
    labels: dict[int, str] = {}
    for run in runs:
        for e in run_entries(run, seed=seed):
            labels[len(entries)] = f"run {run.run_id}"
            entries.append(e)
    if not allow_mixed:
        diffs = mixed_settings(entries, labels)
        if diffs:
            raise UserError(f"runs differ in {' | '.join(diffs)}; pass --allow-mixed to merge anyway")
    rid = run_id or "+".join(dict.fromkeys(r.run_id for r in runs))
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return build_leaderboard(rid, created, entries)
