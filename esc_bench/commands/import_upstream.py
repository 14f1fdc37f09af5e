"""`esc-bench import-upstream`: ESC-Eval's upstream transcript and score files as a run folder.

    esc-bench import-upstream --transcripts llama3_en.json --scores llama3_en_scores.json
        --language en --model llama3 --cards card_high_en.json -o results/upstream-llama3

The task is esc_eval_en / esc_eval_zh (from --language). card_id is the upstream index, or with
--cards the id of the card at that position (so the run pairs with esc-bench runs of those
cards). A second import (the other language, or another model) adds to the same folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.console import make_console


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transcripts", type=Path, required=True, metavar="FILE",
                        help="upstream result file {index: [\"AI assistant：…\", \"ESC-Role：…\", …]}")
    parser.add_argument(
        "--scores",
        type=Path,
        metavar="FILE",
        help="upstream score file {index: {fluency, diversity, empathic, suggestion, human, tech, overall}}",
    )
    parser.add_argument("--language", required=True, choices=["en", "zh", "english", "chinese"])
    parser.add_argument("--model", required=True, help="name of the supporter model in the transcripts")
    parser.add_argument("--cards", type=Path, metavar="FILE", help="the card file upstream ran (index = position)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="run folder to write")
    parser.add_argument("--judge", default="esc-rank", help="name of the judge that made --scores (default esc-rank)")
    parser.add_argument("--simulator", default="esc-role", help="the seeker that was used (default esc-role)")
    parser.add_argument("--protocol", default="esc-eval", help="protocol name recorded (default esc-eval)")
    parser.add_argument("--task", help="task name (default esc_eval_en / esc_eval_zh)")
    parser.add_argument("--scale", choices=["4", "100"], default="4")


def run(args: argparse.Namespace) -> int:
    from esc_bench.analysis.tables import render_leaderboard
    from esc_bench.ingest.upstream_results import import_upstream

    rd, board = import_upstream(
        args.transcripts,
        getattr(args, "scores", None),
        args.output,
        language=args.language,
        model=args.model,
        cards_path=getattr(args, "cards", None),
        judge=getattr(args, "judge", "esc-rank"),
        simulator=getattr(args, "simulator", "esc-role"),
        protocol=getattr(args, "protocol", "esc-eval"),
        task=getattr(args, "task", None),
        argv=list(getattr(args, "argv", None) or ["esc-bench", "import-upstream"]),
    )
    console = make_console()
    console.print(f"imported into {rd.path}", highlight=False)
    render_leaderboard(board, console, scale=str(getattr(args, "scale", "4")))
    return 0
