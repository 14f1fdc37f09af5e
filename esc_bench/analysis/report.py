"""A report's content, read once from run folders: the board, breakdowns, records; JSON output."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esc_bench.analysis.breakdown import FACETS, BreakdownRow, all_breakdowns
from esc_bench.analysis.leaderboard import build_leaderboard, run_entries
from esc_bench.analysis.model_order import model_order
from esc_bench.analysis.runs import LoadedRun, load_runs, pooled_spec, run_specs
from esc_bench.records import ESC_EVAL_SPEC, DialogueRecord, Leaderboard, ProtocolSpec, ScoreRecord

REPORT_SCHEMA_VERSION = 1


@dataclass
class Report:
    runs: list[LoadedRun]
    board: Leaderboard
    breakdowns: dict[str, list[BreakdownRow]]
    generated: str
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # the one model order of every table, chart and list
    breakdown_spec: ProtocolSpec = ESC_EVAL_SPEC  # the metrics breakdowns pool over tasks

    @property
    def dialogues(self) -> list[DialogueRecord]:
        return [d for r in self.runs for d in r.dialogues]

    @property
    def scores(self) -> list[ScoreRecord]:
        return [s for r in self.runs for s in r.scores]


def build_report(
    run_dirs: list[Path],
    *,
    judge: str | None = None,
    seed: int = 0,
    facets: tuple[str, ...] = FACETS,
) -> Report:
    """Everything a report shows, from one or more run folders (settings may differ: noted)."""
    from esc_bench.analysis.leaderboard import mixed_settings

    runs = load_runs([Path(p) for p in run_dirs], judge=judge)
    entries = [e for run in runs for e in run_entries(run, seed=seed)]
    rid = "+".join(dict.fromkeys(r.run_id for r in runs))
    created = runs[0].created if len(runs) == 1 else _now()
    specs: dict[str, ProtocolSpec] = {}
    for run in runs:
        specs = {**run_specs(run), **specs}
    board = build_leaderboard(rid, created, entries, specs)
    dialogues = [d for r in runs for d in r.dialogues]
    scores = [s for r in runs for s in r.scores]
    order = model_order(board.entries)
    pooled = pooled_spec([specs[t] for t in dict.fromkeys(d.task for d in dialogues) if t in specs])
    breakdowns = (all_breakdowns(dialogues, scores, facets=facets, spec=pooled, seed=seed, order=order)
                  if dialogues else {})
    notes = [f"settings differ — {line}" for line in mixed_settings(entries)]
    if breakdowns:
        notes.append("breakdowns pool each model's tasks")
    return Report(runs=runs, board=board, breakdowns=breakdowns, generated=_now(), seed=seed, notes=notes,
                  models=order, breakdown_spec=pooled)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (the leaderboard in its own file format)."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated": report.generated,
        "seed": report.seed,
        "runs": [
            {"run_id": r.run_id, "path": str(r.path), "created": r.created, "judges": r.judges,
             "settings": r.meta_by_task}
            for r in report.runs
        ],
        "notes": report.notes,
        "models": report.models,
        "leaderboard": report.board.model_dump(mode="json"),
        "breakdowns": {facet: [row.to_dict() for row in rows] for facet, rows in report.breakdowns.items()},
    }
