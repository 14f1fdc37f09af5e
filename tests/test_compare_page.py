"""`esc-bench compare` in every format (console, md, json, html): B − A orientation, numbers a
hand computation gives, the pairs each row leaves out and why, per task or pooled, the page in a
real browser."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from esc_bench.analysis.compare import NO_DIFFERENCE, Side, compare_sides
from esc_bench.analysis.runs import load_run
from esc_bench.commands import compare as compare_cmd
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from tests.support.synthetic_runs import make_run
from tests.test_report_html import CHROMIUM, _chromium

HOSTILE = '<img src=x onerror="alert(1)"> & "q"'
TASKS = {"t_en": {"language": "en"}, "t_zh": {"language": "zh"}}


def run_compare(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    compare_cmd.configure(parser)
    return compare_cmd.run(parser.parse_args(list(argv)))


def base(t: str, m: str, i: int, d: str) -> int:
    return (i + DIMENSION_NAMES.index(d)) % 3  # 0..2


@pytest.fixture
def v1_v2(tmp_path: Path) -> tuple[Path, Path]:
    """v2 is v1 + 1 on every card but the first of each task; v2 lost one fluency score on t_en
    card 2; v1's t_en card 5 failed; v2 has two more t_zh cards."""
    make_run(tmp_path / "v1", models=["m"], n_cards=8, tasks=TASKS, score=base, failed={("t_en", "m", 5)},
             card_text=lambda t, i: f"seeker card {t}/{i} {HOSTILE}")
    v2_tasks = {"t_en": {"language": "en"}, "t_zh": {"language": "zh"}}

    def better(t: str, m: str, i: int, d: str) -> int | None:
        if (t, i, d) == ("t_en", 2, "fluency"):
            return None
        return base(t, m, i, d) + (0 if i == 0 else 1)

    make_run(tmp_path / "v2", models=["m"], n_cards=8, tasks=v2_tasks, score=better,
             card_text=lambda t, i: f"seeker card {t}/{i} {HOSTILE}")
    # two more Chinese cards only v2 played
    from esc_bench.records import DialogueRecord
    from esc_bench.store.run_dir import RunDir
    from tests.support.synthetic_runs import dialogue

    w = RunDir(tmp_path / "v2").dialogue_writer()
    w.write_many([dialogue("t_zh", "m", f"t_zh-{i}", language="zh") for i in (8, 9)])
    w.close()
    assert DialogueRecord  # the records the writer took
    return tmp_path / "v1", tmp_path / "v2"


def test_hand_computed_small_case_and_b_minus_a_orientation(tmp_path: Path) -> None:
    # empathy, A: 1 2 2 3 and B: 2 4 2 3 -> B − A: +1 +2 0 0; every other dimension equal (2 = 2).
    a_emp, b_emp = [1, 2, 2, 3], [2, 4, 2, 3]
    make_run(tmp_path / "a", models=["a"], n_cards=4, score=lambda t, m, i, d: a_emp[i] if d == "empathy" else 2)
    make_run(tmp_path / "b", models=["b"], n_cards=4, score=lambda t, m, i, d: b_emp[i] if d == "empathy" else 2)
    cmp = compare_sides(Side.from_run(load_run(tmp_path / "a"), "a"), Side.from_run(load_run(tmp_path / "b"), "b"))
    rows = {r.dimension: r for r in cmp.rows}
    emp = rows["empathy"]
    assert (emp.n, emp.mean_a, emp.mean_b, emp.diff) == (4, 2.0, 2.75, 0.75)  # B better: positive
    assert (emp.win, emp.tie, emp.loss) == (2, 2, 0)  # counted from B's side
    # two non-zero differences, both positive: exact sign test p = 2 * (1/2)^2 = 0.5
    assert emp.test == "sign" and emp.p_value == pytest.approx(0.5)
    # Holm over 7 tests: the smallest p (0.5) x 7, capped at 1; the other six are 1 already
    assert all(rows[d].p_holm == 1.0 for d in DIMENSION_NAMES)
    # resamples of the differences {0, 0, 1, 2}: all zero with probability 1/16 > 2.5%, so the CI
    # starts at 0; a mean of 1.75 or more (sum >= 7) has 5/256 < 2.5% but 1.5 or more 19/256: it ends at 1.5
    assert emp.ci95 == (0.0, 1.5) and emp.verdict == NO_DIFFERENCE
    assert rows["fluency"].diff == 0.0 and rows["fluency"].tie == 4
    avg = rows["average"]  # per card (B − A) / 7: 1/7, 2/7, 0, 0 -> mean 3/28
    assert avg.diff == pytest.approx(3 / 28, abs=1e-6) and avg.p_holm is None
    assert [(p.card_id, round(p.diff, 6)) for p in cmp.top_pairs] == [("t_en-1", round(2 / 7, 6)),
                                                                      ("t_en-0", round(1 / 7, 6))]


