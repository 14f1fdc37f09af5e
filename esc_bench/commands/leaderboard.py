"""`esc-bench leaderboard RUN_DIR… -o leaderboard.json`: merge runs into one board.

Recomputed from each run's records (each task scored by its own judge, or --judge). Refuses runs
whose protocol, simulator or judge differ unless --allow-mixed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.commands._output import add_seed, write_json
from esc_bench.console import make_console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folder(s)")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write the merged leaderboard JSON here ('-' = stdout)"
    )
    parser.add_argument(
        "--allow-mixed", action="store_true", help="merge runs with different protocols, simulators or judges"
    )
    parser.add_argument("--judge", help="use this judge's scores in every run (default: each task's own)")
    parser.add_argument("--run-id", help="run_id of the merged board (default: the run ids joined by '+')")
    parser.add_argument("--scale", choices=["4", "100"], default="4")
    parser.add_argument("--quiet", action="store_true", help="no table")
    add_seed(parser)


def run(args: argparse.Namespace) -> int:
    from esc_bench.analysis.leaderboard import merge_runs
    from esc_bench.analysis.tables import render_leaderboard

    board = merge_runs(
        list(args.run_dirs),
        allow_mixed=getattr(args, "allow_mixed", False),
        judge=getattr(args, "judge", None),
        seed=getattr(args, "seed", 0),
        run_id=getattr(args, "run_id", None),
    )
    out = getattr(args, "output", None)
    to_stdout = out is not None and str(out) == "-"
    if not getattr(args, "quiet", False):
        render_leaderboard(board, make_console(stderr=to_stdout), scale=str(getattr(args, "scale", "4")))
    if out is not None:
        write_json(board.model_dump(mode="json"), out)
    return 0
