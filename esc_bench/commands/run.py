"""`esc-bench [run]`: its arguments, read into `RunOptions` for the engine's run session."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from esc_bench.commands._output import seed
from esc_bench.errors import UserError

if TYPE_CHECKING:
    from esc_bench.records import RunOptions


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
    from esc_bench.records import RunOptions

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
        scale=getattr(args, "scale", "4"),
        argv=list(getattr(args, "argv", ["esc-bench"])),
    )


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from esc_bench.console import make_console
    from esc_bench.engine.session import run_session

    console = make_console(pipe_width=160)  # a pipe or file gets wide tables rather than cut ones
    opts = options_from_args(args)
    return run_session(opts, console, scale=opts.scale)
