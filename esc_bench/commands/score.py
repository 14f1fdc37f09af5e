"""`esc-bench score RUN_DIR --judge NAME`: judge a run's saved dialogues again, with another judge.

Nothing is simulated. Scores are appended to scores.jsonl under the new judge's name, beside the
run's own; the new judge's board is written as leaderboard.<judge>.json. Rerunning continues.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from esc_bench.errors import UserError

if TYPE_CHECKING:
    from esc_bench.store.run_dir import RunDir


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="a run folder")
    parser.add_argument("--judge", required=True, help="model config name (or litellm string) of the judge")
    parser.add_argument("--model-configs", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument(
        "--no-preflight", action="store_true",
        help="skip the 1-token call to the judge's endpoint before scoring",
    )
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--scale", choices=["4", "100"], default="4")


def run(args: argparse.Namespace) -> int:
    from esc_bench.engine.session import holding
    from esc_bench.store.run_dir import RunDir

    run_dir = RunDir(args.run_dir.resolve())
    if not run_dir.exists():
        run_dir.read_manifest()  # the one-line "not a run folder" error, creating nothing
    with holding(run_dir):  # locked before anything in the folder is read
        return _score(args, run_dir)


def _score(args: argparse.Namespace, run_dir: RunDir) -> int:
    from esc_bench.commands.resume import recorded_options
    from esc_bench.console import make_console
    from esc_bench.engine.session import score_session

    if not run_dir.dialogues_path.exists():
        raise UserError(f"{run_dir.path} has no dialogues to score")
    recorded = recorded_options(run_dir.path)
    opts = recorded.model_copy(update={
        "model_configs": [*(p.resolve() for p in args.model_configs), *recorded.model_configs],
        "tasks_dirs": [*(p.resolve() for p in args.tasks_dir), *recorded.tasks_dirs],
        "judge": args.judge,
        "use_cache": not args.no_cache,
        "cache_dir": args.cache_dir.resolve() if args.cache_dir else None,
        "skip_judge": False,
        "preflight": not args.no_preflight,
        "argv": list(args.argv),
        "mode": "score",
    })
    own = {str(t.get("judge")) for t in run_dir.read_manifest().tasks.values()}
    return score_session(opts, make_console(), judge=args.judge, own_judges=own, scale=args.scale)
