"""The `esc-bench` command. Only the standard library is imported here: --help is instant."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

# name -> (module under esc_bench.commands, one-line help). Modules load only when used.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "simulate, score and report (the default when no subcommand is given)"),
    "resume": ("resume", "continue an interrupted run folder"),
    "tasks": ("tasks", "list or validate tasks and groups"),
    "models": ("models", "list model configs"),
    "score": ("score", "re-score a run's saved dialogues with another judge"),
    "report": ("report", "tables and breakdowns from saved results (console, md, json, html)"),
    "compare": ("compare", "paired comparison of two runs or two models"),
    "agreement": ("agreement", "a judge's agreement with reference scores"),
    "leaderboard": ("leaderboard", "merge runs into one leaderboard JSON"),
    "import-upstream": ("import_upstream", "import ESC-Eval's upstream transcript and score files"),
    "import-sage": ("import_sage", "import one of SAGE's published result files as a sage run"),
    "convert-rank": ("esc_bench.local.convert_rank", "convert ESC-RANK (InternLM2 + LoRA) to Llama + LoRA"),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<16} {help_}" for name, (_, help_) in SUBCOMMANDS.items())
    p = argparse.ArgumentParser(
        prog="esc-bench",
        description="Evaluate emotional-support conversation models with the ESC-Eval protocol.",
        epilog=f"subcommands (esc-bench SUBCOMMAND --help):\n{lines}\n\n"
        "example:\n  esc-bench --models gpt-4o,llama3 --tasks all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=_version())
    _load("run").configure(p)
    return p


def _version() -> str:
    from esc_bench import __version__

    return f"esc-bench {__version__}"


def _load(module: str) -> ModuleType:
    name = module if module.startswith("esc_bench.") else f"esc_bench.commands.{module}"
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    from esc_bench.errors import UserError

    try:
        if args_in and args_in[0] in SUBCOMMANDS:
            name = args_in[0]
            module = _load(SUBCOMMANDS[name][0])
            p = argparse.ArgumentParser(prog=f"esc-bench {name}", description=SUBCOMMANDS[name][1])
            module.configure(p)
            args = p.parse_args(args_in[1:])
            args.argv = ["esc-bench", *args_in]
            return int(module.run(args) or 0)
        args = _top_parser().parse_args(args_in)
        args.argv = ["esc-bench", *args_in]
        return int(_load("run").run(args) or 0)
    except UserError as exc:
        print(f"esc-bench: error: {_redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("esc-bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `esc-bench tasks | head`
        return 0
    except OSError as exc:  # the environment: a path that is not a folder, a full disk, no permission
        name = type(exc).__name__
        what = f"{exc.strerror or name}: {exc.filename}" if exc.filename else str(exc) or name
        print(f"esc-bench: error: {_redact(' '.join(what.split()))[:300]}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: one line by default, the traceback on request
        import os

        if os.environ.get("ESC_BENCH_DEBUG"):
            raise
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        msg = _redact(" ".join(str(exc).split()))[:300]
        print(
            f"esc-bench: internal error: {type(exc).__name__}: {msg}{where} "
            "(finished results are kept; set ESC_BENCH_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3


def _redact(text: str) -> str:
    from esc_bench.redact import redact

    return redact(text)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
