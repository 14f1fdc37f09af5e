"""Markdown output: text from outside (model, task and card names, categories, notes) shown as written.

A name may hold anything: line breaks of every kind (a bare `\\r` ends a table row as surely as `\\n`),
`|` (a new cell), `![..](..)` (a live image), emphasis, HTML. `md_text` makes any string one line of
literal text; `markdown_table` escapes every cell except those we wrote as markdown (`Markdown`).
"""

from __future__ import annotations

import re

# What could start markup inside one line: `|` (a new cell), emphasis, code spans, `\`, `_` only where it
# can emphasise (not in `t_en`), and `]` where a link, image or link definition would follow it
# (`](`, `][`, `]:`); a plain `[44.6, 81.2]` stays as it is. CommonMark lets a backslash escape each.
_SPECIAL = re.compile(r"[\\`*|~]|\](?=[(\[:])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


class Markdown(str):
    """Text that is already markdown (written by us): `markdown_table` keeps it as is."""


def md_text(text: object) -> str:
    """Any text as one line of literal markdown: breaks become spaces, markup characters are escaped."""
    line = " ".join(str(text).split())  # every kind of line break (\r, \u2028, \x85, ...) and tab
    line = _SPECIAL.sub(lambda m: "\\" + m.group(0), line)
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(text: object) -> str:
    """Text as an inline code span, on one line, whatever backticks it holds."""
    line = " ".join(str(text).split())
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if line.startswith("`") or line.endswith("`") else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def md_bold(text: object) -> Markdown:
    return Markdown(f"**{md_text(text)}**")


def _cell(value: object) -> str:
    return value if isinstance(value, Markdown) else md_text(value)


def markdown_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    """A GitHub-flavoured markdown table: one line per row whatever the cells hold."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    seps = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(seps) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
