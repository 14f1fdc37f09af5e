"""`esc-bench agreement RUN_DIR --reference FILE|RUN_DIR`: a judge against reference scores.

Reference: JSONL / CSV / JSON list of {task?, model?, card_id, dimension, score} (see
esc_bench.analysis.agreement), or another run folder (its judge's scores, or --reference-judge).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from esc_bench.commands._output import add_seed, write_json
from esc_bench.console import make_console
from esc_bench.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.analysis.agreement import Agreement


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder with the judge's scores")
    parser.add_argument("--reference", type=Path, required=True, metavar="FILE|RUN_DIR",
                        help="reference scores: .jsonl / .csv / .json file, or a run folder")
    parser.add_argument("--judge", help="the judge to evaluate (default: each task's own judge)")
    parser.add_argument("--reference-judge", help="with a run folder as reference: its judge to use")
    parser.add_argument("--task", action="append", metavar="NAME", help="only this task (repeatable)")
    parser.add_argument("--model", action="append", metavar="NAME", help="only this model's dialogues (repeatable)")
    parser.add_argument("--force", action="store_true",
                        help="with a run folder as reference: leave out the dialogues whose transcripts differ "
                             "instead of refusing")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON ('-' = stdout)")
    add_seed(parser)


def run(args: argparse.Namespace) -> int:
    from esc_bench.analysis.agreement import agreement
    from esc_bench.analysis.agreement_match import transcript_mismatches
    from esc_bench.analysis.agreement_refs import load_reference_file, refs_from_scores
    from esc_bench.analysis.runs import load_run

    run = load_run(args.run_dir, judge=getattr(args, "judge", None))
    tasks, models = getattr(args, "task", None), getattr(args, "model", None)
    judged = [s for s in run.scores if (not tasks or s.task in tasks) and (not models or s.model in models)]
    if not judged:
        raise UserError(f"{run.path}: no scores to evaluate (after --task/--model)")
    judge_names = sorted({s.judge for s in judged})
    ref_path = Path(args.reference)
    ref_judge = getattr(args, "reference_judge", None)
    if ref_path.is_dir():
        ref_run = load_run(ref_path, judge=ref_judge)
        refs = refs_from_scores(ref_run.scores)
        ref_label = f"{'/'.join(sorted({s.judge for s in ref_run.scores})) or 'no judge'} ({ref_run.run_id})"
        if ref_run.path.resolve() == run.path.resolve() and set(ref_run.judges.values()) == set(run.judges.values()):
            raise UserError("the reference is the same judge's scores in the same run; name --reference-judge")
        differ = transcript_mismatches(judged, refs, run.dialogues, ref_run.dialogues)
        if differ:
            what = (f"{len(differ)} scored dialogue{'s' if len(differ) != 1 else ''} in {run.path} "
                    f"{'have' if len(differ) != 1 else 'has'} a different transcript in {ref_run.path}")
            if not getattr(args, "force", False):
                raise UserError(f"{what}: the runs did not score the same dialogues "
                                "(--force leaves those dialogues out)")
            judged = [s for s in judged if (s.task, s.model, s.card_id) not in differ]
            refs = [r for r in refs if (r.task, r.model, r.card_id) not in differ]
            _warn(f"{what}; left out of the agreement (--force)")
    else:
        if ref_judge is not None:
            raise UserError("--reference-judge applies to a run folder reference only")
        refs = load_reference_file(ref_path)
        ref_label = ref_path.name
    result = agreement(judged, refs, judge="/".join(judge_names), reference=ref_label, seed=getattr(args, "seed", 0))
    json_path = getattr(args, "json", None)
    render_agreement(result, make_console(stderr=json_path is not None and str(json_path) == "-"))
    if json_path is not None:
        write_json(result.to_dict(), json_path)
    return 0


def _warn(message: str) -> None:
    from rich.text import Text

    make_console(stderr=True).print(Text.assemble(("warning: ", "bold yellow"), message))


PAPER_NOTE = ("paper: ESC-RANK 70.53/71.27% exact, 98.93/99.17% ±1 (EN/ZH); "
              "GPT-4 32.15/35.98% exact")


def render_agreement(result: Agreement, console: Console) -> None:
    """A rich table: one row per dimension, then the pooled row."""
    from rich.table import Table
    from rich.text import Text

    from esc_bench.analysis.agreement import ALL, Metric

    def fmt(m: Metric, pct: bool = False) -> str:
        if m.value is None:
            return "–"
        f, d, unit = (100.0, 1, "%") if pct else (1.0, 3, "")
        s = f"{m.value * f:.{d}f}{unit}"
        if m.ci95 is not None:
            s += f" [{m.ci95[0] * f:.{d}f}, {m.ci95[1] * f:.{d}f}]"
        return s

    table = Table(
        title=Text(f"agreement: {result.judge} vs {result.reference}", style="bold"),
        caption=Text(
            f"tasks {', '.join(result.tasks)}; bootstrap 95% CIs over dialogues; "
            f"missing: judge {result.n_judge_missing}, reference {result.n_ref_missing}; "
            f"unmatched reference rows {result.n_unmatched_ref}\n{PAPER_NOTE}"
        ),
        title_justify="left",
        caption_justify="left",
    )
    for col in ("dimension", "n", "exact acc", "±1 acc", "QWK", "Spearman", "α (ordinal)", "judge − ref"):
        table.add_column(col, justify="left" if col == "dimension" else "right", no_wrap=True)
    for r in result.rows:
        mt = r.metrics
        cells = [str(r.n), fmt(mt["exact"], True), fmt(mt["within1"], True), fmt(mt["qwk"]),
                 fmt(mt["spearman"]), fmt(mt["alpha"]), "–" if mt["bias"].value is None else f"{mt['bias'].value:+.2f}"]
        table.add_row(Text(r.dimension, style="bold" if r.dimension == ALL else ""), *(Text(c) for c in cells))
    console.print(table)
