"""`esc-bench [run]`: plan, simulate, judge, write the leaderboard, print the tables."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from esc_bench.commands._output import seed
from esc_bench.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.engine.plan import RunOptions, RunPlan
    from esc_bench.engine.runner import RunOutcome
    from esc_bench.records import Leaderboard


def configure(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


def run_parser() -> argparse.ArgumentParser:
    """A parser of `esc-bench [run]` arguments alone (e.g. to read a command line a run folder recorded)."""
    parser = argparse.ArgumentParser(prog="esc-bench")
    configure(parser)
    return parser


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        help="comma list of model config names or litellm model strings (the supporters under test)",
    )
    p.add_argument(
        "--tasks", default="all",
        help="comma list of tasks or groups; 'all' = the full ESC-Eval benchmark (default)",
    )
    p.add_argument("--simulator", help="model that plays the help-seeker (overrides the task's)")
    p.add_argument("--judge", help="model that scores dialogues (overrides the task's)")
    p.add_argument("--limit", type=int, help="first N cards per task, after the task's filters")
    p.add_argument("--output", type=Path, help="run folder (default results/<run id>); an existing one is resumed")
    p.add_argument(
        "--model-configs", type=Path, action="append", default=[], metavar="DIR",
        help="extra model config folder (repeatable; searched first)",
    )
    p.add_argument(
        "--tasks-dir", type=Path, action="append", default=[], metavar="DIR",
        help="extra task folder (repeatable; searched first)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    p.add_argument(
        "--cache-dir", type=Path,
        help="response cache folder (default $ESC_BENCH_CACHE_DIR or ~/.cache/esc-bench)",
    )
    p.add_argument(
        "--max-failures", default="0", metavar="N|FRAC",
        help="failed dialogues tolerated before the exit code is 1: a count (3), fraction (0.05) or percentage (5%%); "
        "default 0",
    )
    p.add_argument(
        "--no-preflight", action="store_true",
        help="skip the check before the first dialogue: one 1-token call to each model endpoint (server up, key "
        "accepted, model served)",
    )
    p.add_argument(
        "--skip-judge", action="store_true",
        help="simulate dialogues only; score later with `esc-bench score`",
    )
    p.add_argument(
        "--scale", choices=["4", "100"], default="4",
        help="scale of the console table: 0-4 (default) or the paper's 0-100",
    )


def options_from_args(args: argparse.Namespace) -> RunOptions:
    from esc_bench.engine.plan import RunOptions

    if not args.models:
        raise UserError("--models is required, e.g. --models gpt-4o,llama3 (see `esc-bench models`)")
    return RunOptions(
        models=_split(args.models),
        tasks=_split(args.tasks),
        simulator=args.simulator,
        judge=args.judge,
        limit=args.limit,
        output=args.output,
        model_configs=list(args.model_configs),
        tasks_dirs=list(args.tasks_dir),
        seed=args.seed,
        use_cache=not args.no_cache,
        cache_dir=args.cache_dir,
        max_failures=args.max_failures,
        skip_judge=args.skip_judge,
        preflight=not getattr(args, "no_preflight", False),
        argv=list(getattr(args, "argv", ["esc-bench"])),
    )


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from esc_bench.console import make_console
    from esc_bench.engine.plan import build_plan
    from esc_bench.engine.runner import sigterm_as_interrupt

    console = make_console(pipe_width=160)  # a pipe or file gets wide tables rather than cut ones
    opts = options_from_args(args)
    with sigterm_as_interrupt():  # SIGTERM at any moment ends the command as Ctrl-C does
        plan = build_plan(opts)  # every check happens here, before any model is called
        try:  # build_plan locked the run folder before reading it; it stays locked to the end
            for tp in plan.tasks:
                if opts.judge and not tp.protocol.spec.judged:
                    console.print(f"note: task {tp.name} scores itself (protocol {tp.protocol.name}): "
                                  f"--judge {opts.judge} is ignored for it", highlight=False)
            return execute_plan(plan, console, scale=args.scale)
        finally:
            plan.run_dir.release()


def execute_plan(plan: RunPlan, console: Console, *, scale: str = "4") -> int:
    from esc_bench.console import styled
    from esc_bench.engine.finalize import build_run_leaderboard
    from esc_bench.engine.runner import execute

    opts = plan.options
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
        def finish() -> Leaderboard:
            return build_run_leaderboard(plan.run_dir, seed=opts.seed)

        outcome = asyncio.run(execute(plan, console, finish=finish))
        return _end_of_run(plan, outcome, console, scale)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside the run loop (e.g. while printing)
        return _interrupted(plan)


def _end_of_run(plan: RunPlan, outcome: RunOutcome, console: Console, scale: str) -> int:
    from esc_bench.engine.finalize import build_run_leaderboard, print_summary

    opts = plan.options
    dialogues = list(plan.run_dir.latest_dialogues().values())
    judge_of = {tp.name: tp.judge for tp in plan.tasks}
    scores = [s for s in plan.run_dir.latest_scores().values() if judge_of.get(s.task) == s.judge]
    board = outcome.final
    if board is None:  # interrupted before the end: the tables of what is finished
        board = build_run_leaderboard(plan.run_dir, seed=opts.seed)
    print_summary(console, board, dialogues, scores, scale=scale)
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
    if outcome.interrupted:
        return _interrupted(plan)
    planned = {(tp.name, m, c.id) for tp in plan.tasks for m in plan.supporters for c in tp.cards}
    return exit_code(planned, dialogues, scores, opts.max_failures)


def _interrupted(plan: RunPlan) -> int:
    cmd = f"esc-bench resume {shlex.quote(str(plan.run_dir.path))}"
    print(f"esc-bench: interrupted; finished work is saved. Resume with: {cmd}", file=sys.stderr)
    return 130


def exit_code(planned: set, dialogues: list, scores: list, max_failures: str) -> int:
    """1 when more dialogues than allowed are incomplete: failed, or not fully scored (a judge
    call that failed, or a judge reply with no score in it: a missing score)."""
    from esc_bench.engine.plan import parse_max_failures

    failed = {d.key for d in dialogues if d.status != "ok" and d.key in planned}
    errored = {(s.task, s.model, s.card_id) for s in scores if s.error is not None} & planned
    missing = {(s.task, s.model, s.card_id) for s in scores if s.error is None and s.score is None} & planned
    bad = len(failed | errored | missing)
    kind, limit = parse_max_failures(max_failures)
    allowed = limit if kind == "count" else limit * max(1, len(planned))
    if bad <= allowed:
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
