"""`esc-bench resume DIR`: continue a folder's last run where it stopped, from its recorded options."""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.errors import UserError
from esc_bench.records import RunOptions


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="the run folder to continue")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument(
        "--no-preflight", action="store_true",
        help="skip the 1-token call to each model endpoint before resuming",
    )


def recorded_options(run_dir: Path) -> RunOptions:
    """The options of the last run in a run folder, its paths absolute, its output the folder.

    Later invocations may have added models or cards: the last one is what was interrupted. A folder
    written before options were stored has its command line instead: it is read here, its relative
    paths taken from the folder the command ran in.
    """
    from esc_bench.commands.run import options_from_args
    from esc_bench.store.run_dir import RunDir

    run_dir = run_dir.resolve()
    manifest = RunDir(run_dir).read_manifest()
    if manifest.options is not None:
        opts = manifest.options
    else:
        ran_in = Path(manifest.cwd) if manifest.cwd and Path(manifest.cwd).is_dir() else Path.cwd()
        opts = options_from_args(recorded_run_args(run_dir)).resolved(ran_in)
    return opts.model_copy(update={"output": run_dir, "mode": "run"})


def recorded_run_args(run_dir: Path) -> argparse.Namespace:
    """The last `run` command line recorded in a run folder, parsed (paths as typed, relative to the
    folder the command ran in): how a folder written before options were stored says what it ran."""
    from esc_bench.commands.run import run_parser
    from esc_bench.store.run_dir import RunDir

    run_dir = run_dir.resolve()
    manifest = RunDir(run_dir).read_manifest()
    runs = [i.argv for i in manifest.invocations if i.argv[1:2] not in (["resume"], ["score"])]
    argv = list((runs[-1] if runs else manifest.command)[1:])
    if argv[:1] == ["run"]:
        argv = argv[1:]
    try:
        parsed = run_parser().parse_args(argv)
    except SystemExit:
        raise UserError(f"{run_dir}: the recorded command cannot be parsed: esc-bench {' '.join(argv)}") from None
    parsed.output = run_dir
    return parsed


def run(args: argparse.Namespace) -> int:
    from esc_bench.console import make_console
    from esc_bench.engine.session import holding, run_session
    from esc_bench.store.run_dir import RunDir

    rd = RunDir(args.run_dir.resolve())
    if not rd.exists():
        rd.read_manifest()  # the one-line "not a run folder" error, creating nothing
    with holding(rd):  # before the manifest is read
        opts = recorded_options(rd.path)
        opts = opts.model_copy(update={
            "use_cache": opts.use_cache and not args.no_cache,
            "preflight": not args.no_preflight,
            "argv": list(args.argv),
        })
        return run_session(opts, make_console(pipe_width=160), scale=opts.scale)
