"""Reports show what the run's protocol spec names: a sage run's leaderboard, tables and pages carry
the final emotion, success and failure counts and the mean trajectory -- not ESC-Eval's dimensions --
and a report over an ESC-Eval run and a sage run shows each task with its own metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.records import Leaderboard
from tests.support.fake_openai import FakeOpenAI
from tests.support.sage_seeker import SageSeeker
from tests.support.synthetic_runs import make_run
from tests.test_sage_e2e import run, write_setup

# The scripted seeker's emotions per seeker turn (tests/support/sage_seeker.py), by hand:
CURVES = {
    "up": [40, 50, 60, 70, 80, 90, 100],  # success
    "down": [40, 30, 20, 10, 0],  # failure
    "bye": [40, 40, 40],  # goodbye
    "flat": [40] * 10,  # the reply cap
}
FINALS = [c[-1] for c in CURVES.values()]  # 100, 0, 40, 40: mean 45


def _by_hand_trajectory() -> list[float]:
    length = max(len(c) for c in CURVES.values())
    return [sum(c[min(i, len(c) - 1)] for c in CURVES.values()) / len(CURVES) for i in range(length)]


@pytest.fixture(scope="module")
def sage_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sage_reports")
    with FakeOpenAI(reply=SageSeeker()) as srv:
        models, tasks = write_setup(root, srv.url, tuple(CURVES))
        assert run(models, tasks, root / "run", "--cache-dir", str(root / "c"), sups="sup-a,sup-b") == 0
    return root / "run"


def test_the_leaderboard_carries_the_protocols_metrics(sage_run: Path) -> None:
    board = Leaderboard.model_validate_json((sage_run / "leaderboard.json").read_bytes())
    spec = board.spec("sage_mini")
    assert spec.metric_names == ["emotion"] and spec.outcomes == ("success", "failure") and not spec.average
    assert board.dimensions == ["emotion"]
    e = board.entries[0]
    assert len(board.entries) == 2 and set(e.scores) == {"emotion"}
    emotion = e.scores["emotion"]
    assert emotion.mean == pytest.approx(sum(FINALS) / 4) and emotion.score_100 == pytest.approx(45.0)
    assert (emotion.n, emotion.n_missing, e.n_dialogues, e.n_failed) == (4, 0, 4, 0)
    assert emotion.ci95 is not None and emotion.ci95[0] < 45 < emotion.ci95[1]
    assert e.outcomes == {"success": 1, "failure": 1}
    assert e.trajectory == pytest.approx(_by_hand_trajectory())
    assert e.average.n == 0 and e.average.mean is None  # no average over one metric


def test_console_markdown_and_html_show_the_protocols_metrics(sage_run: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["report", str(sage_run), "--no-breakdowns"]) == 0
    console = capsys.readouterr().out
    table = console.split("sentient agent (SAGE)")[0]
    assert "emotion" in table and "success" in table and "failure" in table and "fluency" not in table
    assert "45.0 ±" in table and "scale 0–100" in table and "missing" not in table
    assert main(["report", str(sage_run), "--format", "md", "-o", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| model | emotion | success | failure | n | failed |" in md and "fluency" not in md
    assert "| sup-a | 45.0 ±" in md and " | 1 | 1 | 4 | 0 |" in md
    assert "40 40 40 40 40 42 45 45 45 45" in md  # the mean trajectory, by hand: 42.5 at turn 5
    assert main(["report", str(sage_run), "--format", "html", "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    board = page.split('<h2 id="leaderboard">')[1].split('<h2 id="sage">')[0]
    assert "<th>emotion</th><th>success</th><th>failure</th>" in board and "fluency" not in board
    assert "scale 0–100" in page
    # each dialogue lists its own metric's score, not seven empty dimensions
    assert '<span class="dim">emotion</span> <b class="score">100</b>' in page and '"dim">fluency<' not in page
    # each dialogue's summary names its score as the protocol does: the final emotion, not an "average"
    assert "<b>sup-a</b> · ok · emotion 100</summary>" in page and "· ok · average" not in page


def test_an_esc_eval_run_and_a_sage_run_in_one_report(sage_run: Path, tmp_path: Path) -> None:
    make_run(tmp_path / "esc", tasks={"t_en": {"language": "en"}}, models=["m"], n_cards=3)
    assert main(["report", str(tmp_path / "esc"), str(sage_run), "--format", "json",
                 "-o", str(tmp_path / "r.json")]) == 0
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    board = Leaderboard.model_validate(data["leaderboard"])
    assert board.spec("t_en").metric_names[0] == "fluency" and board.spec("sage_mini").metric_names == ["emotion"]
    by_task = {e.task: e for e in board.entries}
    assert "fluency" in by_task["t_en"].scores and set(by_task["sage_mini"].scores) == {"emotion"}
    assert main(["report", str(tmp_path / "esc"), str(sage_run), "--format", "md", "-o", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    t_en = md.split("### t_en")[1].split("\n\n", 2)[1]
    sage_table = md.split("### sage_mini")[1].split("\n\n", 2)[1]
    assert "| average |" in t_en and "emotion" not in t_en
    assert "| emotion | success | failure |" in sage_table and "fluency" not in sage_table


def test_the_compare_page_shows_each_seeker_lines_state(sage_run: Path, tmp_path: Path) -> None:
    # run B plays card "up" with the falling script: the pair differs, so the page shows both sides
    with FakeOpenAI(reply=SageSeeker()) as srv:
        models, tasks = write_setup(tmp_path, srv.url, ("up",))
        (tmp_path / "cards.jsonl").write_text(json.dumps({"id": "up", "base": "A tired nurse. SCRIPT:down"}))
        assert run(models, tasks, tmp_path / "b", "--cache-dir", str(tmp_path / "c"), sups="sup-b") == 0
    out = tmp_path / "cmp.html"
    assert main(["compare", str(sage_run), str(tmp_path / "b"), "--model-a", "sup-a", "--format", "html",
                 "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert '<div class="meta">emotion 50 (+10) — ' in page and '<div class="meta">emotion 30 (-10) — ' in page


def test_compare_on_the_0_100_scale_leaves_the_emotion_as_it_is(sage_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp.md"
    assert main(["compare", str(sage_run), "--model-a", "sup-a", "--model-b", "sup-b", "--scale", "100",
                 "--format", "md", "-o", str(out)]) == 0
    md = out.read_text(encoding="utf-8")
    assert "| emotion | 45.00 | 45.00 |" in md and "1125" not in md  # never x25: 0-100 already


def test_the_trajectory_chart_follows_the_reports_model_order_and_colours() -> None:
    from esc_bench.analysis.charts import model_colors
    from esc_bench.analysis.protocol_section import trajectory_svg
    from esc_bench.protocols.sage import SPEC

    svg = trajectory_svg("t", SPEC, {"alpha": [[40, 30]], "zeta": [[40, 50], [40, 60]]}, models=["zeta", "alpha"])
    assert svg.index("zeta (n=2)") < svg.index("alpha (n=1)")  # the legend in the report's order
    colors = model_colors(["zeta", "alpha"])
    assert colors["zeta"] in svg and colors["alpha"] in svg
