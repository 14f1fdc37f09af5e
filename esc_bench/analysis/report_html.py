"""The report as ONE self-contained HTML file: no network at view time, every text escaped.

Sections: leaderboard tables and charts per task (radar of the 7 dimensions, bars with CI
whiskers; matplotlib, inline SVG), breakdowns, and a browsable, filterable list of dialogues
with transcript, per-dimension scores and the judge's replies.
"""

from __future__ import annotations

from esc_bench.analysis.dialogue_browser import JS, dialogues_html
from esc_bench.analysis.html_parts import e, page
from esc_bench.analysis.report import Report
from esc_bench.analysis.tables import (
    FACET_TITLES,
    breakdown_best,
    by_task,
    column_score,
    columns,
    format_score,
    scale_text,
    task_best,
)
from esc_bench.records import DimensionScore, MetricSpec


def _cell(ds: DimensionScore | None, scale: str, best: bool, metric: MetricSpec | None = None) -> str:
    cls = ' class="best"' if best else ""
    n = "" if ds is None else f' title="n={ds.n}, missing={ds.n_missing}"'
    return f"<td{cls}{n}>{e(format_score(ds, scale, metric=metric))}</td>"


def _leaderboard_html(report: Report, scale: str) -> str:
    from esc_bench.analysis.charts import bars_svg, radar_svg

    out = []
    for task, entries in by_task(report.board).items():
        spec = report.board.spec(task)
        e0 = entries[0]
        out.append(f"<h3>{e(task)}</h3>")
        out.append(f'<p class="meta">protocol {e(e0.protocol)}, simulator {e(e0.simulator)}, '
                   f"judge {e(e0.judge)}; mean ±95% CI half-width</p>")
        head = "".join(f"<th>{e(c)}</th>" for c in [*columns(spec), *spec.outcomes])
        rows = []
        best = task_best(entries, spec)
        for en in entries:
            cells = "".join(
                _cell(column_score(en, c), scale, en.model in best[c], spec.metric(c))
                for c in columns(spec)
            ) + "".join(f"<td>{en.outcomes.get(o, 0)}</td>" for o in spec.outcomes)
            failed_cls = ' class="failed"' if en.n_failed else ""
            rows.append(f'<tr><td class="l m">{e(en.model)}</td>{cells}<td>{en.n_dialogues}</td>'
                        f"<td{failed_cls}>{en.n_failed}</td></tr>")
        out.append(f'<div class="scroll"><table class="board"><thead><tr><th class="l">model</th>{head}<th>n</th>'
                   f'<th>failed</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
        scored = [en for en in entries if any(ds.mean is not None for ds in [en.average, *en.scores.values()])]
        if scored:
            out.append('<div class="charts">')
            if len(spec.metrics) >= 3:
                out.append(f'<figure class="radar">{radar_svg(scored, task, scale, report.models, spec)}</figure>')
            out.append(f'<figure class="bars">{bars_svg(scored, task, scale, report.models, spec)}</figure>')
            out.append("</div>")
    return "\n".join(out) or "<p>No results.</p>"


def _breakdowns_html(report: Report, scale: str) -> str:
    """One table per facet: each group's models in the report's order, the best of the group per
    column in bold (as the console and markdown tables have it)."""
    out = []
    spec = report.breakdown_spec
    for facet, rows in report.breakdowns.items():
        out.append(f"<h3>{e(FACET_TITLES.get(facet, facet))}</h3>")
        out.append('<p class="meta">mean ±95% CI half-width; bold: the best model of the group in that column</p>')
        head = "".join(f"<th>{e(c)}</th>" for c in columns(spec))
        best = breakdown_best(rows, spec)
        sizes: dict[str, int] = {}
        for r in rows:
            sizes[r.group] = sizes.get(r.group, 0) + 1
        body, prev = [], None
        for r in rows:
            cells = "".join(_cell(column_score(r, c), scale,
                                  r.model in best.get((r.group, c), set()), spec.metric(c)) for c in columns(spec))
            label = "" if r.group == prev else f'<td class="l" rowspan="{sizes[r.group]}">{e(r.label)}</td>'
            start = ' class="group"' if r.group != prev else ""
            body.append(f'<tr{start}>{label}<td class="l m">{e(r.model)}</td>{cells}'
                        f"<td>{r.n_dialogues}</td><td>{r.n_failed}</td></tr>")
            prev = r.group
        out.append(f'<div class="scroll"><table class="breakdown"><thead><tr><th class="l">{e(facet)}</th>'
                   f'<th class="l">model</th>{head}<th>n</th><th>failed</th></tr></thead>'
                   f'<tbody>{"".join(body)}</tbody></table></div>')
    return "\n".join(out) or "<p>No breakdowns (the dialogues carry no card metadata).</p>"


def report_html(report: Report, scale: str = "4", *, max_dialogues: int | None = None) -> str:
    """The whole page as a string."""
    from esc_bench.analysis.protocol_section import sections_html

    runs = ", ".join(f"{r.run_id} ({r.path})" for r in report.runs)
    notes = "".join(f'<p class="note">{e(n)}</p>' for n in report.notes)
    specs = [report.board.spec(t) for t in by_task(report.board)] or [report.breakdown_spec]
    scales = "; ".join(dict.fromkeys(scale_text(m, scale) for spec in specs for m in spec.metrics))
    body = f"""<h1>esc-bench report</h1>
<p class="meta">runs: {e(runs)}; generated {e(report.generated)}; bootstrap 95% CIs over dialogues
(seed {report.seed}); scale {e(scales)}</p>
{notes}
<h2 id="leaderboard">Leaderboard</h2>
{_leaderboard_html(report, scale)}
{sections_html(report)}
<h2 id="breakdowns">Breakdowns</h2>
{_breakdowns_html(report, scale)}
<h2 id="dialogues">Dialogues</h2>
{dialogues_html(report, max_dialogues)}"""
    return page(f"esc-bench report — {report.board.run_id}", body, JS)
