"""The comparison as ONE self-contained HTML page (no network at view time, every text escaped).

Per table (a task, or all tasks pooled): B − A per dimension with its 95% CI (a forest plot and a
table: p, Holm-adjusted p, win/tie/loss from B's side, pairs used and why others were left out,
the verdict); the same per language and per category; the cards whose dialogues differ most,
the two dialogues side by side under the role card.
"""

from __future__ import annotations

from esc_bench.analysis.compare import (
    HOLM_FAILED,
    NO_DIFFERENCE,
    Comparison,
    DimComparison,
    PairDiff,
)
from esc_bench.analysis.compare_render import (
    HEADER,
    group_cells,
    group_header,
    method_line,
    num,
    pairs_line,
    row_cells,
    significant,
    title,
)
from esc_bench.analysis.html_parts import card_html, e, page, scores_html, transcript_html
from esc_bench.analysis.tables import FACET_TITLES
from esc_bench.records import ESC_EVAL_SPEC


def _verdict_class(r: DimComparison) -> str:
    """Green (B higher) or red (A higher) only for a difference that survives the Holm adjustment;
    amber for one whose CI excludes 0 but which does not."""
    if r.verdict == NO_DIFFERENCE or not significant(r) or r.diff is None:
        return "l wrap"
    if r.verdict.endswith(HOLM_FAILED):
        return "l wrap weak"
    return "l wrap " + ("up" if r.diff > 0 else "down")


def _table(cmp: Comparison, scale: str) -> str:
    head = "".join(f'<th class="{"l" if c in ("dimension", "verdict", "left out") else ""}">{e(c)}</th>'
                   for c in HEADER)
    body = []
    for r in cmp.rows:
        *cells, verdict = row_cells(r, scale)
        tds = "".join(f'<td class="l wrap">{e(c)}</td>' if i == len(cells) - 1 else f"<td>{e(c)}</td>"
                      for i, c in enumerate(cells))
        name = f"<b>{e(r.dimension)}</b>" if r.dimension == "average" else e(r.dimension)
        body.append(f'<tr><td class="l">{name}</td>{tds}<td class="{_verdict_class(r)}">{e(verdict)}</td></tr>')
    table = f'<table class="compare"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    key = ('<p class="meta">verdict: green, B higher; red, A higher (the CI excludes 0 and the difference '
           "survives the Holm adjustment); amber, the CI excludes 0 but the Holm-adjusted p does not pass</p>")
    return f'<div class="scroll">{table}</div>{key}'


def _groups(cmp: Comparison, scale: str) -> str:
    out = []
    for facet, groups in cmp.breakdowns.items():
        header = group_header(cmp, facet)
        head = "".join(
            f'<th class="{"l" if i == 0 or c == "verdict" else ""}">{e(c)}</th>' for i, c in enumerate(header)
        )
        body = []
        for g in groups:
            cells = group_cells(g, scale)
            tds = [f'<td class="l">{e(cells[0])}</td>', f"<td>{e(cells[1])}</td>"]
            for r, c in zip(g.rows[:-1], cells[2:]):
                cls = "" if not significant(r) or r.diff is None else (' class="up"' if r.diff > 0 else ' class="down"')
                tds.append(f"<td{cls}>{e(c)}</td>")
            tds += [f"<td>{e(c)}</td>" for c in cells[2 + len(g.rows) - 1 : -1]]
            tds.append(f'<td class="{_verdict_class(g.rows[-1])}">{e(cells[-1])}</td>')
            body.append(f"<tr>{''.join(tds)}</tr>")
        out.append(
            f"<h3>{e(FACET_TITLES.get(facet, facet))}</h3>"
            '<p class="meta">B − A per dimension (* its CI excludes 0; green: B higher, red: A higher), '
            "the average with its CI</p>"
            f'<div class="scroll"><table class="groups"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>'
        )
    return "\n".join(out)


