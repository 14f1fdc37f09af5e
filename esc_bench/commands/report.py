"""`esc-bench report RUN_DIR…`: the tables again from saved results, with breakdowns.

Breakdowns by language, source dataset and category, each with n and bootstrap 95% CIs.
--format console (default) | md | json | html; -o FILE (the format follows its suffix when
--format is not given); without -o the report goes to stdout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.commands._output import (
    add_format_options,
    add_seed,
    output_format,
    write_json,
    write_text,
)
from esc_bench.console import make_console
from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="run folder(s)")
    add_format_options(parser, "report")
    parser.add_argument("--scale", choices=["4", "100"], default="4", help="0-4 (default) or the paper's 0-100")
    parser.add_argument("--judge", help="use this judge's scores (default: each task's own judge)")
    parser.add_argument("--no-breakdowns", action="store_true", help="leaderboard tables only")
    parser.add_argument("--max-dialogues", type=int, metavar="N", help="html: list at most N dialogues")
    add_seed(parser)


def run(args: argparse.Namespace) -> int:
    from esc_bench.analysis.report import build_report

    fmt = output_format(args)
    facets = () if getattr(args, "no_breakdowns", False) else ("language", "source", "category")
    scale = str(getattr(args, "scale", "4"))
    max_dialogues = getattr(args, "max_dialogues", None)
    if max_dialogues is not None and max_dialogues < 0:
        raise UserError("--max-dialogues must be 0 or more")
    report = build_report(list(args.run_dirs), judge=getattr(args, "judge", None),
                          seed=getattr(args, "seed", 0), facets=facets)
    out = getattr(args, "output", None)
    if fmt == "console":
        from esc_bench.analysis.tables import render_breakdown, render_leaderboard

        console = make_console()
        render_leaderboard(report.board, console, scale=scale)
        for facet, rows in report.breakdowns.items():
            render_breakdown(facet, rows, console, scale=scale, spec=report.breakdown_spec)
        from rich.text import Text

        for note in report.notes:
            console.print(Text.assemble(("note ", "yellow"), note))
    elif fmt == "md":
        from esc_bench.analysis.report_md import report_markdown

        write_text(report_markdown(report, scale), out)
    elif fmt == "json":
        from esc_bench.analysis.report import report_json

        write_json(report_json(report), out)
    else:
        from esc_bench.analysis.report_html import report_html

        write_text(report_html(report, scale, max_dialogues=max_dialogues), out)
    return 0
