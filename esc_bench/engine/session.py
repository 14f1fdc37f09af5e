"""A whole run or re-scoring, from checked options to an exit code: plan (locking the run folder),
say what will happen, run, write the leaderboard, print the tables, judge the failures.

Commands parse their arguments into `RunOptions` and hand them here; this module prints the run's
own progress and summary on the console it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from esc_bench.console import styled
from esc_bench.engine import finalize  # by module: tests replace its functions
from esc_bench.engine.plan import FailureBudget, RunOptions, RunPlan, build_plan
from esc_bench.engine.progress import totals_line
from esc_bench.engine.runner import RunOutcome, execute, sigterm_as_interrupt
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.run_dir import RunDir

if TYPE_CHECKING:
    from rich.console import Console

DialogueKey = tuple[str, str, str]


@contextlib.contextmanager
def planned(opts: RunOptions) -> Iterator[RunPlan]:
    """The checked plan (build_plan locks the run folder before reading it), released at the end;
    SIGTERM at any moment ends the session as Ctrl-C does."""
    with sigterm_as_interrupt():
        plan = build_plan(opts)  # every check happens here, before any model is called
        try:
            yield plan
        finally:
            plan.run_dir.release()


@contextlib.contextmanager
def holding(run_dir: RunDir) -> Iterator[None]:
    """The run folder locked, SIGTERM as Ctrl-C: for a command that reads the folder before it plans."""
    with sigterm_as_interrupt(), run_dir.lock():
        yield


def run_session(opts: RunOptions, console: Console, *, scale: str = "4") -> int:
    """`esc-bench [run]` and `resume`: simulate and judge what is left, then the tables."""
    with planned(opts) as plan:
        for tp in plan.tasks:
            if opts.judge and not tp.protocol.spec.judged:
                console.print(f"note: task {tp.name} scores itself (protocol {tp.protocol.name}): "
                              f"--judge {opts.judge} is ignored for it", highlight=False)
        return execute_plan(plan, console, scale=scale)


def execute_plan(plan: RunPlan, console: Console, *, scale: str = "4") -> int:
    opts = plan.options
    started = time.monotonic()
    verb = "resuming" if plan.resuming else "run"
    console.print(
        styled("esc-bench", "bold", f" {verb} {plan.run_id}: {len(plan.tasks)} task(s) × "
               f"{len(plan.supporters)} model(s) = {plan.n_dialogues()} dialogues → {plan.run_dir.path}"),
        highlight=False,
    )
    budgets = [(len(tp.cards) * len(plan.supporters), tp.protocol.call_budget(tp.rounds)) for tp in plan.tasks]
    seeker = sum(n * b.seeker for n, b in budgets)
    supporter = sum(n * b.supporter for n, b in budgets)
    judged = 0 if opts.skip_judge else sum(n * b.judge for n, b in budgets)
    console.print(
        f"at most {seeker} seeker + {supporter} supporter + {judged} judge calls, before retries"
        + (" (finished work in the folder is skipped)" if plan.resuming else ""),
        highlight=False,
    )
    try:
        # The leaderboard is written inside the run, before the manifest says `completed`.
        def finish() -> finalize.RunEnd:
            return finalize.end_of_run(plan.run_dir, seed=opts.seed)

        outcome = asyncio.run(execute(plan, console, finish=finish))
        return _end_of_run(plan, outcome, console, scale, started)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside the run loop (e.g. while printing)
        return _interrupted(plan)


def _end_of_run(plan: RunPlan, outcome: RunOutcome, console: Console, scale: str, started: float) -> int:
    opts = plan.options
    end = outcome.final
    if end is None and not _has_dialogues(plan.run_dir):  # interrupted with nothing to show
        console.print(totals_line(time.monotonic() - started, outcome.roles, outcome.stats), highlight=False)
        return _interrupted(plan)
    if end is None:  # interrupted before the end: the tables of what is finished
        end = finalize.end_of_run(plan.run_dir, seed=opts.seed)
    dialogues, scores = end.dialogues, end.scores  # each without its text: one streaming pass
    finalize.print_summary(console, end.board, dialogues, scores, scale=scale)
    console.print(f"results: {plan.run_dir.path}/leaderboard.json", highlight=False)
    calls = sum(int(s.get("calls", 0)) for s in outcome.stats.values())
    hits = sum(int(s.get("cache_hits", 0)) for s in outcome.stats.values())
    if hits:
        # A cached reply is last time's reply: say so, since a provider may have changed the model.
        console.print(
            f"note: {hits} of {calls} calls were answered from the response cache; "
            "use --no-cache to ask the models afresh",
            highlight=False,
        )
    console.print(totals_line(time.monotonic() - started, outcome.roles, outcome.stats), highlight=False)
    if outcome.interrupted:
        return _interrupted(plan)
    planned_keys = {(tp.name, m, c.id) for tp in plan.tasks for m in plan.supporters for c in tp.cards}
    return exit_code(planned_keys, dialogues, scores, plan.failure_budget, opts.max_failures)


def _has_dialogues(run_dir: RunDir) -> bool:
    try:
        return run_dir.dialogues_path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _interrupted(plan: RunPlan) -> int:
    cmd = f"esc-bench resume {shlex.quote(str(plan.run_dir.path))}"
    print(f"esc-bench: interrupted; finished work is saved. Resume with: {cmd}", file=sys.stderr)
    return 130


def score_session(opts: RunOptions, console: Console, *, judge: str, own_judges: set[str], scale: str = "4") -> int:
    """`esc-bench score`: judge a run's saved dialogues with `judge`; its board beside the run's own
    (`own_judges`: the judges the run itself used, whose board is the run's leaderboard.json)."""
    from esc_bench.analysis.tables import render_leaderboard

    with planned(opts) as plan:
        run_dir = plan.run_dir
        console.print(styled("esc-bench", "bold", f" scoring {run_dir.path} with judge {judge}"), highlight=False)
        board_judge = None if judge in own_judges else judge

        def finish() -> finalize.RunEnd:
            return finalize.end_of_run(run_dir, seed=opts.seed, judge=board_judge)

        outcome = asyncio.run(execute(plan, console, finish=finish))  # the board, then `completed`
        end = outcome.final if outcome.final is not None else finish()
        render_leaderboard(end.board, console, scale=scale)
        scores = [s for s in end.scores if s.judge == judge]
        for line in finalize.judge_error_summary(scores):
            console.print(styled("failed", "red", f" {line}"), highlight=False, soft_wrap=True)
        if outcome.interrupted:
            return 130
        dialogues = [d for d in end.dialogues if d.status == "ok"]
        return exit_code({d.key for d in dialogues}, [], scores, plan.failure_budget, opts.max_failures)


def exit_code(
    planned: set[DialogueKey],
    dialogues: list[DialogueRecord],
    scores: list[ScoreRecord],
    budget: FailureBudget,
    max_failures: str,
) -> int:
    """1 when more dialogues than `budget` allows are incomplete: failed, or not fully scored (a judge
    call that failed, or a judge reply with no score in it: a missing score). `max_failures`: the
    budget as the user wrote it, for the message."""
    failed = {d.key for d in dialogues if d.status != "ok" and d.key in planned}
    errored = {(s.task, s.model, s.card_id) for s in scores if s.error is not None} & planned
    missing = {(s.task, s.model, s.card_id) for s in scores if s.error is None and s.score is None} & planned
    bad = len(failed | errored | missing)
    if bad <= budget.allowed(len(planned)):
        return 0
    parts = [f"{len(failed)} failed"]
    if errored - failed:
        parts.append(f"{len(errored - failed)} with a failed judge call")
    if missing - failed - errored:
        parts.append(f"{len(missing - failed - errored)} with a score the judge did not give")
    hint = "rerun the same command to retry failed dialogues and judge calls"
    if missing:
        hint += "; a reply with no score stays missing: try another judge (esc-bench score DIR --judge NAME)"
    print(
        f"esc-bench: {bad} of {len(planned)} dialogues are incomplete ({', '.join(parts)}; "
        f"allowed: {max_failures}); {hint}",
        file=sys.stderr,
    )
    return 1
