"""The HTML report's dialogue browser: the dialogues grouped by card, the models side by side.

Each (task, card) is one fold: its summary names the card and each model's average; open, it shows
the role card once, a table of every model's scores on that card (best per row in bold), then the
models' dialogues side by side, in the report's model order, each with its judge's replies. A
filter box (also `#q=TEXT` in the page's address) narrows the list: to the cards whose task, id,
source or category match, or to the dialogues whose model or status does. The first card is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from esc_bench.analysis.breakdown import source_name
from esc_bench.analysis.html_parts import card_html, card_meta, e, scores_html, transcript_html
from esc_bench.analysis.model_order import in_order
from esc_bench.analysis.report import Report
from esc_bench.analysis.runs import dialogue_average
from esc_bench.records import DialogueRecord, ProtocolSpec, ScoreRecord

JS = """
(function(){
  function ready(){
    var box=document.getElementById('filter'), count=document.getElementById('shown');
    var groups=document.querySelectorAll('details.cardgroup');
    function apply(){
      var q=(box.value||'').trim().toLowerCase(), n=0;
      for(var i=0;i<groups.length;i++){
        var g=groups[i], whole=g.getAttribute('data-search').indexOf(q)>=0, any=false;
        var dl=g.querySelectorAll('details.dlg');
        for(var j=0;j<dl.length;j++){
          var hit=whole||dl[j].getAttribute('data-search').indexOf(q)>=0;
          dl[j].style.display=hit?'':'none'; if(hit){any=true;n++;}
        }
        g.style.display=any?'':'none';
      }
      count.textContent=String(n);
    }
    if(box){
      var h=window.location.hash;
      if(h.indexOf('#q=')===0){box.value=decodeURIComponent(h.slice(3));}
      box.addEventListener('input',apply);apply();
    }
    document.body.setAttribute('data-ready','1');
  }
  if(document.readyState==='loading'){document.addEventListener('DOMContentLoaded',ready);}else{ready();}
})();
"""


FAILED = '<span class="failed">failed</span>'
BEST_TD = '<td class="best">'


@dataclass
class _Shown:
    """One dialogue as the browser shows it: the record, its scores, its run's judge and its task's spec."""

    d: DialogueRecord
    recs: dict[str, ScoreRecord]
    judge: str | None
    spec: ProtocolSpec

    @property
    def metrics(self) -> list[str]:
        return self.spec.metric_names

    @property
    def average(self) -> float | None:
        return dialogue_average({k: r.score for k, r in self.recs.items()})

    @property
    def headline(self) -> str:
        """What `average` is called: the average, or a spec's one metric when it has no average."""
        return "average" if self.spec.average or len(self.spec.metrics) != 1 else self.spec.metrics[0].name


@dataclass
class _CardGroup:
    task: str
    card_id: str
    items: list[_Shown] = field(default_factory=list)


def _avg(x: float | None, spec: ProtocolSpec | None = None) -> str:
    """A score for the summaries: two decimals on a 0-4 scale ('2.43'); on a wide scale (SAGE's
    0-100 emotion) one, and a whole number as such ('63')."""
    if x is None:
        return "–"
    if spec is not None and max((m.high for m in spec.metrics), default=4) > 10:
        return f"{x:.1f}".removesuffix(".0")
    return f"{x:.2f}"


def _dialogue(s: _Shown) -> str:
    d = s.d
    status = FAILED if d.status != "ok" else "ok"
    search = f"{d.model} {d.status}".lower()
    return (f'<details class="dlg" open data-search="{e(search)}"><summary><b>{e(d.model)}</b> · {status} · '
            f"{e(s.headline)} {e(_avg(s.average, s.spec))}</summary>\n{transcript_html(d, s.spec)}\n"
            f"{scores_html(s.recs, s.metrics, s.judge)}</details>")


def _score_table(g: _CardGroup) -> str:
    """Every model's scores on this card: a row per metric (and the average), best per row bold."""
    metrics = list(dict.fromkeys(m for s in g.items for m in s.metrics if m in s.recs))
    if not metrics or len(g.items) < 2:
        return ""
    rows = []
    for m in [*metrics, *(["average"] if g.items[0].headline == "average" else [])]:
        vals = [s.average if m == "average" else (r.score if (r := s.recs.get(m)) is not None else None)
                for s in g.items]
        known = [v for v in vals if v is not None]
        top = max(known) if len(known) > 1 and len(set(known)) > 1 else None
        cells = "".join(
            (BEST_TD if v is not None and v == top else "<td>")
            + e(_avg(v, g.items[0].spec) if m == "average" else ("–" if v is None else f"{v:g}")) + "</td>"
            for v in vals)
        name = f"<b>{e(m)}</b>" if m == "average" else e(m)
        rows.append(f'<tr><td class="l">{name}</td>{cells}</tr>')
    head = "".join(f"<th>{e(s.d.model)}</th>" for s in g.items)
    return (f'<div class="scroll"><table class="cardscores"><thead><tr><th class="l">score</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _group(g: _CardGroup, *, is_open: bool = False) -> str:
    first = next((s.d for s in g.items if s.d.card is not None), g.items[0].d)
    search = " ".join([g.task, g.card_id, source_name(first.source), first.category or ""]).lower()
    models = " · ".join(f"{e(s.d.model)} {FAILED if s.d.status != 'ok' else e(_avg(s.average, s.spec))}"
                        for s in g.items)
    opened = " open" if is_open else ""
    return (f'<details class="cardgroup"{opened} data-search="{e(search)}"><summary>{e(g.task)} · card {e(g.card_id)} '
            f'<span class="meta">({e(card_meta(first))})</span> · {models}</summary>\n'
            f"{card_html(first)}\n{_score_table(g)}\n"
            f'<div class="side">{"".join(_dialogue(s) for s in g.items)}</div></details>')


def dialogues_html(report: Report, max_dialogues: int | None = None) -> str:
    """The filter box and one fold per card (at most `max_dialogues` dialogues in all)."""
    recs: dict[tuple[str, str, str], dict[str, ScoreRecord]] = {}
    for sc in report.scores:
        recs.setdefault((sc.task, sc.model, sc.card_id), {})[sc.dimension] = sc
    # Runs sharing a task may have different judges: each dialogue's is its own run's.
    groups: dict[tuple[str, str], _CardGroup] = {}
    total = 0
    for run in report.runs:
        for d in run.dialogues:
            g = groups.setdefault((d.task, d.card_id), _CardGroup(d.task, d.card_id))
            g.items.append(_Shown(d, recs.get(d.key, {}), run.judges.get(d.task), report.board.spec(d.task)))
            total += 1
    shown, budget = [], total if max_dialogues is None else max_dialogues
    for g in groups.values():
        if budget <= 0:
            break
        g.items = in_order(g.items, report.models, lambda s: s.d.model)[:budget]
        budget -= len(g.items)
        shown.append(g)
    n = sum(len(g.items) for g in shown)
    more = f" (first {n} of {total})" if n < total else ""
    return (
        f'<p><input id="filter" type="search" placeholder="filter: model, task, card, source, failed…" '
        f'aria-label="filter dialogues"> <span id="shown">{n}</span> dialogues shown{e(more)}, '
        f"{len(shown)} cards; each card's dialogues side by side</p>\n"
        + "\n".join(_group(g, is_open=i == 0) for i, g in enumerate(shown))
    )
