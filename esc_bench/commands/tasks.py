"""`esc-bench tasks [list|validate]`: the tasks and groups that can be run."""

from __future__ import annotations

import argparse
from pathlib import Path

from esc_bench.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "validate"], default="list")
    parser.add_argument("--tasks-dir", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--cards", action="store_true", help="validate: also load each task's cards (may download)")
    parser.add_argument("--paths", action="store_true", help="show the file each task comes from")


def short_path(path: Path) -> str:
    """A path relative to the working folder when it is below it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from esc_bench.config.loader import TaskRegistry
    from esc_bench.console import make_console, styled

    reg = TaskRegistry(args.tasks_dir)
    console = make_console()
    table = Table(title="tasks and groups")
    cols = ["name", "kind", "language", "protocol", "cards", "simulator", "judge"] + (["file"] if args.paths else [])
    for col in cols:
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    problems: list[str] = []
    for name in reg.names():
        try:
            if reg.is_group(name):
                g = reg.group(name)
                reg.resolve([name])
                table.add_row(
                    *[name, "group", "", "", ", ".join(g.tasks), "", "", short_path(reg.files[name])][: len(cols)]
                )
                continue
            t = reg.task(name)
            if args.action == "validate" and args.cards:
                from esc_bench.data.cards import load_cards

                n = len(load_cards(t.cards, t.language, base_dir=reg.files[name].parent))
                card_info = f"{t.cards.source} ({n})"
            else:
                card_info = t.cards.source
            row = [name, "task", t.language, t.protocol, card_info, t.simulator, t.judge, short_path(reg.files[name])]
            table.add_row(*row[: len(cols)])
        except UserError as exc:
            problems.append(str(exc))
    console.print(table)
    if problems:
        for p in problems:
            console.print(styled("invalid", "red", f" {p}"), highlight=False, soft_wrap=True)
        raise UserError(f"{len(problems)} task file(s) do not validate")
    if args.action == "validate":
        console.print(f"all {len(reg.names())} task files validate")
    return 0
