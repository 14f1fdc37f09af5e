"""Pieces both HTML pages (report and comparison) are made of: escaping, the style sheet, the page
shell, a role card, a transcript, a dialogue's scores with the judge's replies (wrapped, collapsible)."""

from __future__ import annotations

from html import escape

from esc_bench.analysis.breakdown import category_label, source_name
from esc_bench.records import ESC_EVAL_SPEC, DialogueRecord, ProtocolSpec, ScoreRecord

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:1280px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:36px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.meta{color:#5a6270;font-size:.9em}.note{background:#fff7e0;border-left:4px solid #e0b100;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;margin:10px 0 18px;font-size:.88em;background:#fff}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#eef1f6}td.l,th.l{text-align:left}td.best{font-weight:bold;color:#0a7a32}
td.up{color:#0a7a32;font-weight:bold}td.down{color:#b3261e;font-weight:bold}td.weak{color:#8a6100}td.wrap{white-space:normal}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.charts figure{margin:0}
.charts svg{max-width:100%;height:auto}
details.dlg{background:#fff;border:1px solid #d8dde6;border-radius:6px;margin:6px 0;padding:6px 10px;min-width:0}
details.dlg>summary{cursor:pointer}.failed,.cut{color:#b3261e}.cut{font-size:.85em}.turn{margin:4px 0;padding:6px 10px;border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere}
.supporter{background:#e8f1ff}.seeker{background:#f1f1f1}.who{font-weight:bold;font-size:.85em;color:#5a6270}
.rolecard{background:#fffdf3;border:1px solid #eadfb0;border-radius:6px;padding:6px 10px;margin:6px 0;white-space:pre-wrap;overflow-wrap:anywhere}
.rolecard .who{display:block}.rolecard details{margin-top:6px}.rolecard summary{cursor:pointer;color:#5a6270;font-size:.85em}
section.cardgroup{border-top:1px solid #d8dde6;padding:8px 0}
details.cardgroup{background:#fff;border:1px solid #d8dde6;border-radius:6px;margin:6px 0;padding:6px 10px}
details.cardgroup>summary{cursor:pointer}details.cardgroup[open]>summary{margin-bottom:6px}
details.cardgroup details.dlg{background:#fcfcfd}
.side{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:10px;align-items:start}
.replies{margin-top:6px}.reply{padding:2px 0;border-top:1px solid #eef1f6;overflow-wrap:anywhere}
.reply .dim{display:inline-block;min-width:6.5em;color:#5a6270}.reply .score{display:inline-block;min-width:1.2em}
details.reply>summary{cursor:pointer}.reply .line{font-style:italic}
pre.raw{white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0 0;font-size:.85em;max-height:16em;overflow:auto;text-align:left}
.scroll{overflow-x:auto;max-width:100%}td.m{white-space:normal;overflow-wrap:anywhere;min-width:8em;max-width:22em}
table.cardscores th{white-space:normal;overflow-wrap:anywhere;max-width:12em}table.breakdown tr.group td{border-top:2px solid #b9c1cf}
#filter{padding:6px;width:320px;font-size:1em}
"""


def e(x: object) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return escape(str(x), quote=True)


def card_meta(d: DialogueRecord) -> str:
    meta = [f"language {d.language}"]
    if d.source:
        meta.append(f"source {source_name(d.source)}")
    if d.category:
        meta.append(f"category {category_label(d.category)}")
    return ", ".join(meta)


def card_html(d: DialogueRecord) -> str:
    """The role card the seeker played, as the run stored it (or why it is not shown): the text the
    seeker was given, and, folded, the card's annotation (`base_biaozhu`), which the seeker never sees."""
    if d.card is None:
        return (f'<p class="meta">card {e(d.card_id)} ({e(card_meta(d))}); the run did not store the card '
                "text (imported results, or a run recorded before esc-bench stored cards)</p>")
    note = ""
    if d.card.base_biaozhu and d.card.base_biaozhu.strip() != d.card.base.strip():
        note = (f"<details><summary>the card's annotation (base_biaozhu; not given to the seeker)</summary>"
                f"{e(d.card.base_biaozhu)}</details>")
    return (f'<div class="rolecard"><span class="who">role card {e(d.card_id)} ({e(card_meta(d))}): '
            f"what the seeker was given</span>{e(d.card.base)}{note}</div>")


CUT_MARK = '<div class="cut">[cut: the reply was longer than the model\'s max_reply_chars]</div>'


def transcript_html(d: DialogueRecord, spec: ProtocolSpec = ESC_EVAL_SPEC) -> str:
    """The error (if the dialogue failed) and every line; a seeker line shows the state its spec's
    trajectory names (esc_bench.analysis.protocol_section.turn_state_html)."""
    from esc_bench.analysis.protocol_section import turn_state_html

    parts = []
    if d.error is not None:
        parts.append(f'<p class="failed">{e(d.error.type)} ({e(d.error.role or "?")}, round '
                     f"{e(d.error.round if d.error.round is not None else '?')}): {e(d.error.message)}</p>")
    for t in d.transcript:
        parts.append(f'<div class="turn {e(t.speaker)}"><div class="who">{e(t.speaker)}</div>{e(t.text)}'
                     f"{CUT_MARK if t.cut else ''}{turn_state_html(t, spec)}</div>")
    return "\n".join(parts)


def score_line(raw: str) -> str | None:
    """The line of a judge's reply that holds its score: the first line in which the judge's own
    parser finds one (None when no line does)."""
    from esc_bench.protocols.rubric_judge import parse_score

    return next((line.strip() for line in raw.splitlines() if parse_score(line) is not None), None)


def _reply(dim: str, r: ScoreRecord) -> str:
    """One metric: its name and score, the line of the judge's reply that gave it, the whole reply
    folded under it (pre-wrapped)."""
    score = "–" if r.score is None else f"{r.score:g}" if isinstance(r.score, float) else str(r.score)
    head = f'<span class="dim">{e(dim)}</span> <b class="score">{e(score)}</b>'
    if r.expected is not None:
        head += f' <span class="meta">(expected {r.expected:.2f})</span>'
    if r.attempts > 1:
        head += f' <span class="meta">({r.attempts} attempts)</span>'
    if r.raw is None:
        tail = f' <span class="failed">{e(r.error.type)}: {e(r.error.message)}</span>' if r.error is not None else ""
        return f'<div class="reply">{head}{tail}</div>'
    line = score_line(r.raw) if r.score is not None else None
    shown = e(line) if line is not None else '<span class="failed">no score in the reply</span>'
    if line is not None and line == r.raw.strip() and not r.cut:
        return f'<div class="reply">{head} <span class="line">{shown}</span></div>'
    return (f'<details class="reply"><summary>{head} <span class="line">{shown}</span></summary>'
            f'<pre class="raw">{e(r.raw)}</pre>{CUT_MARK if r.cut else ""}</details>')


def scores_html(recs: dict[str, ScoreRecord], metrics: list[str], judge: str | None) -> str:
    """A dialogue's scores, one line each: the metric, the score and the line of the judge's reply
    that holds it; the whole reply folded under it."""
    if not recs:
        return ""
    rows = [_reply(dim, recs[dim]) for dim in metrics if dim in recs]
    return f'<div class="replies"><div class="who">judge replies ({e(judge)})</div>{"".join(rows)}</div>'


def page(title: str, body: str, script: str = "") -> str:
    """A whole self-contained page."""
    js = f"<script>{script}</script>\n" if script else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
{body}
</main>
{js}</body>
</html>
"""
