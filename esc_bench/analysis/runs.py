"""Reading run folders for analysis: the latest records, each task's judge and settings.

A run may hold scores by several judges (`esc-bench score` adds one). Analyses use one judge
per task: the task's own (manifest `tasks[name].judge`) unless a judge is named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from esc_bench.records import ESC_EVAL_SPEC, DialogueRecord, Manifest, ProtocolSpec, ScoreRecord
from esc_bench.store.run_dir import RunDir

DialogueKey = tuple[str, str, str]  # task, model, card_id


@dataclass
class LoadedRun:
    path: Path
    run_id: str
    created: str
    manifest: Manifest
    dialogues: list[DialogueRecord]  # the latest record per (task, model, card)
    scores: list[ScoreRecord]  # the latest per key, only the chosen judge's
    judges: dict[str, str | None] = field(default_factory=dict)  # task -> judge used
    meta_by_task: dict[str, dict[str, Any]] = field(default_factory=dict)  # protocol/simulator/judge

    @property
    def tasks(self) -> list[str]:
        return list(self.meta_by_task)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(d.model for d in self.dialogues))


def task_settings(manifest: Manifest, task: str) -> dict[str, Any]:
    """protocol, simulator and judge of a task, from the manifest."""
    meta = manifest.tasks.get(task, {})
    return {
        "protocol": manifest.protocols.get(task, meta.get("protocol")),
        "simulator": meta.get("simulator"),
        "judge": meta.get("judge"),
    }


def load_run(path: Path, *, judge: str | None = None, slim: bool = False) -> LoadedRun:
    """One run folder's latest dialogues and the scores of each task's judge (or `judge`).

    slim: records without their text (RunDir.latest_dialogues), for tallies over a large run.
    """
    rd = RunDir(Path(path))
    if not rd.path.is_dir():
        raise UserError(f"{rd.path} is not a folder")
    manifest = rd.read_manifest()
    dialogues = list(rd.latest_dialogues(slim=slim).values())
    all_scores = list(rd.latest_scores(slim=slim).values())
    tasks = list(dict.fromkeys([*manifest.tasks, *(d.task for d in dialogues)]))
    judges_present = Counter(s.judge for s in all_scores)
    if judge is not None and all_scores and judge not in judges_present:
        have = ", ".join(sorted(judges_present)) or "none"
        raise UserError(f"{rd.path}: no scores by judge {judge!r} (judges in this run: {have})")
    judges: dict[str, str | None] = {}
    meta_by_task: dict[str, dict[str, Any]] = {}
    for task in tasks:
        meta = task_settings(manifest, task)
        chosen = judge or meta.get("judge")
        if chosen is None:
            in_task = sorted({s.judge for s in all_scores if s.task == task})
            if len(in_task) > 1:
                raise UserError(f"{rd.path}: task {task} has scores by {', '.join(in_task)}; name one with --judge")
            chosen = in_task[0] if in_task else None
        judges[task] = chosen
        meta_by_task[task] = {**meta, "judge": chosen}
    scores = [s for s in all_scores if s.judge == judges.get(s.task)]
    return LoadedRun(
        path=rd.path,
        run_id=manifest.run_id,
        created=manifest.created,
        manifest=manifest,
        dialogues=dialogues,
        scores=scores,
        judges=judges,
        meta_by_task=meta_by_task,
    )


def load_runs(paths: list[Path], *, judge: str | None = None) -> list[LoadedRun]:
    """Several runs; a (task, model) found in more than one is renamed MODEL@RUN_ID in each."""
    if not paths:
        raise UserError("give at least one run folder")
    runs = [load_run(p, judge=judge) for p in paths]
    seen: Counter[tuple[str, str]] = Counter()
    for run in runs:
        for pair in {(d.task, d.model) for d in run.dialogues}:
            seen[pair] += 1
    dup = {pair for pair, n in seen.items() if n > 1}
    if dup:
        labels = [r.run_id for r in runs]
        if len(set(labels)) < len(labels):
            labels = [str(r.path) for r in runs]
        for run, label in zip(runs, labels):
            run.dialogues = [
                d.model_copy(update={"model": f"{d.model}@{label}"}) if (d.task, d.model) in dup else d
                for d in run.dialogues
            ]
            run.scores = [
                s.model_copy(update={"model": f"{s.model}@{label}"}) if (s.task, s.model) in dup else s
                for s in run.scores
            ]
    return runs


def scores_by_dialogue(scores: list[ScoreRecord]) -> dict[DialogueKey, dict[str, float | None]]:
    """(task, model, card) -> dimension -> score (None = missing). Later records win."""
    out: dict[DialogueKey, dict[str, float | None]] = {}
    for s in scores:
        out.setdefault((s.task, s.model, s.card_id), {})[s.dimension] = s.score
    return out


def run_specs(run: LoadedRun) -> dict[str, ProtocolSpec]:
    """task -> the metrics, scales and outcomes its protocol declared (manifest `specs`); a task
    recorded before protocols declared theirs scores ESC-Eval's seven dimensions."""
    return {t: run.manifest.specs.get(t, ESC_EVAL_SPEC) for t in run.tasks}


def pooled_spec(specs: list[ProtocolSpec]) -> ProtocolSpec:
    """The spec of scores pooled over tasks (breakdowns): the one spec they share, else every
    metric once, with an average only when each spec has one on the same scale."""
    distinct: list[ProtocolSpec] = []
    for spec in specs:
        if spec not in distinct:
            distinct.append(spec)
    if not distinct:
        return ESC_EVAL_SPEC
    if len(distinct) == 1:
        return distinct[0]
    metrics = {m.name: m for s in distinct for m in reversed(s.metrics)}
    ordered = tuple(metrics[n] for n in dict.fromkeys(m.name for s in distinct for m in s.metrics))
    one_scale = len({(m.low, m.high, m.to_100) for m in ordered}) == 1
    return ProtocolSpec(metrics=ordered, average=one_scale and all(s.average for s in distinct), judged=True)


def metric_names(run: LoadedRun | None) -> list[str]:
    """The scores a run's reports show, in report order: the one place analyses take them from.

    Each task's protocol declares its metrics (manifest `specs`); a run recorded before that
    scores ESC-Eval's seven dimensions.
    """
    specs = run.manifest.specs.values() if run is not None else ()
    names = list(dict.fromkeys(m for spec in specs for m in spec.metric_names))
    return names or list(DIMENSION_NAMES)


def dialogue_average(dims: Mapping[str, float | None]) -> float | None:
    """The mean of a dialogue's non-missing dimension scores (None when it has none)."""
    vals = [v for v in dims.values() if v is not None]
    return sum(vals) / len(vals) if vals else None
