"""`esc-bench resume DIR`: run a folder's recorded command again, continuing where it stopped."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the run folder to continue")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")


def run(args: argparse.Namespace) -> int:
    from esc_bench.cli import _top_parser
    from esc_bench.commands import run as run_cmd
    from esc_bench.store.run_dir import RunDir

    run_dir = args.run_dir.resolve()
    manifest = RunDir(run_dir).read_manifest()
    if manifest.cwd and Path(manifest.cwd).is_dir():
        os.chdir(manifest.cwd)  # the recorded command's relative paths are relative to it
    argv = list(manifest.command[1:])
    if argv and argv[0] == "run":
        argv = argv[1:]
    try:
        parsed = _top_parser().parse_args(argv)
    except SystemExit:
        raise UserError(f"{args.run_dir}: the recorded command cannot be parsed: {' '.join(manifest.command)}") from None
    parsed.output = run_dir
    parsed.no_cache = parsed.no_cache or args.no_cache
    parsed.argv = list(args.argv)
    return run_cmd.run(parsed)
