"""The report as ONE self-contained HTML file: no network at view time, every text escaped.

Sections: leaderboard tables and charts per task (radar of the 7 dimensions, bars with CI
whiskers; matplotlib, inline SVG), breakdowns, and a browsable, filterable list of dialogues
with transcript, per-dimension scores and the judge's replies.
"""

from __future__ import annotations

from html import escape

from esc_bench.analysis.breakdown import category_label, source_name
from esc_bench.analysis.report import Report
from esc_bench.analysis.runs import dialogue_average
from esc_bench.analysis.tables import FACET_TITLES, best_models, by_task, columns, format_score
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.records import DimensionScore, ScoreRecord

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:1200px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:36px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.meta{color:#5a6270;font-size:.9em}.note{background:#fff7e0;border-left:4px solid #e0b100;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;margin:10px 0 18px;font-size:.88em;background:#fff}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#eef1f6}td.l,th.l{text-align:left}td.best{font-weight:bold;color:#0a7a32}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.charts figure{margin:0}
.charts svg{max-width:100%;height:auto}
details.dlg{background:#fff;border:1px solid #d8dde6;border-radius:6px;margin:6px 0;padding:6px 10px}
details.dlg summary{cursor:pointer}.failed{color:#b3261e}.turn{margin:4px 0;padding:6px 10px;border-radius:6px;white-space:pre-wrap}
.supporter{background:#e8f1ff}.seeker{background:#f1f1f1}.who{font-weight:bold;font-size:.85em;color:#5a6270}
table.scores td:last-child{white-space:normal;min-width:24em;max-width:60em}
pre.raw{white-space:pre-wrap;margin:0;font-size:.85em;max-height:12em;overflow:auto;text-align:left}
#filter{padding:6px;width:320px;font-size:1em}
"""

JS = """
(function(){
  function ready(){
    var box=document.getElementById('filter'), count=document.getElementById('shown');
    var items=document.querySelectorAll('details.dlg');
    function apply(){
      var q=(box.value||'').toLowerCase(), n=0;
      for(var i=0;i<items.length;i++){
        var hit=items[i].getAttribute('data-search').indexOf(q)>=0;
        items[i].style.display=hit?'':'none'; if(hit){n++;}
      }
      count.textContent=String(n);
    }
    if(box){box.addEventListener('input',apply);apply();}
    document.body.setAttribute('data-ready','1');
  }
  if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',ready);}else{ready();}
})();
"""


def _e(x: object) -> str:
    return escape(str(x), quote=True)


def _cell(ds: DimensionScore | None, scale: str, best: bool) -> str:
    cls = ' class="best"' if best else ""
    n = "" if ds is None else f' title="n={ds.n}, missing={ds.n_missing}"'
    return f"<td{cls}{n}>{_e(format_score(ds, scale))}</td>"


def _leaderboard_html(report: Report, scale: str) -> str:
    from esc_bench.analysis.charts import bars_svg, radar_svg

    out = []
    for task, entries in by_task(report.board).items():
        e0 = entries[0]
        out.append(f"<h3>{_e(task)}</h3>")
        out.append(f'<p class="meta">protocol {_e(e0.protocol)}, simulator {_e(e0.simulator)}, '
                   f"judge {_e(e0.judge)}; mean ±95% CI half-width</p>")
        head = "".join(f"<th>{_e(c)}</th>" for c in columns())
        rows = []
        best = {c: best_models(entries, c) for c in columns()}
        for e in entries:
            cells = "".join(
                _cell(e.average if c == "average" else e.scores.get(c), scale, e.model in best[c]) for c in columns()
            )
            failed_cls = ' class="failed"' if e.n_failed else ""
            rows.append(f'<tr><td class="l">{_e(e.model)}</td>{cells}<td>{e.n_dialogues}</td>'
                        f"<td{failed_cls}>{e.n_failed}</td></tr>")
        out.append(f'<table class="board"><thead><tr><th class="l">model</th>{head}<th>n</th><th>failed</th>'
                   f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')
        scored = [e for e in entries if e.average.mean is not None]
        if scored:
            out.append('<div class="charts">')
            out.append(f'<figure class="radar">{radar_svg(scored, task, scale)}</figure>')
            out.append(f'<figure class="bars">{bars_svg(scored, task, scale)}</figure>')
            out.append("</div>")
    return "\n".join(out) or "<p>No results.</p>"


def _breakdowns_html(report: Report, scale: str) -> str:
    out = []
    for facet, rows in report.breakdowns.items():
        out.append(f"<h3>{_e(FACET_TITLES.get(facet, facet))}</h3>")
        head = "".join(f"<th>{_e(c)}</th>" for c in columns())
        body = []
        for r in rows:
            cells = "".join(_cell(r.average if c == "average" else r.scores.get(c), scale, False) for c in columns())
            body.append(f'<tr><td class="l">{_e(r.label)}</td><td class="l">{_e(r.model)}</td>{cells}'
                        f"<td>{r.n_dialogues}</td><td>{r.n_failed}</td></tr>")
        out.append(f'<table class="breakdown"><thead><tr><th class="l">{_e(facet)}</th><th class="l">model</th>'
                   f'{head}<th>n</th><th>failed</th></tr></thead><tbody>{"".join(body)}</tbody></table>')
    return "\n".join(out) or "<p>No breakdowns (the dialogues carry no card metadata).</p>"


def _dialogue_html(d, recs: dict[str, ScoreRecord], judge: str | None) -> str:
    from esc_bench.analysis.sage_report import turn_state_html

    dims = {k: r.score for k, r in recs.items()}
    avg = dialogue_average(dims)
    avg_s = "–" if avg is None else f"{avg:.2f}"
    status = '<span class="failed">failed</span>' if d.status != "ok" else "ok"
    meta = [f"language {d.language}"]
    if d.source:
        meta.append(f"source {source_name(d.source)}")
    if d.category:
        meta.append(f"category {category_label(d.category)}")
    search = " ".join([d.task, d.model, d.card_id, d.status, source_name(d.source), d.category or ""]).lower()
    parts = [
        f'<details class="dlg" data-search="{_e(search)}"><summary>{_e(d.task)} · <b>{_e(d.model)}</b> · '
        f"card {_e(d.card_id)} · {status} · average {_e(avg_s)}</summary>",
        f'<p class="meta">{_e(", ".join(meta))}</p>',
    ]
    if d.error is not None:
        parts.append(f'<p class="failed">{_e(d.error.type)} ({_e(d.error.role or "?")}, round '
                     f"{_e(d.error.round if d.error.round is not None else '?')}): {_e(d.error.message)}</p>")
    for t in d.transcript:
        parts.append(f'<div class="turn {t.speaker}"><div class="who">{_e(t.speaker)}</div>{_e(t.text)}{turn_state_html(t)}</div>')
    if recs:
        rows = []
        for dim in DIMENSION_NAMES:
            r = recs.get(dim)
            if r is None:
                continue
            score = "–" if r.score is None else str(r.score)
            raw = "" if r.raw is None else f'<pre class="raw">{_e(r.raw)}</pre>'
            rows.append(f'<tr><td class="l">{_e(dim)}</td><td>{_e(score)}</td><td>{r.attempts}</td>'
                        f'<td class="l">{raw}</td></tr>')
        parts.append(f'<table class="scores"><thead><tr><th class="l">dimension</th><th>score</th><th>attempts</th>'
                     f'<th class="l">judge reply ({_e(judge)})</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    parts.append("</details>")
    return "\n".join(parts)


def _dialogues_html(report: Report, max_dialogues: int | None) -> str:
    recs: dict[tuple[str, str, str], dict[str, ScoreRecord]] = {}
    for s in report.scores:
        recs.setdefault((s.task, s.model, s.card_id), {})[s.dimension] = s
    # Runs sharing a task may have different judges: each dialogue's is its own run's.
    judges = {(i, t): j for i, r in enumerate(report.runs) for t, j in r.judges.items()}
    dialogues = [(i, d) for i, r in enumerate(report.runs) for d in r.dialogues]
    shown = dialogues if max_dialogues is None else dialogues[:max_dialogues]
    items = [_dialogue_html(d, recs.get(d.key, {}), judges.get((i, d.task))) for i, d in shown]
    more = f" (first {len(shown)} of {len(dialogues)})" if len(shown) < len(dialogues) else ""
    return (
        f'<p><input id="filter" type="search" placeholder="filter: model, task, card, source, failed…" '
        f'aria-label="filter dialogues"> <span id="shown">{len(shown)}</span> shown{_e(more)}</p>\n'
        + "\n".join(items)
    )


def report_html(report: Report, scale: str = "4", *, max_dialogues: int | None = None) -> str:
    """The whole page as a string."""
    from esc_bench.analysis.sage_report import sage_html

    runs = ", ".join(f"{r.run_id} ({r.path})" for r in report.runs)
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in report.notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>esc-bench report — {_e(report.board.run_id)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>esc-bench report</h1>
<p class="meta">runs: {_e(runs)}; generated {_e(report.generated)}; bootstrap 95% CIs over dialogues
(seed {report.seed}); scale 0–{"4" if scale == "4" else "100 (×25)"}</p>
{notes}
<h2 id="leaderboard">Leaderboard</h2>
{_leaderboard_html(report, scale)}
{sage_html(report)}
<h2 id="breakdowns">Breakdowns</h2>
{_breakdowns_html(report, scale)}
<h2 id="dialogues">Dialogues</h2>
{_dialogues_html(report, max_dialogues)}
</main>
<script>{JS}</script>
</body>
</html>
"""
