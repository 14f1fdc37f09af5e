"""A comparison as text: the console tables (rich) and markdown, and the cell formats both use
(the HTML page uses them too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from esc_bench.analysis.compare import (
    NO_DIFFERENCE,
    ORIENTATION,
    POOLED,
    Comparison,
    DimComparison,
    GroupComparison,
)
from esc_bench.analysis.markdown import markdown_table, md_text
from esc_bench.analysis.tables import FACET_TITLES
from esc_bench.dimensions import SCALE_100

if TYPE_CHECKING:
    from rich.console import Console

HEADER = ["dimension", "A", "B", "B − A", "95% CI", "p", "p (Holm)", "B win/tie/loss", "pairs", "left out",
          "verdict"]
GROUP_HEADER_TAIL = ["average B − A", "95% CI", "B win/tie/loss", "verdict"]


def factor(scale: str) -> tuple[float, int]:
    return (1.0, 2) if str(scale) == "4" else (float(SCALE_100), 1)


def num(x: float | None, scale: str, signed: bool = False) -> str:
    if x is None:
        return "–"
    f, digits = factor(scale)
    return f"{x * f:+.{digits}f}" if signed else f"{x * f:.{digits}f}"


def ci_text(r: DimComparison, scale: str) -> str:
    return "–" if r.ci95 is None else f"[{num(r.ci95[0], scale, True)}, {num(r.ci95[1], scale, True)}]"


def p_text(p: float | None) -> str:
    return "–" if p is None else (f"{p:.3g}" if p >= 0.001 else "<0.001")


def left_out(r: DimComparison) -> str:
    """Why a row uses fewer pairs than the table has: missing scores on either side."""
    parts = []
    if r.n_missing_a:
        parts.append(f"{r.n_missing_a} without A's score")
    if r.n_missing_b:
        parts.append(f"{r.n_missing_b} without B's score")
    return ", ".join(parts) or "–"


def row_cells(r: DimComparison, scale: str) -> list[str]:
    """The cells of HEADER after the dimension."""
    p = f"{p_text(r.p_value)} ({r.test})" if r.p_value is not None else "–"
    return [num(r.mean_a, scale), num(r.mean_b, scale), num(r.diff, scale, True), ci_text(r, scale), p,
            p_text(r.p_holm), f"{r.win}/{r.tie}/{r.loss}", str(r.n), left_out(r), r.verdict]


def significant(r: DimComparison) -> bool:
    """B − A's CI excludes 0 (the verdict names a side)."""
    return r.verdict.endswith("higher") or r.verdict.endswith("correction)")


def group_cells(g: GroupComparison, scale: str) -> list[str]:
    """A language / category row: each dimension's B − A (* when its CI excludes 0), then the average."""
    cells = [g.label, str(g.n_pairs)]
    for r in g.rows[:-1]:
        cells.append(num(r.diff, scale, True) + ("*" if significant(r) else ""))
    avg = g.rows[-1]
    return cells + [num(avg.diff, scale, True), ci_text(avg, scale), f"{avg.win}/{avg.tie}/{avg.loss}", avg.verdict]


def group_header(cmp: Comparison, facet: str) -> list[str]:
    return [facet, "pairs", *(r.dimension for r in cmp.rows[:-1]), *GROUP_HEADER_TAIL]


def title(cmp: Comparison) -> str:
    return f"{cmp.label_a} (A) vs {cmp.label_b} (B) — {cmp.scope}"


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def pairs_line(cmp: Comparison) -> str:
    """How many pairs the table uses and which dialogues it leaves out, and why."""
    out = [f"{cmp.n_pairs} paired dialogues"]
    if cmp.n_failed:
        out.append(f"{_n(cmp.n_failed, 'pair')} left out because a dialogue failed")
    if cmp.n_only_a:
        out.append(f"{_n(cmp.n_only_a, 'card')} only in A")
    if cmp.n_only_b:
        out.append(f"{_n(cmp.n_only_b, 'card')} only in B")
    tasks = f"tasks {', '.join(cmp.tasks)}" if cmp.scope == POOLED else ""
    return "; ".join([*([tasks] if tasks else []), ", ".join(out)])


