"""Leaderboard tables: rich (console) and markdown. One table per task, models as rows.

Each task shows what its protocol's spec (`Leaderboard.specs`) names: one column per metric (and
the average when the spec has one), then the count of each outcome. Each cell is "mean ±h" where
h is half the width of the bootstrap 95% CI, on the metric's own scale (`--scale 4`, ESC-Eval's
0-4) or its 0-100 view (`--scale 100`, ESC-Eval's ×25). The best value of each column is bold
(green on the console); a metric with no score is "–".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from esc_bench.analysis.markdown import markdown_table, md_bold, md_text
from esc_bench.records import ESC_EVAL_SPEC, DimensionScore, Leaderboard, LeaderboardEntry, MetricSpec, ProtocolSpec

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


def native_digits(metric: MetricSpec) -> int:
    """Decimals shown on a metric's own scale: 2 on a short one (0-4), 1 on a long one (0-100)."""
    return 2 if metric.high - metric.low <= 10 else 1


def scale_factor(metric: MetricSpec, scale: str) -> tuple[float, int]:
    """(factor, decimals) of a metric shown on `scale`: '4' its own, '100' its 0-100 view."""
    if _check_scale(scale) == "100" and metric.to_100 is not None:
        return float(metric.to_100), 1
    return 1.0, native_digits(metric)


def format_score(
    ds: DimensionScore | None, scale: str = "4", *, ci: bool = True, metric: MetricSpec | None = None
) -> str:
    """'2.45 ±0.12' (0-4) or '61.3 ±3.0' (0-100); '–' without a score. `metric`: ESC-Eval's by default."""
    if ds is None or ds.mean is None:
        _check_scale(scale)
        return MISSING
    factor, digits = scale_factor(metric or ESC_EVAL_SPEC.metrics[0], scale)
    text = f"{ds.mean * factor:.{digits}f}"
    if ci and ds.ci95 is not None:
        text += f" ±{(ds.ci95[1] - ds.ci95[0]) / 2 * factor:.{digits}f}"
    return text


def columns(spec: ProtocolSpec = ESC_EVAL_SPEC) -> list[str]:
    """A spec's score columns: its metrics, then "average" when it has one."""
    return spec.columns


class Scored(Protocol):
    """A leaderboard entry or a breakdown row: a score per metric and their average."""

    @property
    def scores(self) -> dict[str, DimensionScore]: ...

    @property
    def average(self) -> DimensionScore: ...


def column_score(row: Scored, col: str) -> DimensionScore | None:
    """The score in a table's column: a metric's, or the average's (column "average")."""
    return row.average if col == "average" else row.scores.get(col)


def best_models(entries: list[LeaderboardEntry], col: str, metric: MetricSpec | None = None) -> set[str]:
    """Models with the best mean in a column (ties share it); empty with fewer than 2 scored.

    Best is the highest, or the lowest for a metric where lower is better.
    """
    means = {e.model: m for e in entries if (c := column_score(e, col)) is not None and (m := c.mean) is not None}
    if len(means) < 2:
        return set()
    top = max(means.values()) if metric is None or metric.higher_is_better else min(means.values())
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


def scale_text(metric: MetricSpec, scale: str) -> str:
    """'0–4', '0–100 (×25)' or '0–100': the range a metric is shown on."""
    factor, _ = scale_factor(metric, scale)
    if factor != 1.0:
        return f"0–100 (×{factor:g})"
    return f"{metric.low:g}–{metric.high:g}"


def _scale_note(scale: str, spec: ProtocolSpec = ESC_EVAL_SPEC) -> str:
    rng = "; ".join(dict.fromkeys(scale_text(m, scale) for m in spec.metrics))
    return f"mean ±95% CI half-width, scale {rng}"


def task_best(entries: list[LeaderboardEntry], spec: ProtocolSpec) -> dict[str, set[str]]:
    """Per score column of `spec`: the models with the best mean."""
    return {col: best_models(entries, col, spec.metric(col)) for col in columns(spec)}


def render_leaderboard(board: Leaderboard, console: Console, scale: str = "4") -> None:
    """Print one rich table per task, then each protocol's own section (esc_bench.analysis.protocol_section)."""
    from rich.table import Table
    from rich.text import Text

    from esc_bench.analysis.protocol_section import render_sections

    scale = _check_scale(scale)
    groups = by_task(board)
    if not groups:
        console.print("no results to show", highlight=False)
        return
    for task, entries in groups.items():
        spec = board.spec(task)
        show_missing = any(_missing_total(e) for e in entries)
        settings = _settings_line(entries)
        note = _scale_note(scale, spec)
        table = Table(
            title=Text(task, style="bold"),
            caption=Text(f"{settings} — {note}" if settings else note),
            title_justify="left",
            caption_justify="left",
        )
        table.add_column("model", no_wrap=True)
        for col in [*columns(spec), *spec.outcomes]:
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("n", justify="right")
        table.add_column("failed", justify="right")
        if show_missing:
            table.add_column("missing", justify="right")
        best = task_best(entries, spec)
        for e in entries:
            row: list[Text] = [Text(e.model)]
            for col in columns(spec):
                style = "bold green" if e.model in best[col] else ""
                row.append(Text(format_score(column_score(e, col), scale, metric=spec.metric(col)), style=style))
            row += [Text(str(e.outcomes.get(o, 0))) for o in spec.outcomes]
            row.append(Text(str(e.n_dialogues)))
            row.append(Text(str(e.n_failed), style="red" if e.n_failed else ""))
            if show_missing:
                m = _missing_total(e)
                row.append(Text(str(m), style="yellow" if m else ""))
            table.add_row(*row)
        console.print(table)
    render_sections(board, console)


