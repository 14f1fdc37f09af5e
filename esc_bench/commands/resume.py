"""`esc-bench resume DIR`: run a folder's last command again, continuing where it stopped."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the run folder to continue")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument(
        "--no-preflight", action="store_true",
        help="skip the 1-token call to each model endpoint before resuming",
    )


def recorded_run_args(run_dir: Path) -> argparse.Namespace:
    """The last `run` command recorded in a run folder, parsed, from its own working folder.

    Later invocations may have added models or cards: the last one is what was interrupted.
    """
    from esc_bench.commands.run import run_parser
    from esc_bench.store.run_dir import RunDir

    run_dir = run_dir.resolve()
    manifest = RunDir(run_dir).read_manifest()
    runs = [i.argv for i in manifest.invocations if i.argv[1:2] not in (["resume"], ["score"])]
    argv = list((runs[-1] if runs else manifest.command)[1:])
    if argv[:1] == ["run"]:
        argv = argv[1:]
    if manifest.cwd and Path(manifest.cwd).is_dir():
        os.chdir(manifest.cwd)  # the recorded command's relative paths are relative to it
    try:
        parsed = run_parser().parse_args(argv)
    except SystemExit:
        raise UserError(f"{run_dir}: the recorded command cannot be parsed: esc-bench {' '.join(argv)}") from None
    parsed.output = run_dir
    return parsed


def run(args: argparse.Namespace) -> int:
    from esc_bench.commands import run as run_cmd
    from esc_bench.store.run_dir import RunDir

    rd = RunDir(args.run_dir.resolve())
    if not rd.exists():
        rd.read_manifest()  # the one-line "not a run folder" error, creating nothing
    with rd.lock():  # before the manifest is read
        parsed = recorded_run_args(args.run_dir)
        parsed.no_cache = parsed.no_cache or args.no_cache
        parsed.no_preflight = args.no_preflight
        parsed.argv = list(args.argv)
        return run_cmd.run(parsed)