def method_line(scale: str) -> str:
    rng = "0–4" if str(scale) == "4" else "0–100"
    return (f"{ORIENTATION}; scale {rng}; 95% paired bootstrap CI; "
            "p (Holm): adjusted over the dimensions; a row without a pair's score leaves that pair out")


def render_comparison(cmp: Comparison, console: Console, scale: str = "4", *, breakdowns: bool = True) -> None:
    """Rich tables: one row per dimension (and the average); the language / category rows; the
    pairs that differ most."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title(cmp), style="bold"), caption=Text(f"{pairs_line(cmp)}\n{method_line(scale)}"),
                  title_justify="left", caption_justify="left")
    for col in HEADER:
        table.add_column(col, justify="left" if col in ("dimension", "verdict", "left out") else "right",
                         no_wrap=col not in ("verdict", "left out"))
    for r in cmp.rows:
        style = "" if r.verdict == NO_DIFFERENCE else ("green" if r.verdict.endswith("higher") else "yellow")
        *cells, verdict_text = row_cells(r, scale)
        table.add_row(Text(r.dimension, style="bold" if r.dimension == "average" else ""),
                      *(Text(c) for c in cells), Text(verdict_text, style=style))
    console.print(table)
    if breakdowns:
        for facet, groups in cmp.breakdowns.items():
            t = Table(title=Text(f"{title(cmp)}, {FACET_TITLES.get(facet, facet)}", style="bold"),
                      caption=Text("B − A per dimension (* its CI excludes 0), the average with its CI"),
                      title_justify="left", caption_justify="left")
            for i, col in enumerate(group_header(cmp, facet)):
                t.add_column(col, justify="left" if i == 0 or col == "verdict" else "right", no_wrap=col != "verdict")
            for g in groups:
                t.add_row(*group_cells(g, scale))
            console.print(t)
    if cmp.top_pairs:
        console.print(Text("largest differences (average, B − A):", style="bold"))
        for p in cmp.top_pairs:
            console.print(f"  {p.task} card {p.card_id}: A {num(p.avg_a, scale)}, B {num(p.avg_b, scale)} "
                          f"({num(p.diff, scale, True)})", highlight=False)


def comparison_markdown(comparisons: list[Comparison], scale: str = "4") -> str:
    """The comparison as markdown: a section per table."""
    c0 = comparisons[0]
    lines = [f"# esc-bench comparison: {md_text(c0.label_a)} (A) vs {md_text(c0.label_b)} (B)", "",
             md_text(method_line(scale)) + ".", ""]
    for cmp in comparisons:
        lines += [f"## {md_text(cmp.scope)}", "", md_text(pairs_line(cmp)) + ".", ""]
        lines += [markdown_table(HEADER, [[r.dimension, *row_cells(r, scale)] for r in cmp.rows],
                                 ["l", *["r"] * 8, "l", "l"]), ""]
        for facet, groups in cmp.breakdowns.items():
            lines += [f"### {md_text(FACET_TITLES.get(facet, facet))}", "",
                      "B − A per dimension (* its CI excludes 0), the average with its CI.", ""]
            header = group_header(cmp, facet)
            lines += [markdown_table(header, [group_cells(g, scale) for g in groups],
                                     ["l", *["r"] * (len(header) - 2), "l"]), ""]
        if cmp.top_pairs:
            lines += ["### Largest differences", ""]
            lines += [markdown_table(["task", "card", "A average", "B average", "B − A"],
                                     [[p.task, p.card_id, num(p.avg_a, scale), num(p.avg_b, scale),
                                       num(p.diff, scale, True)] for p in cmp.top_pairs]), ""]
    return "\n".join(lines).rstrip() + "\n"
