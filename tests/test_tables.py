"""Console and markdown tables: cell format, scales, best per column, missing values."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rich.console import Console

from esc_bench.analysis.breakdown import breakdown
from esc_bench.analysis.tables import (
    MISSING,
    best_models,
    breakdown_markdown,
    format_score,
    leaderboard_markdown,
    render_breakdown,
    render_leaderboard,
)
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.records import DimensionScore, Leaderboard, LeaderboardEntry
from tests.support.synthetic_runs import dialogue


def ds(mean: float | None, lo: float | None = None, hi: float | None = None, n: int = 10) -> DimensionScore:
    return DimensionScore(mean=mean, score_100=None if mean is None else mean * 25,
                          ci95=None if lo is None else (lo, hi), n=n if mean is not None else 0)


def entry(model: str, mean: float | None, *, task: str = "t_en", missing_dim: str | None = None) -> LeaderboardEntry:
    scores = {d: ds(mean, mean - 0.1, mean + 0.1) if mean is not None else ds(None) for d in DIMENSION_NAMES}
    if missing_dim:
        scores[missing_dim] = DimensionScore(mean=None, score_100=None, ci95=None, n=0, n_missing=10)
    return LeaderboardEntry(model=model, task=task, protocol="esc-eval", simulator="esc-role", judge="esc-rank",
                            n_dialogues=10, n_failed=1 if model == "b" else 0, scores=scores,
                            average=ds(mean, mean - 0.05, mean + 0.05) if mean is not None else ds(None))


def board(*entries: LeaderboardEntry) -> Leaderboard:
    return Leaderboard(run_id="r", created="x", protocol="esc-eval", simulator="esc-role", judge="esc-rank",
                       entries=list(entries))


def test_format_score_on_both_scales() -> None:
    d = ds(2.456, 2.3, 2.6)
    assert format_score(d) == "2.46 ±0.15"
    assert format_score(d, "100") == "61.4 ±3.8"
    assert format_score(ds(3.0)) == "3.00"  # no CI (n < 2)
    assert format_score(ds(None)) == MISSING == "–"
    assert format_score(None) == MISSING
    with pytest.raises(ValueError):
        format_score(d, "10")


def test_best_model_per_column_and_no_highlight_when_all_tie() -> None:
    entries = [entry("a", 3.0), entry("b", 2.0), entry("c", 3.0)]
    assert best_models(entries, "fluency") == {"a", "c"}
    assert best_models([entry("a", 2.0), entry("b", 2.0)], "average") == set()
    assert best_models([entry("a", 2.0)], "average") == set()
    assert best_models([entry("a", 2.0), entry("b", None)], "average") == set()


def test_console_table_has_a_row_per_model_and_marks_best_and_missing() -> None:
    console = Console(record=True, width=220, force_terminal=True, color_system="standard")
    b = board(entry("a", 3.0, missing_dim="empathy"), entry("b", 2.0), entry("zz", 1.0, task="t_zh"))
    render_leaderboard(b, console)
    plain = console.export_text(styles=False)
    assert "t_en" in plain and "t_zh" in plain
    for col in [*DIMENSION_NAMES, "average", "failed", "missing"]:
        assert col in plain
    row_a = next(line for line in plain.splitlines() if "│ a " in line)
    assert "3.00 ±0.10" in row_a and MISSING in row_a and "3.00 ±0.05" in row_a
    assert "protocol esc-eval, simulator esc-role, judge esc-rank" in plain
    console = Console(record=True, width=220, force_terminal=True, color_system="standard")
    render_leaderboard(b, console)
    styled = console.export_text(styles=True)
    assert "\x1b[1;32m3.00 ±0.10" in styled  # best: bold green
    assert "\x1b[1;32m2.00 ±0.10" not in styled


def test_console_table_on_the_paper_scale() -> None:
    console = Console(record=True, width=220)
    render_leaderboard(board(entry("a", 3.0), entry("b", 2.0)), console, scale="100")
    text = console.export_text()
    assert "75.0 ±2.5" in text and "50.0 ±2.5" in text and "0–100" in text


def test_empty_board_says_so() -> None:
    console = Console(record=True, width=120)
    render_leaderboard(board(), console)
    assert "no results" in console.export_text()


def test_markdown_table_bolds_the_best_and_escapes_cells() -> None:
    md = leaderboard_markdown(board(entry("a|b <x>", 3.0), entry("b", 2.0, missing_dim="overall")))
    lines = md.splitlines()
    assert lines[0] == "### t_en"
    header = next(line for line in lines if line.startswith("| model"))
    assert header.split(" | ")[1:4] == ["fluency", "expression", "empathy"]
    row = next(line for line in lines if line.startswith("| a\\|b"))
    assert "&lt;x&gt;" in row and "**3.00 ±0.10**" in row and "**3.00 ±0.05**" in row
    row_b = next(line for line in lines if line.startswith("| b |"))
    assert MISSING in row_b and "**" not in row_b
    assert header.endswith("| missing |")


def test_breakdown_tables_show_groups_with_paper_names() -> None:
    dialogues = [dialogue("t", "m", str(i), source=s, category="家庭生活") for i, s in enumerate(["ESconv", "smile", "Psych"])]
    rows = breakdown(dialogues, [], "source")
    assert [r.label for r in rows] == ["ESConv", "Psych8k", "SMILE"]
    console = Console(record=True, width=220)
    render_breakdown("source", rows, console)
    text = console.export_text()
    assert "by source dataset" in text and "ESConv" in text and "SMILE" in text
    md = breakdown_markdown("category", breakdown(dialogues, [], "category"))
    assert "family life (家庭生活)" in md


def test_command_modules_import_no_heavy_packages() -> None:
    code = (
        "import sys\n"
        "import esc_bench.commands.report, esc_bench.commands.compare, esc_bench.commands.agreement\n"
        "import esc_bench.commands.leaderboard, esc_bench.commands.import_upstream\n"
        "import esc_bench.analysis.stats, esc_bench.analysis.tables, esc_bench.analysis.charts\n"
        "heavy = [m for m in ('scipy', 'matplotlib', 'numpy', 'krippendorff', 'rich') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_markdown_settings_line_is_escaped() -> None:
    hostile = entry("a", 3.0).model_copy(update={"judge": "j|x\n## injected <b>"})
    md = leaderboard_markdown(board(hostile, entry("b", 2.0)))
    line = next(line for line in md.splitlines() if line.startswith("protocol "))
    assert line.startswith("protocol esc-eval, simulator esc-role, judge esc-rank/j\\|x ## injected &lt;b&gt; — ")
    assert "## injected" not in [ln[:11] for ln in md.splitlines()] and "<b>" not in md


def test_breakdown_groups_card_aliases_the_way_card_filters_do() -> None:
    from esc_bench.data.cards import normalize_category, normalize_source

    sources = ["Psych8k", "Psych", " psych ", "ESconv", "esconv"]
    cats = ["work", "工作学习", "Work and Study", "family", "家庭生活"]
    dialogues = [dialogue("t", "m", str(i), source=s, category=c) for i, (s, c) in enumerate(zip(sources, cats))]
    by_source = breakdown(dialogues, [], "source")
    assert [(r.label, r.n_dialogues) for r in by_source] == [("ESConv", 2), ("Psych8k", 3)]
    by_cat = breakdown(dialogues, [], "category")
    assert [(r.group, r.label, r.n_dialogues) for r in by_cat] == [
        ("家庭生活", "family life (家庭生活)", 2), ("工作学习", "work and study (工作学习)", 3)]
    assert {r.group for r in by_cat} == {normalize_category(c) for c in cats}
    assert normalize_source("Psych8k") == "Psych"


# --- one model order in every output -------------------------------------------------------------

ORDER_SCORES = {"t_en": {"zeta": 4, "alpha": 3, "mid": 2, "beta": 1},
                "t_zh": {"zeta": 4, "mid": 3, "alpha": 2, "beta": 0}}
ORDER = ["zeta", "alpha", "mid", "beta"]  # mean places 0, 1.5, 1.5 (tie: by name), 3


def _names_in(lines: list[str], pattern: str) -> list[list[str]]:
    """Per table (runs of matching lines), the model names in the order they appear."""
    import re

    tables, current = [], []
    for line in lines:
        m = re.search(pattern, line)
        if m and m.group(1) in ORDER:
            current.append(m.group(1))
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def _each_in_order(tables: list[list[str]], min_tables: int) -> None:
    assert len(tables) >= min_tables, tables
    for names in tables:
        assert [m for m in ORDER if m in names] == list(dict.fromkeys(names)), names


def test_model_order_is_by_leaderboard_place_ties_by_name() -> None:
    from esc_bench.analysis.model_order import model_order

    entries = [entry(m, float(s), task=t) for t, scores in ORDER_SCORES.items() for m, s in scores.items()]
    assert model_order(entries) == ORDER
    # one task: the leaderboard's own order; unscored last; equal averages by name
    assert model_order([entry("b", 2.0), entry("a", 2.0), entry("c", None), entry("d", 3.0)]) == ["d", "a", "b", "c"]


def test_one_model_order_in_every_table_chart_and_list(tmp_path) -> None:
    import re

    from esc_bench.analysis.report import build_report, report_json
    from esc_bench.analysis.report_html import report_html
    from esc_bench.analysis.report_md import report_markdown
    from tests.support.synthetic_runs import make_run

    make_run(tmp_path / "run", models=["beta", "mid", "alpha", "zeta"], n_cards=6,
             tasks={"t_en": {"language": "en"}, "t_zh": {"language": "zh"}},
             score=lambda t, m, i, d: ORDER_SCORES[t][m])
    report = build_report([tmp_path / "run"])
    assert report.models == ORDER and report_json(report)["models"] == ORDER
    # console: 2 leaderboards + 3 breakdowns (language, source, category), each group in the order
    console = Console(record=True, width=400)
    render_leaderboard(report.board, console)
    for facet, rows in report.breakdowns.items():
        render_breakdown(facet, rows, console)
    lines = console.export_text().splitlines()
    _each_in_order(_names_in(lines, r"^│ (\w+) "), 2)
    groups = _names_in(lines, r"^│ [^│]*│ (\w+) ")
    assert sum(len(g) for g in groups) == 4 * (2 + 7 + 3)  # every breakdown row seen
    for g in groups:
        for k in range(0, len(g), 4):
            assert g[k:k + 4] == ORDER, g
    # markdown: the same
    md = report_markdown(report).splitlines()
    _each_in_order(_names_in(md, r"^\| (\w+) \|"), 2)
    md_rows = _names_in(md, r"^\| [^|]+ \| (\w+) \|")
    assert [m for g in md_rows for m in g] == ORDER * 12
    # HTML: leaderboard and breakdown tables, chart legends, the dialogues
    page = report_html(report)
    board_rows = re.findall(r'<tr><td class="l m">(\w+)</td>', page.split('id="breakdowns"')[0])
    assert board_rows == ORDER * 2
    bd = page.split('id="breakdowns"')[1].split('id="dialogues"')[0]
    assert re.findall(r'<td class="l m">(\w+)</td>', bd) == ORDER * 12
    legends = re.findall(r'<g id="c\d+-legend_1">(.*?)</svg>', page, re.S)
    assert len(legends) == 4
    for legend in legends:
        assert [m for m in re.findall(r">(\w+)</text>", legend) if m in ORDER] == ORDER
    listed = re.findall(r'<details class="dlg"[^>]*><summary>[^<]*<b>(\w+)</b>', page)
    assert list(dict.fromkeys(listed)) == ORDER and len(listed) == 48


def _best_score(t: str, m: str, i: int, d: str) -> int:
    if t == "t_zh":
        return {"c": 4, "a": 1, "b": 0}[m]
    return {"fluency": {"a": 4, "b": 2, "c": 1}, "empathy": {"a": 1, "b": 3, "c": 0},
            "overall": {"a": 3, "b": 3, "c": 1}}.get(d, {"a": 2, "b": 2, "c": 2})[m]


def test_breakdowns_highlight_the_best_per_group_and_column_alike_in_console_md_and_html(tmp_path) -> None:
    import re

    from esc_bench.analysis.report import build_report
    from esc_bench.analysis.report_html import report_html
    from esc_bench.analysis.report_md import report_markdown
    from tests.support.synthetic_runs import make_run

    make_run(tmp_path / "run", models=["a", "b", "c"], n_cards=3, score=_best_score,
             tasks={"t_en": {"language": "en"}, "t_zh": {"language": "zh"}})
    report = build_report([tmp_path / "run"])
    cols = [*DIMENSION_NAMES, "average"]
    # by hand, English: a leads fluency, b empathy, a and b tie on overall and on the average
    # (16/7 each); every other column ties all three (nothing bold). Chinese: c leads every column.
    hand = {("English", "a"): {"fluency", "overall", "average"}, ("English", "b"): {"empathy", "overall", "average"},
            ("English", "c"): set(), ("Chinese", "a"): set(), ("Chinese", "b"): set(), ("Chinese", "c"): set(cols)}

    # console: bold green cells, read back from the styled export
    console = Console(record=True, width=400, force_terminal=True, color_system="standard")
    render_breakdown("language", report.breakdowns["language"], console)
    con: dict[tuple[str, str], set[str]] = {}
    group = ""
    for line in console.export_text(styles=True).splitlines():
        cells = line.split("│")[1:-1]
        if len(cells) != len(cols) + 4:
            continue
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", c).strip() for c in cells]
        if plain[1] not in ("a", "b", "c"):
            continue
        group = plain[0] or group
        con[(group, plain[1])] = {col for col, c in zip(cols, cells[2:]) if "\x1b[1;32m" in c}
    assert con == hand

    # markdown: bold cells
    md_rows = [line for line in report_markdown(report).split("### by language")[1].split("###")[0].splitlines()
               if re.match(r"\| (English|Chinese) \| [abc] \|", line)]
    md = {}
    for line in md_rows:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        md[(cells[0], cells[1])] = {col for col, c in zip(cols, cells[2:]) if c.startswith("**")}
    assert md == hand

    # HTML: class="best" cells
    page = report_html(report)
    table = page.split("<h3>by language</h3>")[1].split("</table>")[0]
    html_best, group = {}, ""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1]):
        label = re.match(r'<td class="l" rowspan="\d+">([^<]+)</td>', row)
        group = label.group(1) if label else group
        model = re.search(r'<td class="l m">(\w)</td>', row).group(1)
        tds = re.findall(r"<td( class=\"best\")?[^>]*>[^<]*</td>", row.split('class="l m"')[1].split("</td>", 1)[1])
        html_best[(group, model)] = {col for col, best in zip(cols, tds) if best}
    assert html_best == hand