def _pair(p: PairDiff, cmp: Comparison, scale: str) -> str:
    metrics = [r.dimension for r in cmp.rows[:-1]]
    srows = []
    for dim in metrics:
        va, vb = p.scores_a.get(dim), p.scores_b.get(dim)
        d = "–" if va is None or vb is None else f"{vb - va:+d}"
        srows.append(
            f'<tr><td class="l">{e(dim)}</td><td>{e("–" if va is None else va)}</td>'
            f'<td>{e("–" if vb is None else vb)}</td><td>{e(d)}</td></tr>'
        )
    scores = (
        f'<table class="pairscores"><thead><tr><th class="l">dimension</th><th>A</th><th>B</th>'
        f'<th>B − A</th></tr></thead><tbody>{"".join(srows)}</tbody></table>'
    )
    judges = cmp.settings.get(p.task, {})
    sides = "".join(
        f'<details class="dlg" open><summary><b>{side}</b>: {e(label)} · average {e(num(avg, scale))}</summary>'
        f"{transcript_html(d, cmp.specs.get(p.task, ESC_EVAL_SPEC))}"
        f"{scores_html(recs, metrics, judges.get(side.lower(), {}).get('judge'))}</details>"
        for side, label, avg, d, recs in (("A", cmp.label_a, p.avg_a, p.a, p.records_a),
                                           ("B", cmp.label_b, p.avg_b, p.b, p.records_b))
    )
    return (
        f'<section class="cardgroup pair"><h4>{e(p.task)} · card {e(p.card_id)}: average A '
        f"{e(num(p.avg_a, scale))}, B {e(num(p.avg_b, scale))} (B − A {e(num(p.diff, scale, True))})</h4>"
        f"{_cards(p)}{scores}<div class=\"side\">{sides}</div></section>"
    )


def _cards(p: PairDiff) -> str:
    """The role card (both, when the two runs gave the seeker different text)."""
    if p.a.card is not None and p.b.card is not None and p.a.card.base != p.b.card.base:
        return (
            '<p class="note">the two runs gave the seeker different text for this card</p>'
            + card_html(p.a)
            + card_html(p.b)
        )
    return card_html(p.a if p.a.card is not None else p.b)


def comparison_html(
    comparisons: list[Comparison],
    scale: str = "4",
    *,
    runs: str = "",
    generated: str = "",
    seed: int = 0,
    notes: list[str] | None = None,
) -> str:
    """The whole page as a string."""
    from esc_bench.analysis.charts import diff_ci_svg

    c0 = comparisons[0]
    parts = [
        f"<h1>{e(c0.label_a)} (A) vs {e(c0.label_b)} (B)</h1>",
        f'<p class="meta">{e(runs)}{"; " if runs else ""}generated {e(generated)}; bootstrap seed {seed}</p>',
        f'<p class="note">{e(method_line(scale))}.</p>',
        *(f'<p class="note">{e(n)}</p>' for n in notes or []),
    ]
    if len(comparisons) > 1:
        parts.append(
            "<p>" + " · ".join(f'<a href="#t{i}">{e(c.scope)}</a>' for i, c in enumerate(comparisons)) + "</p>"
        )
    for i, cmp in enumerate(comparisons):
        plot = diff_ci_svg(cmp.rows, title(cmp), cmp.label_a, cmp.label_b, scale)
        parts += [
            f'<h2 id="t{i}">{e(cmp.scope)}</h2>',
            f'<p class="meta">{e(pairs_line(cmp))}</p>',
            f'<div class="charts"><figure class="diffs">{plot}</figure></div>',
            _table(cmp, scale),
            _groups(cmp, scale),
        ]
        if cmp.top_pairs:
            parts.append(f"<h3>The {len(cmp.top_pairs)} cards where the two differ most (average, |B − A|)</h3>")
            parts += [_pair(p, cmp, scale) for p in cmp.top_pairs]
        else:
            parts.append('<p class="meta">No paired card differs in its average.</p>')
    return page(f"esc-bench comparison — {c0.label_a} vs {c0.label_b}", "\n".join(parts))