def test_rows_say_how_many_pairs_they_use_and_why_others_are_left_out(v1_v2) -> None:
    v1, v2 = v1_v2
    cmp = compare_sides(Side.from_run(load_run(v1), "m", "v1"), Side.from_run(load_run(v2), "m", "v2"),
                        tasks=["t_en"])
    assert (cmp.n_pairs, cmp.n_failed, cmp.n_only_a, cmp.n_only_b) == (7, 1, 0, 0)
    rows = {r.dimension: r for r in cmp.rows}
    assert (rows["fluency"].n, rows["fluency"].n_missing_a, rows["fluency"].n_missing_b) == (6, 0, 1)
    assert (rows["empathy"].n, rows["empathy"].n_missing_b) == (7, 0)
    # every card but the first is 1 higher in v2 (card 5 failed): 6 of 7 pairs, B wins them
    assert rows["empathy"].diff == pytest.approx(6 / 7, abs=1e-6) and rows["empathy"].win == 6
    assert rows["empathy"].verdict.startswith("v2 higher")
    zh = compare_sides(Side.from_run(load_run(v1), "m", "v1"), Side.from_run(load_run(v2), "m", "v2"),
                       tasks=["t_zh"])
    assert (zh.n_pairs, zh.n_only_a, zh.n_only_b) == (8, 0, 2)


def test_console_is_per_task_by_default_and_pooled_on_request(v1_v2, capsys) -> None:
    v1, v2 = v1_v2
    assert run_compare(str(v1), str(v2)) == 0
    out = capsys.readouterr().out
    assert "m@v1 (A) vs m@v2 (B) — t_en" in out and "m@v1 (A) vs m@v2 (B) — t_zh" in out
    assert "B − A" in out and "B win/tie/loss" in out and "1 without B's score" in out
    assert "1 pair left out because a dialogue failed" in out and "2 cards only in B" in out
    assert "m@v2 higher" in out and "all tasks" not in out
    assert run_compare(str(v1), str(v2), "--pooled") == 0
    out = capsys.readouterr().out
    assert "— all tasks" in out and "— t_en" not in out and "by language" in out


def test_json_has_the_pooled_comparison_and_one_per_task(v1_v2, tmp_path: Path) -> None:
    v1, v2 = v1_v2
    out = tmp_path / "c.json"
    assert run_compare(str(v1), str(v2), "-o", str(out)) == 0  # the format from the suffix
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and data["orientation"].startswith("differences are B − A")
    assert data["scope"] == "all tasks" and data["tasks"] == ["t_en", "t_zh"]
    assert [t["scope"] for t in data["per_task"]] == ["t_en", "t_zh"]
    en = data["per_task"][0]
    emp = next(r for r in en["rows"] if r["dimension"] == "empathy")
    assert emp["diff"] == pytest.approx(6 / 7, abs=1e-6) and emp["win"] == 6 and emp["loss"] == 0
    flu = next(r for r in en["rows"] if r["dimension"] == "fluency")
    assert (flu["n"], flu["n_missing_b"]) == (6, 1)
    assert [g["label"] for g in data["breakdowns"]["language"]] == ["English", "Chinese"]
    assert data["top_pairs"] and all(p["diff"] == pytest.approx(p["avg_b"] - p["avg_a"]) for p in data["top_pairs"])
    pooled = tmp_path / "p.json"
    assert run_compare(str(v1), str(v2), "--format", "json", "-o", str(pooled), "--pooled") == 0
    assert json.loads(pooled.read_text(encoding="utf-8"))["per_task"] == []


def test_markdown(v1_v2, tmp_path: Path) -> None:
    v1, v2 = v1_v2
    out = tmp_path / "c.md"
    assert run_compare(str(v1), str(v2), "--format", "md", "-o", str(out), "--scale", "100") == 0
    md = out.read_text(encoding="utf-8")
    assert md.startswith("# esc-bench comparison: m@v1 (A) vs m@v2 (B)")
    assert "## t_en" in md and "## t_zh" in md and "### by category" in md and "### Largest differences" in md
    emp = next(line for line in md.splitlines() if line.startswith("| empathy |"))
    assert "| +21.4 |" in emp  # 6/7 x 25, positive: v2 is better
    assert "scale 0–100" in md


def test_json_alias_still_writes_json_beside_the_console(v1_v2, tmp_path: Path, capsys) -> None:
    v1, v2 = v1_v2
    out = tmp_path / "old.json"
    assert run_compare(str(v1), str(v2), "--json", str(out)) == 0
    assert "— t_en" in capsys.readouterr().out and json.loads(out.read_text())["label_b"] == "m@v2"
    with pytest.raises(UserError, match="--json is the old spelling"):
        run_compare(str(v1), str(v2), "--json", str(out), "--format", "md")
    with pytest.raises(UserError, match="cannot tell the format"):
        run_compare(str(v1), str(v2), "-o", str(tmp_path / "c.txt"))


