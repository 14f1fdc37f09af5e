"""Leaderboard tables: rich (console) and markdown. One table per task, models as rows.

Each cell is "mean ±h" where h is half the width of the bootstrap 95% CI, on the 0-4 scale or
the paper's 0-100 (×25). The best value of each column is bold (green on the console);
a dimension with no score is "–".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from esc_bench.analysis.markdown import markdown_table, md_bold, md_text
from esc_bench.dimensions import DIMENSION_NAMES, SCALE_100
from esc_bench.records import DimensionScore, Leaderboard, LeaderboardEntry

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.analysis.breakdown import BreakdownRow

MISSING = "–"
SCALES = ("4", "100")


def _check_scale(scale: str) -> str:
    scale = str(scale)
    if scale not in SCALES:
        raise ValueError(f"scale must be '4' or '100', not {scale!r}")
    return scale


def format_score(ds: DimensionScore | None, scale: str = "4", *, ci: bool = True) -> str:
    """'2.45 ±0.12' (0-4) or '61.3 ±3.0' (0-100); '–' without a score."""
    scale = _check_scale(scale)
    if ds is None or ds.mean is None:
        return MISSING
    factor, digits = (1.0, 2) if scale == "4" else (float(SCALE_100), 1)
    text = f"{ds.mean * factor:.{digits}f}"
    if ci and ds.ci95 is not None:
        text += f" ±{(ds.ci95[1] - ds.ci95[0]) / 2 * factor:.{digits}f}"
    return text


def columns() -> list[str]:
    return [*DIMENSION_NAMES, "average"]


class Scored(Protocol):
    """A leaderboard entry or a breakdown row: a score per metric and their average."""

    @property
    def scores(self) -> dict[str, DimensionScore]: ...

    @property
    def average(self) -> DimensionScore: ...


def column_score(row: Scored, col: str) -> DimensionScore | None:
    """The score in a table's column: a metric's, or the average's (column "average")."""
    return row.average if col == "average" else row.scores.get(col)


def best_models(entries: list[LeaderboardEntry], col: str) -> set[str]:
    """Models with the highest mean in a column (ties share it); empty with fewer than 2 scored."""
    means = {e.model: m for e in entries if (c := column_score(e, col)) is not None and (m := c.mean) is not None}
    if len(means) < 2:
        return set()
    top = max(means.values())
    best = {m for m, v in means.items() if abs(v - top) < 1e-9}
    return set() if len(best) == len(means) else best


def by_task(board: Leaderboard) -> dict[str, list[LeaderboardEntry]]:
    """Each task's entries, the models in the report's one order (analysis/model_order.py)."""
    from esc_bench.analysis.model_order import in_order, model_order

    order = model_order(board.entries)
    out: dict[str, list[LeaderboardEntry]] = {}
    for e in in_order(board.entries, order, lambda x: x.model):
        out.setdefault(e.task, []).append(e)
    return out


def _settings_line(entries: list[LeaderboardEntry]) -> str:
    parts = []
    for attr in ("protocol", "simulator", "judge"):
        vals = sorted({v for e in entries if (v := getattr(e, attr))})
        if vals:
            parts.append(f"{attr} {'/'.join(vals)}")
    return ", ".join(parts)


def _missing_total(entry: LeaderboardEntry) -> int:
    return sum(s.n_missing for s in entry.scores.values())


def _scale_note(scale: str) -> str:
    rng = "0–4" if scale == "4" else "0–100 (×25)"
    return f"mean ±95% CI half-width, scale {rng}"


def render_leaderboard(board: Leaderboard, console: Console, scale: str = "4") -> None:
    """Print one rich table per task."""
    from rich.table import Table
    from rich.text import Text

    scale = _check_scale(scale)
    groups = by_task(board)
    if not groups:
        console.print("no results to show", highlight=False)
        return
    for task, entries in groups.items():
        show_missing = any(_missing_total(e) for e in entries)
        settings = _settings_line(entries)
        table = Table(
            title=Text(task, style="bold"),
            caption=Text(f"{settings} — {_scale_note(scale)}" if settings else _scale_note(scale)),
            title_justify="left",
            caption_justify="left",
        )
        table.add_column("model", no_wrap=True)
        for col in columns():
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("n", justify="right")
        table.add_column("failed", justify="right")
        if show_missing:
            table.add_column("missing", justify="right")
        best = {col: best_models(entries, col) for col in columns()}
        for e in entries:
            row: list[Text] = [Text(e.model)]
            for col in columns():
                style = "bold green" if e.model in best[col] else ""
                row.append(Text(format_score(column_score(e, col), scale), style=style))
            row.append(Text(str(e.n_dialogues)))
            row.append(Text(str(e.n_failed), style="red" if e.n_failed else ""))
            if show_missing:
                m = _missing_total(e)
                row.append(Text(str(m), style="yellow" if m else ""))
            table.add_row(*row)
        console.print(table)


