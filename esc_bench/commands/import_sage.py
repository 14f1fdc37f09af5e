"""`esc-bench import-sage`: one of SAGE's published result files as a run folder of the sage protocol.

    esc-bench import-sage SAGE/dataset/deepseek-v3-2024-1227_based_simulator/gpt-4.5_result.jsonl
        --model gpt-4.5 --output results/sage-published

The dialogues land in task sage_zh (card_id = profile id), so `esc-bench leaderboard` and
`compare` set them beside a run of `--tasks sage_zh`. The simulator is read from the file's
`<simulator>_based_simulator` folder unless --simulator names it. A second import (another
model) adds to the same folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, metavar="RESULT.jsonl", help="a SAGE <model>_result.jsonl file")
    parser.add_argument("--model", required=True, help="name of the supporter model in the file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="run folder to write")
    parser.add_argument("--task", default="sage_zh", help="task name (default sage_zh)")
    parser.add_argument("--simulator", help="the sentient agent's model (default: from the file's folder name)")


def run(args: argparse.Namespace) -> int:
    from esc_bench.analysis.tables import render_leaderboard
    from esc_bench.console import make_console
    from esc_bench.ingest.sage_import import import_sage

    rd, board = import_sage(
        args.results, args.output, model=args.model, task=args.task, simulator=args.simulator,
        argv=list(getattr(args, "argv", None) or ["esc-bench", "import-sage"]),
    )
    console = make_console()
    console.print(f"imported {args.model} into {rd.path}", highlight=False)
    render_leaderboard(board, console)
    return 0
