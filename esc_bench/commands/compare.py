"""`esc-bench compare RUN_A [RUN_B]`: a paired comparison of two models.

Two runs (one model each, or pick with --model-a/--model-b), or two models of one run. Refuses
when protocol, simulator or judge differ between the sides (--force: compare with a warning).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.commands._output import add_seed, make_console, write_json
from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="run folder of model A")
    parser.add_argument("run_b", type=Path, nargs="?", metavar="RUN_B", help="run folder of model B (default RUN_A)")
    parser.add_argument("--model-a", help="model A (needed when RUN_A holds several)")
    parser.add_argument("--model-b", help="model B (needed when RUN_B holds several)")
    parser.add_argument("--task", action="append", metavar="NAME", help="only this task (repeatable)")
    parser.add_argument("--judge-a", help="judge whose scores to use for A (default: the task's own)")
    parser.add_argument("--judge-b", help="judge whose scores to use for B (default: the task's own)")
    parser.add_argument("--force", action="store_true", help="compare even when protocol, simulator or judge differ")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON ('-' = stdout)")
    parser.add_argument("--scale", choices=["4", "100"], default="4")
    add_seed(parser)


def _pick(models: list[str], wanted: str | None, where: Path, flag: str) -> str:
    if wanted is not None:
        return wanted
    if len(models) == 1:
        return models[0]
    raise UserError(f"{where} holds {len(models)} models ({', '.join(models) or 'none'}); choose one with {flag}")


def run(args: argparse.Namespace) -> int:
    from rich.text import Text

    from esc_bench.analysis.compare import Side, compare_sides, render_comparison
    from esc_bench.analysis.runs import load_run

    run_b_path = getattr(args, "run_b", None)
    same_run = run_b_path is None or Path(run_b_path).resolve() == Path(args.run_a).resolve()
    run_a = load_run(args.run_a, judge=getattr(args, "judge_a", None))
    if same_run and getattr(args, "judge_b", None) == getattr(args, "judge_a", None):
        run_b = run_a
    else:
        run_b = load_run(run_b_path or args.run_a, judge=getattr(args, "judge_b", None))
    model_a, model_b = getattr(args, "model_a", None), getattr(args, "model_b", None)
    if same_run and model_a is None and model_b is None:
        models = run_a.models
        if len(models) != 2:
            raise UserError(
                f"{run_a.path} holds {len(models)} models ({', '.join(models) or 'none'}); "
                "name two with --model-a and --model-b, or give RUN_B"
            )
        model_a, model_b = models
    model_a = _pick(run_a.models, model_a, run_a.path, "--model-a")
    model_b = _pick(run_b.models, model_b, run_b.path, "--model-b")
    if run_a is run_b and model_a == model_b:
        raise UserError(f"both sides are {model_a} in {run_a.path}: nothing to compare")
    label_a, label_b = model_a, model_b
    if label_a == label_b:
        label_a, label_b = f"{model_a}@{run_a.run_id}", f"{model_b}@{run_b.run_id}"
        if label_a == label_b:
            label_a, label_b = f"{model_a} (A)", f"{model_b} (B)"
    a = Side.from_run(run_a, model_a, label_a)
    b = Side.from_run(run_b, model_b, label_b)
    cmp = compare_sides(a, b, tasks=getattr(args, "task", None), seed=getattr(args, "seed", 0))
    json_path = getattr(args, "json", None)
    console = make_console(stderr=json_path is not None and str(json_path) == "-")
    if cmp.differences:
        if not getattr(args, "force", False):
            raise UserError("the sides differ in " + "; ".join(cmp.differences) + " (--force compares anyway)")
        for line in cmp.differences:
            make_console(stderr=True).print(Text.assemble(("warning: ", "bold yellow"), f"not like for like: {line}"))
    render_comparison(cmp, console, scale=str(getattr(args, "scale", "4")))
    if json_path is not None:
        write_json(cmp.to_dict(), json_path)
    return 0