def leaderboard_markdown(board: Leaderboard, scale: str = "4", *, heading: str = "###") -> str:
    """One markdown table per task, best values in bold."""
    scale = _check_scale(scale)
    out: list[str] = []
    for task, entries in by_task(board).items():
        show_missing = any(_missing_total(e) for e in entries)
        header = ["model", *columns(), "n", "failed"] + (["missing"] if show_missing else [])
        best = {col: best_models(entries, col) for col in columns()}
        rows = []
        for e in entries:
            cells = [e.model]
            for col in columns():
                text = format_score(column_score(e, col), scale)
                cells.append(md_bold(text) if e.model in best[col] else text)
            cells += [str(e.n_dialogues), str(e.n_failed)]
            if show_missing:
                cells.append(str(_missing_total(e)))
            rows.append(cells)
        out.append(f"{heading} {md_text(task)}")
        settings = _settings_line(entries)
        out.append(f"{md_text(settings) + ' — ' if settings else ''}{_scale_note(scale)}")
        out.append("")
        out.append(markdown_table(header, rows))
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else "No results.\n"


FACET_TITLES = {"language": "by language", "source": "by source dataset", "category": "by category"}


def breakdown_best(rows: list[BreakdownRow]) -> dict[tuple[str, str], set[str]]:
    """Per (group, column): the models with the best mean within that group."""
    out: dict[tuple[str, str], set[str]] = {}
    groups: dict[str, list[BreakdownRow]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    for g, rs in groups.items():
        for col in columns():
            means = {r.model: c.mean for r in rs if (c := column_score(r, col)) is not None and c.mean is not None}
            if len(means) >= 2:
                top = max(means.values())
                best = {m for m, v in means.items() if abs(v - top) < 1e-9}
                if len(best) < len(means):
                    out[(g, col)] = best
    return out


def render_breakdown(facet: str, rows: list[BreakdownRow], console: Console, scale: str = "4") -> None:
    """One rich table for a facet: a row per (group, model); the best model of each group bold."""
    from rich.table import Table
    from rich.text import Text

    scale = _check_scale(scale)
    table = Table(
        title=Text(FACET_TITLES.get(facet, facet), style="bold"),
        caption=Text(_scale_note(scale)), title_justify="left", caption_justify="left",
    )
    table.add_column(facet, no_wrap=True)
    table.add_column("model", no_wrap=True)
    for col in columns():
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("failed", justify="right")
    best = breakdown_best(rows)
    prev = None
    for r in rows:
        cells = [Text(r.label if r.group != prev else ""), Text(r.model)]
        for col in columns():
            style = "bold green" if r.model in best.get((r.group, col), set()) else ""
            cells.append(Text(format_score(column_score(r, col), scale), style=style))
        cells += [Text(str(r.n_dialogues)), Text(str(r.n_failed), style="red" if r.n_failed else "")]
        table.add_row(*cells, end_section=False)
        prev = r.group
    console.print(table)


def breakdown_markdown(facet: str, rows: list[BreakdownRow], scale: str = "4", *, heading: str = "###") -> str:
    scale = _check_scale(scale)
    best = breakdown_best(rows)
    header = [facet, "model", *columns(), "n", "failed"]
    body = []
    for r in rows:
        cells = [r.label, r.model]
        for col in columns():
            text = format_score(column_score(r, col), scale)
            cells.append(md_bold(text) if r.model in best.get((r.group, col), set()) else text)
        body.append(cells + [str(r.n_dialogues), str(r.n_failed)])
    title = md_text(FACET_TITLES.get(facet, facet))
    table = markdown_table(header, body, ["l", "l"] + ["r"] * (len(header) - 2))
    return f"{heading} {title}\n{_scale_note(scale)}\n\n{table}\n"
