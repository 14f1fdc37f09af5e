"""`esc-bench models [list]`: the model configs that can be named in --models, --simulator, --judge."""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "validate"], default="list")
    parser.add_argument("--model-configs", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--paths", action="store_true", help="show the file each config comes from")


def run(args: argparse.Namespace) -> int:
    import os

    from rich.table import Table

    from esc_bench.commands.tasks import short_path
    from esc_bench.config.loader import ModelRegistry
    from esc_bench.console import make_console, styled

    reg = ModelRegistry(args.model_configs)
    console = make_console()
    table = Table(title="model configs (any other litellm model string works too)")
    cols = ["name", "backend", "model", "api_base", "key", "concurrency"] + (["file"] if args.paths else [])
    for col in cols:
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    problems = []
    for name in reg.names():
        try:
            c = reg.get(name)
        except UserError as exc:
            problems.append(str(exc))
            continue
        key = "-"
        env = getattr(c, "api_key_env", None)  # HTTP backends name one
        if env:
            key = f"{env} ({'set' if os.environ.get(env) else 'missing'})"
        base = ", ".join(b for b in c.api_bases() if b) or "-"
        row = [name, c.backend, c.model, base, key, str(c.max_concurrency), short_path(reg.files[name])]
        table.add_row(*row[: len(cols)])
    console.print(table)
    if problems:
        for p in problems:
            console.print(styled("invalid", "red", f" {p}"), highlight=False, soft_wrap=True)
        raise UserError(f"{len(problems)} model config(s) do not validate")
    return 0