def _page(v1: Path, v2: Path, tmp_path: Path) -> Path:
    out = tmp_path / "compare.html"
    assert run_compare(str(v1), str(v2), "-o", str(out), "--max-dialogues", "3") == 0
    return out


def test_html_page_content(v1_v2, tmp_path: Path) -> None:
    page = _page(*v1_v2, tmp_path).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert page.count("<svg") == 2  # a forest plot per task
    assert page.count('<table class="compare">') == 2 and "by category" in page
    assert len(set(re.findall(r'\bid="([^"]+)"', page))) == len(re.findall(r'\bid="([^"]+)"', page))
    # 3 cards per task, each with the role card and both dialogues side by side
    assert page.count('<section class="cardgroup pair">') == 6
    assert page.count("what the seeker was given") == 6 and page.count('<details class="dlg" open>') == 12
    assert HOSTILE not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "1 without B&#x27;s score" in page and "1 pair left out because a dialogue failed" in page
    assert "B − A (m@v2 − m@v1)" in page  # the plot's axis says which way is up


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_page_loads_in_a_headless_browser_without_errors(v1_v2, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib import image

    url = _page(*v1_v2, tmp_path).resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert "m@v1 (A) vs m@v2 (B)" in dom.stdout and dom.stdout.count("<svg") == 2
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path, f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = np.asarray(image.imread(str(shot)))
    assert float(pixels[..., :3].std()) > 0.05  # not blank


def test_html_colours_a_verdict_only_when_it_survives_holm(tmp_path: Path) -> None:
    # 8 cards, B one point higher on every dimension of 7 of them: each dimension's CI excludes 0
    # and its exact sign test gives p = 2/2^7 = 0.0156, Holm x7 = 0.109: not after the adjustment;
    # the average row is not one of the seven adjusted tests: its verdict stays green.
    make_run(tmp_path / "a", models=["a"], n_cards=8, score=lambda t, m, i, d: 1)
    make_run(tmp_path / "b", models=["b"], n_cards=8, score=lambda t, m, i, d: 1 if i == 0 else 2)
    out = tmp_path / "c.html"
    assert run_compare(str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)) == 0
    table = out.read_text(encoding="utf-8").split('<table class="compare">')[1].split("</table>")[0]
    verdicts = dict(re.findall(r'<tr><td class="l">(?:<b>)?(\w+)(?:</b>)?</td>.*?<td class="([^"]*)">[^<]*</td></tr>',
                               table))
    assert set(verdicts) == {*DIMENSION_NAMES, "average"}
    for dim in DIMENSION_NAMES:
        assert verdicts[dim] == "l wrap weak", dim
    assert verdicts["average"] == "l wrap up"
    assert table.count("not after Holm correction") == 7


def test_html_sides_show_each_judges_replies(tmp_path: Path) -> None:
    make_run(tmp_path / "a", models=["a"], n_cards=3, score=lambda t, m, i, d: 1,
             raw=lambda t, m, i, d: f"A's judge on {d}:\nthe seeker <felt> unheard.\nScore: 1", judge="judge-a")
    make_run(tmp_path / "b", models=["b"], n_cards=3, score=lambda t, m, i, d: 1 if i == 0 else 3,
             raw=lambda t, m, i, d: f"B's judge on {d}: Score {1 if i == 0 else 3}", judge="judge-b")
    out = tmp_path / "c.html"
    assert run_compare(str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out), "--force") == 0
    sections = out.read_text(encoding="utf-8").split('<section class="cardgroup pair">')[1:]
    assert len(sections) == 2  # cards 1 and 2 differ
    for sec in sections:
        side_a, side_b = sec.split('<details class="dlg" open><summary><b>')[1:]
        assert side_a.startswith("A</b>") and side_b.startswith("B</b>")
        assert "judge replies (judge-a)" in side_a and "judge replies (judge-b)" in side_b
        for dim in DIMENSION_NAMES:
            # A's reply folds its reasoning under the score line; B's is one line
            assert (f'<span class="dim">{dim}</span> <b class="score">1</b> <span class="line">Score: 1</span>'
                    f"</summary><pre class=\"raw\">A&#x27;s judge on {dim}:\nthe seeker &lt;felt&gt; unheard.\n"
                    "Score: 1</pre>") in side_a
            assert (f'<span class="dim">{dim}</span> <b class="score">3</b> '
                    f'<span class="line">B&#x27;s judge on {dim}: Score 3</span>') in side_b
