"""The one rich console of every command.

Text printed here often comes from outside: a server's error body, a card id, a model or task name,
a category, a file path. Rich reads `[...]` as markup and `:name:` as emoji codes, so such text could
break a print (`[/]` raises MarkupError) or change what is shown. The console therefore never reads
markup or emoji codes in strings: what is printed is what the text says. Our own styling is given as
rich `Text` (see `styled`), which never parses its content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


def make_console(stderr: bool = False, *, pipe_width: int = 200) -> Console:
    """A console that prints strings literally; a pipe or file gets `pipe_width` columns (wide tables)."""
    from rich.console import Console

    console = Console(stderr=stderr, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, markup=False, emoji=False, width=pipe_width)
    return console


def styled(label: str, style: str, rest: str = "") -> Text:
    """`label` in `style`, then `rest` as plain text: e.g. styled("failed ", "red", message)."""
    from rich.text import Text

    return Text.assemble((label, style), rest)
