"""`esc-bench score RUN_DIR --judge NAME`: judge a run's saved dialogues again, with another judge.

Nothing is simulated. Scores are appended to scores.jsonl under the new judge's name, beside the
run's own; the new judge's board is written as leaderboard.<judge>.json. Rerunning continues.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder")
    parser.add_argument("--judge", required=True, help="model config name (or litellm string) of the judge")
    parser.add_argument("--model-configs", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--scale", choices=["4", "100"], default="4")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from esc_bench.cli import _top_parser
    from esc_bench.engine.finalize import build_run_leaderboard
    from esc_bench.engine.plan import build_plan
    from esc_bench.engine.runner import execute
    from esc_bench.analysis.tables import render_leaderboard
    from esc_bench.store.run_dir import RunDir

    run_dir = RunDir(args.run_dir)
    manifest = run_dir.read_manifest()
    if not run_dir.dialogues_path.exists():
        raise UserError(f"{run_dir.path} has no dialogues to score")
    try:
        parsed = _top_parser().parse_args([a for a in manifest.command[1:] if a != "run"])
    except SystemExit:
        raise UserError(f"{run_dir.path}: the recorded command cannot be parsed") from None
    from esc_bench.commands.run import options_from_args

    parsed.model_configs = [*args.model_configs, *parsed.model_configs]
    parsed.tasks_dir = [*args.tasks_dir, *parsed.tasks_dir]
    parsed.output = run_dir.path
    parsed.judge = args.judge
    parsed.no_cache = args.no_cache
    parsed.cache_dir = args.cache_dir
    parsed.skip_judge = False
    parsed.argv = list(args.argv)
    opts = options_from_args(parsed)
    opts.score_only = True
    plan = build_plan(opts)
    console = Console()
    console.print(f"[bold]esc-bench[/bold] scoring {run_dir.path} with judge {args.judge}", highlight=False)
    outcome = asyncio.run(execute(plan, console))
    own = {t.get("judge") for t in run_dir.read_manifest().tasks.values()}
    board = build_run_leaderboard(run_dir, seed=opts.seed, judge=None if args.judge in own else args.judge)
    render_leaderboard(board, console, scale=args.scale)
    if outcome.interrupted:
        return 130
    return 0
