"""`esc-bench import-sage`: SAGE's published result file as a sage run (against ../shared/sage's sample)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.protocols.sage_mechanics import summarize
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from esc_bench.store.run_dir import RunDir
from tests.support.sage_data import RESULT_SAMPLE, shared_sage_or_skip

# By hand from the sample's 12 dialogues (final emo_point of each line, in order).
FINALS = [15, 50, 40, 100, 95, 90, 25, 65, 75, 100, 100, 5]
MEAN = 760 / 12  # 15+50+40+100+95+90+25+65+75+100+100+5 = 760
# Emotion after the first rated reply (the second seeker turn) of each dialogue.
TURN_1 = [45, 35, 45, 45, 45, 45, 45, 45, 45, 45, 50, 35]  # sum 525


def _import(out: Path, model: str = "gpt-4.5", src: Path | None = None, *extra: str) -> int:
    return main(["import-sage", str(src or shared_sage_or_skip(RESULT_SAMPLE)), "--model", model, "-o", str(out), *extra])


def _emotions(d: DialogueRecord) -> list[int]:
    return [t.state["emotion"] for t in d.transcript if t.speaker == "seeker" and t.state]


def test_import_the_published_sample(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pub"
    assert _import(out, "gpt-4.5", None, "--simulator", "deepseek-v3") == 0
    assert "imported gpt-4.5" in capsys.readouterr().out
    ds = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert [d.task for d in ds] == ["sage_zh"] * 12 and {d.model for d in ds} == {"gpt-4.5"}
    finals = [d.state["emotion"] for d in ds]
    assert finals == FINALS
    assert [d.end for d in ds] == [
        "rounds", "rounds", "rounds", "success", "rounds", "rounds", "rounds", "rounds", "rounds",
        "success", "success", "failure",
    ]
    assert _emotions(ds[0]) == [40, 45, 40, 45, 40, 35, 30, 25, 20, 15]
    assert _emotions(ds[11]) == [40, 35, 30, 25, 20, 15, 10, 5]
    first_reaction = ds[0].transcript[2].state
    assert first_reaction["change"] == 5 and first_reaction["thoughts"]
    assert ds[0].card_id == "d3c386e4-1b4d-4568-8abf-4d60a4fec355" and ds[0].category == "负面型"
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert [(s.score, s.judge, s.dimension) for s in scores] == [(f, "self", "emotion") for f in FINALS]
    summary = summarize(finals, [_emotions(d) for d in ds])
    assert summary.mean == pytest.approx(MEAN, abs=1e-4)
    assert (summary.n, summary.success, summary.failure) == (12, 3, 1)
    assert summary.trajectory[0] == 40 and summary.trajectory[1] == pytest.approx(525 / 12, abs=1e-4)
    manifest = RunDir(out).read_manifest()
    assert manifest.protocols["sage_zh"] == "sage" and manifest.tasks["sage_zh"]["simulator"] == "deepseek-v3"
    assert manifest.specs["sage_zh"].outcomes == ("success", "failure")
    assert (out / "leaderboard.json").is_file()


def test_simulator_from_the_folder_name_and_a_second_model(tmp_path: Path) -> None:
    src_dir = tmp_path / "deepseek-v3-2024-1227_based_simulator"
    src_dir.mkdir()
    src = src_dir / "gpt-4.5_result.jsonl"
    src.write_bytes(shared_sage_or_skip(RESULT_SAMPLE).read_bytes())
    out = tmp_path / "pub"
    assert _import(out, "gpt-4.5", src) == 0
    assert RunDir(out).read_manifest().tasks["sage_zh"]["simulator"] == "deepseek-v3-2024-1227"
    assert _import(out, "other", src) == 0
    assert {d.model for d in read_records(out / "dialogues.jsonl", DialogueRecord)} == {"gpt-4.5", "other"}
    assert _import(out, "other", src) == 2  # the same model twice


def test_malformed_files_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    row = json.loads(shared_sage_or_skip(RESULT_SAMPLE).read_text(encoding="utf-8").splitlines()[0])
    row["history"][0].pop("emotion-point")
    bad.write_text(json.dumps(row, ensure_ascii=False) + "\n{not json\n", encoding="utf-8")
    assert _import(tmp_path / "out", "m", bad) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.jsonl:1:" in err and "emotion-point" in err
    assert not (tmp_path / "out").exists()
    assert _import(tmp_path / "out", "m", tmp_path / "missing.jsonl") == 2
    assert "not found" in capsys.readouterr().err


def test_the_sage_report_block_from_an_imported_run(tmp_path: Path) -> None:
    from esc_bench.analysis.leaderboard import run_leaderboard
    from esc_bench.analysis.protocol_section import sections, sections_markdown
    from esc_bench.analysis.runs import load_run
    from esc_bench.records import ESC_EVAL_SPEC

    out = tmp_path / "pub"
    assert _import(out, "gpt-4.5") == 0
    board = run_leaderboard(load_run(out))
    [(spec, [row])] = sections(board)
    s = row.scores["emotion"]
    failed = row.n_dialogues - s.n
    assert (row.task, row.model, s.n, row.outcomes["success"], row.outcomes["failure"], failed) == (
        "sage_zh", "gpt-4.5", 12, 3, 1, 0)
    assert s.mean == pytest.approx(MEAN, abs=1e-4) and s.ci95 is not None and s.ci95[0] < MEAN < s.ci95[1]
    assert row.trajectory[:2] == [40.0, pytest.approx(525 / 12, abs=1e-4)] and len(row.trajectory) == 10
    # turn 9: the three successes carry 100 forward, the failure carries 5
    last = [15, 50, 40, 100, 95, 90, 25, 65, 75, 100, 100, 5]
    assert row.trajectory[9] == pytest.approx(sum(last) / 12, abs=1e-4)
    md = sections_markdown(board)
    assert "| sage_zh | gpt-4.5 | 63.3 [" in md and "| 3 | 1 | 12 | 0 |" in md
    assert sections(board.model_copy(update={"specs": {"sage_zh": ESC_EVAL_SPEC}})) == []


def test_report_shows_the_sage_block(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pub"
    assert _import(out, "gpt-4.5") == 0
    capsys.readouterr()
    assert main(["report", str(out), "--format", "md", "-o", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## Sentient agent (SAGE)" in md and "| sage_zh | gpt-4.5 | 63.3 [" in md
    assert main(["report", str(out)]) == 0
    console = capsys.readouterr().out
    assert "sentient agent (SAGE)" in console and "63.3 [" in console


def test_html_report_draws_the_trajectories(tmp_path: Path) -> None:
    out = tmp_path / "pub"
    assert _import(out, "gpt-4.5") == 0
    assert main(["report", str(out), "--format", "html", "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<h2 id="sage">Sentient agent (SAGE)</h2>' in page
    assert "sage_zh: emotion trajectories" in page and "gpt-4.5 (n=12)" in page
    section = page.split('<h2 id="sage">')[1].split('<h2 id="breakdowns">')[0]
    assert "<svg" in section and "| 3 | 1 |" not in section and "<td>63.3 [" in section
    # the dialogue browser shows each seeker line's emotion, change and inner thoughts
    assert '<div class="meta">emotion 45 (+5) — ' in page and '<div class="meta">emotion 40</div>' in page
