"""`esc-bench report`: console, markdown, JSON and the self-contained HTML page (in a real browser)."""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from esc_bench.analysis.breakdown import breakdown, category_label, source_name
from esc_bench.commands import report as report_cmd
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from tests.support.synthetic_runs import make_run

HOSTILE = '<script>alert("x")</script> & "quotes"'


def run_report(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    report_cmd.configure(parser)
    return report_cmd.run(parser.parse_args(list(argv)))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    raw = lambda t, m, i, d: f"Score: {(i + 1) % 5}\n{HOSTILE}" if d == "empathy" else None  # noqa: E731
    make_run(
        tmp_path / "run", models=["alpha", "beta<b>"], n_cards=10,
        tasks={"t_en": {"language": "en"}, "t_zh": {"language": "zh"}},
        failed={("t_en", "alpha", 4)}, raw=raw,
        score=lambda t, m, i, d: None if (i, d) == (2, "overall") else (i + len(m) + DIMENSION_NAMES.index(d)) % 5,
    )
    return tmp_path / "run"


def test_source_and_category_names() -> None:
    assert [source_name(s) for s in ["ESconv", "Psych", "smile", "ExTES", "PsyQA", "MHP", "EPITOME", None]] == [
        "ESConv", "Psych8k", "SMILE", "ExTES", "PsyQA", "MHP", "EPITOME", "unknown"]
    assert category_label("社会与其他") == "society and other (社会与其他)" and category_label("hobbies") == "hobbies"


def test_breakdown_values_hand_computed(run_dir: Path) -> None:
    from esc_bench.analysis.runs import load_run

    run = load_run(run_dir)
    rows = breakdown(run.dialogues, run.scores, "source")
    esconv = next(r for r in rows if r.label == "ESConv" and r.model == "alpha")
    # English cards 0 and 5 are ESconv (i % 5 == 0); card 0 and 5 fluency = (i + 5) % 5
    assert esconv.n_dialogues == 2 and esconv.scores["fluency"].mean == pytest.approx((0 + 0) / 2)
    epitome = next(r for r in rows if r.label == "EPITOME" and r.model == "alpha")
    assert (epitome.n_dialogues, epitome.n_failed) == (2, 1)  # card 4 (EPITOME) failed
    assert epitome.scores["fluency"].n == 1 and epitome.scores["fluency"].mean == (9 + 5) % 5
    assert [r.label for r in rows][:2] == ["ESConv", "ESConv"]  # paper order, models within
    cats = breakdown(run.dialogues, run.scores, "category")
    assert {r.label for r in cats} == {"family life (家庭生活)", "work and study (工作学习)", "society and other (社会与其他)"}
    langs = breakdown(run.dialogues, run.scores, "language")
    assert [(r.label, r.model, r.n_dialogues) for r in langs] == [
        ("English", "alpha", 10), ("English", "beta<b>", 10), ("Chinese", "alpha", 10), ("Chinese", "beta<b>", 10)]
    assert all(r.average.ci95 is not None for r in langs)


def test_console_report_has_tables_and_breakdowns(run_dir: Path, capsys) -> None:
    assert run_report(str(run_dir)) == 0
    out = capsys.readouterr().out
    for text in ("t_en", "t_zh", "by language", "by source dataset", "by category", "ESConv", "SMILE", "Psych8k"):
        assert text in out


def test_markdown_and_json_reports(run_dir: Path, tmp_path: Path) -> None:
    md = tmp_path / "r.md"
    assert run_report(str(run_dir), "-o", str(md), "--scale", "100") == 0
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# esc-bench report") and "### t_en" in text and "### by source dataset" in text
    assert "0–100" in text and "beta&lt;b&gt;" in text
    js = tmp_path / "r.json"
    assert run_report(str(run_dir), "--format", "json", "-o", str(js)) == 0
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["leaderboard"]["judge"] == "esc-rank" and len(data["leaderboard"]["entries"]) == 4
    assert set(data["breakdowns"]) == {"language", "source", "category"}
    row = data["breakdowns"]["source"][0]
    assert row["label"] == "ESConv" and set(row["scores"]) == set(DIMENSION_NAMES) and "ci95" in row["average"]
    assert data["runs"][0]["judges"] == {"t_en": "esc-rank", "t_zh": "esc-rank"}


def test_report_format_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot tell the format"):
        run_report(str(run_dir), "-o", str(tmp_path / "r.txt"))
    with pytest.raises(UserError, match="-o needs --format"):
        run_report(str(run_dir), "--format", "console", "-o", str(tmp_path / "r.txt"))


def _html(run_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    assert run_report(str(run_dir), "-o", str(out)) == 0
    return out


def test_html_is_one_self_contained_escaped_page(run_dir: Path, tmp_path: Path) -> None:
    page = _html(run_dir, tmp_path).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    # nothing fetched at view time: no external scripts, styles, images or fonts
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page, re.I)
    assert "<link" not in page and "@import" not in page and "url(http" not in page
    assert page.count("<svg") == 4  # radar + bars per task
    assert len(set(re.findall(r'\bid="([^"]+)"', page))) == len(re.findall(r'\bid="([^"]+)"', page))
    # every text escaped: the hostile judge reply and model name appear only escaped
    assert HOSTILE not in page and "beta<b>" not in page and "beta&lt;b&gt;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
    assert page.count("<script>") == 1  # ours
    assert page.count('<details class="dlg"') == 40
    assert "supporter timed out" in page and "family life (家庭生活)" in page


def test_html_max_dialogues(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "small.html"
    assert run_report(str(run_dir), "-o", str(out), "--max-dialogues", "3") == 0
    page = out.read_text(encoding="utf-8")
    assert page.count('<details class="dlg"') == 3 and "first 3 of 40" in page
    assert page.count('<details class="cardgroup"') == 2  # card t_en-0 with both models, then t_en-1


def _groups(page: str) -> list[str]:
    return [g.split("</main>")[0] for g in page.split('<details class="cardgroup"')[1:]]


def test_html_dialogues_grouped_by_card_models_side_by_side(run_dir: Path, tmp_path: Path) -> None:
    from esc_bench.analysis.report import build_report

    page = _html(run_dir, tmp_path).read_text(encoding="utf-8")
    order = build_report([run_dir]).models
    assert sorted(order) == ["alpha", "beta<b>"]
    groups = _groups(page)
    assert len(groups) == 20  # 2 tasks x 10 cards, each once
    seen = set()
    for g in groups:
        summary = re.search(r"<summary>(.*?)</summary>", g, re.S).group(1)
        task, card = re.match(r"(t_\w+) · card (t_\w+-\d+) ", summary).groups()
        seen.add(card)
        assert card.startswith(task)
        # the models side by side, in the report's model order, each dialogue of this card
        side = g.split('<div class="side">', 1)[1]
        models = re.findall(r'<details class="dlg" open[^>]*><summary><b>([^<]+)</b>', side)
        assert [html.unescape(m) for m in models] == order
        assert side.count(f"I need help ({card})") == (1 if card == "t_en-4" else 2)  # a failed one has none
        # the summary gives each model's average (or says it failed); a score table compares them
        head = re.findall(r"<th>([^<]+)</th>", g.split('class="cardscores"', 1)[1].split("</thead>")[0])
        assert [html.unescape(h) for h in head] == order
        if card == "t_en-4":  # alpha's dialogue on it failed
            assert 'alpha <span class="failed">failed</span>' in summary
        else:
            pattern = " · ".join(re.escape(html.escape(m)) + r" \d\.\d\d" for m in order)
            assert re.search(pattern, summary), summary
    assert len(seen) == 20


def test_html_groups_the_same_card_across_runs(tmp_path: Path) -> None:
    make_run(tmp_path / "r1", models=["m1"], n_cards=3, score=lambda t, m, i, d: 1)
    make_run(tmp_path / "r2", models=["m2"], n_cards=3, score=lambda t, m, i, d: 3)
    out = tmp_path / "both.html"
    assert run_report(str(tmp_path / "r1"), str(tmp_path / "r2"), "-o", str(out)) == 0
    groups = _groups(out.read_text(encoding="utf-8"))
    assert len(groups) == 3
    for g in groups:
        assert re.findall(r'<details class="dlg" open[^>]*><summary><b>(m\d)</b>', g) == ["m2", "m1"]  # m2 leads
        # the per-card score table marks the better model of each row
        assert g.count('<td class="best">3</td>') == 7 and '<td class="best">3.00</td>' in g


CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1280,2000", "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_loads_in_a_headless_browser_without_errors(run_dir: Path, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib import image

    url = _html(run_dir, tmp_path).resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert re.search(r'<body[^>]*data-ready="1"', dom.stdout), "the page's script did not run"
    assert 'id="shown">40<' in dom.stdout  # the filter script counted the dialogues
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = image.imread(str(shot))
    assert pixels.shape[:2] == (2000, 1280)
    assert float(np.asarray(pixels)[..., :3].std()) > 0.05  # not blank: text, tables, charts


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_filter_narrows_cards_and_models_in_a_headless_browser(run_dir: Path, tmp_path: Path) -> None:
    url = _html(run_dir, tmp_path).resolve().as_uri()
    for query, shown, cards in (("beta", 20, 20), ("t_zh-3", 2, 1), ("failed", 1, 1), ("no such thing", 0, 0)):
        dom = _chromium(tmp_path, "--dump-dom", f"{url}#q={query.replace(' ', '%20')}")
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert f'id="shown">{shown}<' in dom.stdout, query
        tags = re.findall(r'<details class="(cardgroup|dlg)"[^>]*?data-search="([^"]*)"( style="display: none;")?',
                          dom.stdout)
        assert sum(1 for kind, _, hidden in tags if kind == "cardgroup" and not hidden) == cards, query
        visible = [search for kind, search, hidden in tags if kind == "dlg" and not hidden]
        assert len(visible) == shown, query
        if query == "beta":  # a model's name keeps only its own dialogue in each card
            assert all(v.startswith("beta&lt;b&gt;") for v in visible)
        if query == "t_zh-3":  # a card's id keeps the whole card
            assert sorted(v.split()[0] for v in visible) == ["alpha", "beta&lt;b&gt;"]


def test_markdown_report_escapes_notes(run_dir: Path) -> None:
    from esc_bench.analysis.report import build_report
    from esc_bench.analysis.report_md import report_markdown

    report = build_report([run_dir])
    report.notes.append("settings differ — judge a|b\n## injected <script>")
    md = report_markdown(report)
    assert "> settings differ — judge a\\|b ## injected &lt;script&gt;" in md.splitlines()
    assert "## injected" not in [line[:11] for line in md.splitlines()] and "<script>" not in md


def test_html_labels_each_dialogue_with_its_own_runs_judge(tmp_path: Path) -> None:
    make_run(tmp_path / "r1", models=["m1"], n_cards=3, judge="judge-one")
    make_run(tmp_path / "r2", models=["m2"], n_cards=3, judge="judge-two")
    out = tmp_path / "both.html"
    assert run_report(str(tmp_path / "r1"), str(tmp_path / "r2"), "-o", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    blocks = re.findall(r'<details class="dlg".*?</details>', page, re.S)
    assert len(blocks) == 6
    for block in blocks:
        model = re.search(r"<b>(m\d)</b>", block).group(1)
        want, other = ("judge-one", "judge-two") if model == "m1" else ("judge-two", "judge-one")
        assert f"judge replies ({want})" in block and other not in block, model


def test_category_label_and_source_name_use_the_card_aliases() -> None:
    assert category_label("work") == "work and study (工作学习)" and category_label(" Family ") == "family life (家庭生活)"
    assert source_name("psych8k") == source_name("Psych") == "Psych8k"


def test_html_judge_replies_show_the_score_line_and_the_whole_reply_wrapped(tmp_path: Path) -> None:
    replies = {
        "fluency": "The supporter listened well.\nIt asked about sleep.\n\nScore: 3\nThanks <b>!</b>",
        "empathy": "2",
        "information": "I cannot tell; the rubric <script>x</script> is unclear.",
    }

    def score(t: str, m: str, i: int, d: str) -> int | None:
        return {"fluency": 3, "empathy": 2, "information": None}.get(d, 1)

    make_run(tmp_path / "run", models=["m"], n_cards=1, score=score,
             raw=lambda t, m, i, d: replies.get(d, f"score {score(t, m, i, d)}"))
    out = tmp_path / "r.html"
    assert run_report(str(tmp_path / "run"), "-o", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    assert "pre.raw{white-space:pre-wrap" in page
    replies_html = page.split('<div class="replies">', 1)[1]
    rows = re.findall(r'<(?:div|details) class="reply">(.*?)</(?:div|details)>', replies_html, re.S)
    by_dim = {re.search(r'class="dim">(\w+)<', r).group(1): r for r in rows}
    assert list(by_dim) == list(DIMENSION_NAMES)
    # a long reply: the line holding the score in the summary (not the first line), the whole reply
    # below it, escaped, its line breaks kept
    flu = by_dim["fluency"]
    summary = re.search(r"<summary>(.*?)</summary>", flu, re.S).group(1)
    assert '<b class="score">3</b>' in summary and '<span class="line">Score: 3</span>' in summary
    assert "listened well" not in summary
    assert ('<pre class="raw">The supporter listened well.\nIt asked about sleep.\n\nScore: 3\n'
            "Thanks &lt;b&gt;!&lt;/b&gt;</pre>") in flu
    # a reply that is just its score line: shown as is, nothing to unfold
    assert "<summary>" not in by_dim["empathy"] and '<span class="line">2</span>' in by_dim["empathy"]
    # no score found: said so, the reply (escaped) one click away
    info = by_dim["information"]
    assert '<b class="score">–</b>' in info and "no score in the reply" in info
    assert "&lt;script&gt;x&lt;/script&gt;" in info and "<script>x" not in page


def test_chart_legends_stay_legible_with_many_long_model_names() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from esc_bench.analysis import charts
    from esc_bench.analysis.leaderboard import run_entries
    from esc_bench.analysis.runs import load_run

    names = [f"org-{k}/family-{k}-instruct-{'x' * (3 * k)}-v{k}" for k in range(12)]
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        make_run(Path(tmp) / "run", models=names, n_cards=3)
        run = load_run(Path(tmp) / "run")
        entries = run_entries(run)
    entries.sort(key=lambda en: names.index(en.model))  # as the report passes them: in its model order
    assert len(entries) == 12
    for make in (charts.radar_figure, charts.bars_figure):
        with charts._rc():
            fig = make(entries, "t_en", "4", names)
            FigureCanvasAgg(fig)
            renderer = fig.canvas.get_renderer()
            fig.draw(renderer)
            (legend,) = fig.legends
            texts = legend.get_texts()
            assert [t.get_text() for t in texts] == [charts.legend_label(n) for n in names]  # the model order
            assert all(t.get_fontsize() >= 9 for t in texts)
            assert all(len(t.get_text()) <= charts.LEGEND_CHARS for t in texts)
            boxes = [t.get_window_extent(renderer) for t in texts]
            for i, a in enumerate(boxes):  # no two names overlap
                for b in boxes[i + 1:]:
                    assert not a.overlaps(b), (make.__name__, a, b)
            chart = fig.axes[0].get_tightbbox(renderer)  # the chart with its tick labels and title
            assert not legend.get_window_extent(renderer).overlaps(chart), make.__name__
    # the last character of a shortened name survives: versions stay apart
    assert charts.legend_label(names[11]).endswith("-v11") and charts.legend_label(names[10]).endswith("-v10")


def test_html_browser_names_a_single_metric_and_shows_it_on_its_own_scale(tmp_path: Path) -> None:
    from esc_bench.cli import main
    from tests.support.fake_openai import FakeOpenAI
    from tests.support.sage_seeker import SageSeeker
    from tests.test_sage_e2e import run, write_setup

    finals = {"up": 100, "down": 0, "bye": 40, "flat": 40}  # the scripted seeker's final emotions
    with FakeOpenAI(reply=SageSeeker()) as srv:
        models, tasks = write_setup(tmp_path, srv.url, tuple(finals))
        assert run(models, tasks, tmp_path / "run", "--cache-dir", str(tmp_path / "c"), sups="sup-a,sup-b") == 0
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "run"), "-o", str(out)]) == 0
    groups = _groups(out.read_text(encoding="utf-8"))
    assert len(groups) == 4
    for g in groups:
        summary = re.search(r"<summary>(.*?)</summary>", g, re.S).group(1)
        final = finals[re.search(r" · card (\w+) ", summary).group(1)]
        # 'emotion 40', not 'average 40.00'
        assert re.findall(r'<details class="dlg" open[^>]*><summary><b>sup-.</b> · ok · ([^<]+)</summary>', g) == [
            f"emotion {final}"] * 2
        assert f"sup-a {final} · sup-b {final}" in summary
        rows = re.findall(r'<tr><td class="l">(?:<b>)?(\w+)', g.split('class="cardscores"')[1].split("</table>")[0])
        assert rows == ["emotion"]  # no "average" of a single metric
