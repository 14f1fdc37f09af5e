"""After a run: the leaderboard from everything the run folder holds, and the console summary."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from rich.console import Console

from esc_bench.console import styled
from esc_bench.records import DialogueRecord, Leaderboard, ScoreRecord
from esc_bench.store.run_dir import RunDir


@dataclass
class RunEnd:
    """What the end of a run reports, read in one streaming pass over the folder: the board, and
    each dialogue and score without its text (memory flat in their length, small per record)."""

    board: Leaderboard
    dialogues: list[DialogueRecord]
    scores: list[ScoreRecord]  # the board's judge's


def end_of_run(run_dir: RunDir, *, seed: int = 0, judge: str | None = None) -> RunEnd:
    """One entry per (task, supporter), scored by each task's judge (from the manifest), written
    to leaderboard.json.

    With `judge`, the board of a judge added later by `esc-bench score`, written beside the
    run's own as leaderboard.<judge>.json.
    """
    from esc_bench.analysis.leaderboard import run_leaderboard
    from esc_bench.analysis.runs import load_run

    run = load_run(run_dir.path, judge=judge, slim=True)
    board = run_leaderboard(run, seed=seed)
    if judge is None:
        run_dir.write_leaderboard(board)
    else:
        from esc_bench.store.jsonl import write_json_atomic

        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", judge).strip(".") or "judge"
        write_json_atomic(run_dir.path / f"leaderboard.{safe}.json", board.model_dump(mode="json"))
    return RunEnd(board, run.dialogues, run.scores)


def build_run_leaderboard(run_dir: RunDir, *, seed: int = 0, judge: str | None = None) -> Leaderboard:
    """`end_of_run`'s board."""
    return end_of_run(run_dir, seed=seed, judge=judge).board


def failure_summary(dialogues: list[DialogueRecord]) -> list[str]:
    """Lines naming what failed: per model, the error kinds and one example."""
    failed = [d for d in dialogues if d.status != "ok"]
    by_model: dict[str, list[DialogueRecord]] = {}
    for d in failed:
        by_model.setdefault(d.model, []).append(d)
    lines = []
    for model, recs in sorted(by_model.items()):
        kinds = Counter(r.error.type if r.error else "unknown" for r in recs)
        ex = next((r for r in recs if r.error), None)
        example = ""
        if ex is not None and ex.error is not None:
            example = f" — e.g. {ex.task}/card {ex.card_id}, {ex.error.role} round {ex.error.round}: {ex.error.message}"
        kinds_s = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common())
        lines.append(f"{model}: {len(recs)} failed dialogue(s) ({kinds_s}){example}")
    return lines


def judge_error_summary(scores: list[ScoreRecord]) -> list[str]:
    """Per judge: the judge calls that failed, and the replies with no score in them (missing)."""
    by_judge: dict[str, list[ScoreRecord]] = {}
    for s in scores:
        by_judge.setdefault(s.judge, []).append(s)
    lines = []
    for judge, recs in sorted(by_judge.items()):
        errors = [r for r in recs if r.error is not None]
        if errors:
            kinds = Counter(r.error.type for r in errors if r.error)
            ex = errors[0]
            kinds_s = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common())
            msg = ex.error.message if ex.error else ""
            lines.append(
                f"judge {judge}: {len(errors)} score(s) not obtained ({kinds_s}) — e.g. {ex.task}/card {ex.card_id}, "
                f"{ex.dimension}: {msg}; rerun the command to retry them"
            )
        missing = [r for r in recs if r.error is None and r.score is None]
        if missing:
            ex = missing[0]
            n_dialogues = len({(r.task, r.model, r.card_id) for r in missing})
            reply = " ".join((ex.raw or "").split())
            reply = reply[:80] + "…" if len(reply) > 80 else reply
            lines.append(
                f"judge {judge}: gave no score in {len(missing)} of {len(recs)} replies "
                f"({n_dialogues} dialogue(s) not fully scored) — e.g. {ex.task}/card {ex.card_id}, "
                f"{ex.dimension}: {reply!r}"
            )
    return lines


def print_summary(
    console: Console,
    board: Leaderboard,
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    *,
    scale: str = "4",
) -> None:
    from esc_bench.analysis.tables import render_leaderboard

    render_leaderboard(board, console, scale=scale)
    for line in failure_summary(dialogues) + judge_error_summary(scores):
        console.print(styled("failed", "red", f" {line}"), highlight=False, soft_wrap=True)
