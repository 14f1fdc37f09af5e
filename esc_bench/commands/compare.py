"""`esc-bench compare RUN_A [RUN_B]`: a paired comparison of two models, B − A.

Two runs (one model each, or pick with --model-a/--model-b), or two models of one run. One table
per task by default (--pooled: all tasks in one). --format console (default) | md | json | html,
-o FILE, as for `report`. Refuses when protocol, simulator or judge differ between the sides
(--force: compare with a warning).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esc_bench.commands._output import (
    add_format_options,
    add_seed,
    output_format,
    write_json,
    write_text,
)
from esc_bench.console import make_console
from esc_bench.dimensions import SCALE_100
from esc_bench.errors import UserError

if TYPE_CHECKING:
    from esc_bench.analysis.compare import Comparison
    from esc_bench.analysis.runs import LoadedRun

COMPARE_SCHEMA_VERSION = 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="run folder of model A (the baseline, e.g. v1)")
    parser.add_argument("run_b", type=Path, nargs="?", metavar="RUN_B",
                        help="run folder of model B (the candidate, e.g. v2; default RUN_A)")
    parser.add_argument("--model-a", help="model A (needed when RUN_A holds several)")
    parser.add_argument("--model-b", help="model B (needed when RUN_B holds several)")
    parser.add_argument("--task", action="append", metavar="NAME", help="only this task (repeatable)")
    parser.add_argument("--pooled", action="store_true", help="one table over all tasks (default: one per task)")
    parser.add_argument("--judge-a", help="judge whose scores to use for A (default: the task's own)")
    parser.add_argument("--judge-b", help="judge whose scores to use for B (default: the task's own)")
    parser.add_argument("--force", action="store_true", help="compare even when protocol, simulator or judge differ")
    add_format_options(parser, "comparison")
    parser.add_argument("--json", type=Path, metavar="FILE", dest="json_file",
                        help="deprecated (use --format json -o FILE): also write the comparison as JSON")
    parser.add_argument("--max-dialogues", type=int, default=10, metavar="N",
                        help="the N cards whose dialogues differ most, per table (default 10)")
    parser.add_argument("--scale", choices=["4", "100"], default="4", help="0-4 (default) or the paper's 0-100")
    add_seed(parser)


def _pick(models: list[str], wanted: str | None, where: Path, flag: str) -> str:
    if wanted is not None:
        return wanted
    if len(models) == 1:
        return models[0]
    raise UserError(f"{where} holds {len(models)} models ({', '.join(models) or 'none'}); choose one with {flag}")


def run(args: argparse.Namespace) -> int:
    from rich.text import Text

    from esc_bench.analysis.compare import Side, compare_per_task, compare_sides
    from esc_bench.analysis.runs import load_run

    fmt = output_format(args)
    json_file = getattr(args, "json_file", None)
    if json_file is not None and fmt != "console":
        raise UserError("--json is the old spelling of --format json -o FILE; give one or the other")
    top = getattr(args, "max_dialogues", 10)
    if top is None or top < 0:
        raise UserError("--max-dialogues must be 0 or more")
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
    kw: dict[str, Any] = {"tasks": getattr(args, "task", None), "seed": getattr(args, "seed", 0), "top": top}
    pooled = compare_sides(a, b, **kw)
    notes = []
    if pooled.differences:
        if not getattr(args, "force", False):
            raise UserError("the sides differ in " + "; ".join(pooled.differences) + " (--force compares anyway)")
        notes = [f"not like for like: {line}" for line in pooled.differences]
        for line in notes:
            make_console(stderr=True).print(Text.assemble(("warning: ", "bold yellow"), line))
    tables = [pooled] if getattr(args, "pooled", False) else compare_per_task(a, b, **kw)
    scale = str(getattr(args, "scale", "4"))
    factors = {m.to_100 for spec in pooled.specs.values() for m in spec.metrics}
    if scale == "100" and float(SCALE_100) not in factors:
        scale = "4"  # metrics already on 0-100 (or without a 0-100 view) are shown as they are, never x25
    out = getattr(args, "output", None)
    if fmt == "console":
        from esc_bench.analysis.compare_render import render_comparison

        console = make_console(stderr=json_file is not None and str(json_file) == "-")
        for cmp in tables:
            render_comparison(cmp, console, scale=scale)
        if json_file is not None:
            write_json(_json(tables, pooled, runs=(run_a, run_b), notes=notes), json_file)
    elif fmt == "md":
        from esc_bench.analysis.compare_render import comparison_markdown

        write_text(comparison_markdown(tables, scale), out)
    elif fmt == "json":
        write_json(_json(tables, pooled, runs=(run_a, run_b), notes=notes), out)
    else:
        from esc_bench.analysis.compare_html import comparison_html

        runs = f"A: {model_a} in {run_a.run_id} ({run_a.path}); B: {model_b} in {run_b.run_id} ({run_b.path})"
        write_text(comparison_html(tables, scale, runs=runs, generated=_now(), seed=getattr(args, "seed", 0),
                                   notes=notes), out)
    return 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _json(
    tables: list[Comparison], pooled: Comparison, *, runs: tuple[LoadedRun, LoadedRun], notes: list[str]
) -> dict[str, Any]:
    """The pooled comparison at the top level, then the per-task tables (absent with --pooled)."""
    run_a, run_b = runs
    doc = {"schema_version": COMPARE_SCHEMA_VERSION, "generated": _now(),
           "runs": {"a": {"run_id": run_a.run_id, "path": str(run_a.path)},
                    "b": {"run_id": run_b.run_id, "path": str(run_b.path)}},
           "notes": notes, **pooled.to_dict()}
    doc["per_task"] = [] if tables == [pooled] else [t.to_dict() for t in tables]
    return doc