def leaderboard_markdown(board: Leaderboard, scale: str = "4", *, heading: str = "###") -> str:
    """One markdown table per task, best values in bold."""
    scale = _check_scale(scale)
    out: list[str] = []
    for task, entries in by_task(board).items():
        spec = board.spec(task)
        show_missing = any(_missing_total(e) for e in entries)
        header = ["model", *columns(spec), *spec.outcomes, "n", "failed"] + (["missing"] if show_missing else [])
        best = task_best(entries, spec)
        rows = []
        for e in entries:
            cells = [e.model]
            for col in columns(spec):
                text = format_score(column_score(e, col), scale, metric=spec.metric(col))
                cells.append(md_bold(text) if e.model in best[col] else text)
            cells += [str(e.outcomes.get(o, 0)) for o in spec.outcomes]
            cells += [str(e.n_dialogues), str(e.n_failed)]
            if show_missing:
                cells.append(str(_missing_total(e)))
            rows.append(cells)
        out.append(f"{heading} {md_text(task)}")
        settings = _settings_line(entries)
        out.append(f"{md_text(settings) + ' — ' if settings else ''}{_scale_note(scale, spec)}")
        out.append("")
        out.append(markdown_table(header, rows))
        out.append("")
    return "\n".join(out).rstrip() + "\n" if out else "No results.\n"


FACET_TITLES = {"language": "by language", "source": "by source dataset", "category": "by category"}


def breakdown_best(rows: list[BreakdownRow], spec: ProtocolSpec = ESC_EVAL_SPEC) -> dict[tuple[str, str], set[str]]:
    """Per (group, column): the models with the best mean within that group."""
    out: dict[tuple[str, str], set[str]] = {}
    groups: dict[str, list[BreakdownRow]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    for g, rs in groups.items():
        for col in columns(spec):
            means = {r.model: c.mean for r in rs if (c := column_score(r, col)) is not None and c.mean is not None}
            if len(means) >= 2:
                top = max(means.values()) if spec.metric(col).higher_is_better else min(means.values())
                best = {m for m, v in means.items() if abs(v - top) < 1e-9}
                if len(best) < len(means):
                    out[(g, col)] = best
    return out


def render_breakdown(
    facet: str, rows: list[BreakdownRow], console: Console, scale: str = "4", spec: ProtocolSpec = ESC_EVAL_SPEC
) -> None:
    """One rich table for a facet: a row per (group, model); the best model of each group bold."""
    from rich.table import Table
    from rich.text import Text

    scale = _check_scale(scale)
    table = Table(
        title=Text(FACET_TITLES.get(facet, facet), style="bold"),
        caption=Text(_scale_note(scale, spec)), title_justify="left", caption_justify="left",
    )
    table.add_column(facet, no_wrap=True)
    table.add_column("model", no_wrap=True)
    for col in columns(spec):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("failed", justify="right")
    best = breakdown_best(rows, spec)
    prev = None
    for r in rows:
        cells = [Text(r.label if r.group != prev else ""), Text(r.model)]
        for col in columns(spec):
            style = "bold green" if r.model in best.get((r.group, col), set()) else ""
            cells.append(Text(format_score(column_score(r, col), scale, metric=spec.metric(col)), style=style))
        cells += [Text(str(r.n_dialogues)), Text(str(r.n_failed), style="red" if r.n_failed else "")]
        table.add_row(*cells, end_section=False)
        prev = r.group
    console.print(table)


def breakdown_markdown(
    facet: str, rows: list[BreakdownRow], scale: str = "4", *, heading: str = "###", spec: ProtocolSpec = ESC_EVAL_SPEC
) -> str:
    scale = _check_scale(scale)
    best = breakdown_best(rows, spec)
    header = [facet, "model", *columns(spec), "n", "failed"]
    body = []
    for r in rows:
        cells = [r.label, r.model]
        for col in columns(spec):
            text = format_score(column_score(r, col), scale, metric=spec.metric(col))
            cells.append(md_bold(text) if r.model in best.get((r.group, col), set()) else text)
        body.append(cells + [str(r.n_dialogues), str(r.n_failed)])
    title = md_text(FACET_TITLES.get(facet, facet))
    table = markdown_table(header, body, ["l", "l"] + ["r"] * (len(header) - 2))
    return f"{heading} {title}\n{_scale_note(scale, spec)}\n\n{table}\n"
