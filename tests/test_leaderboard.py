"""Leaderboard entries (hand-computed means, counts, CIs), the board, merging runs, the command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from esc_bench.analysis.leaderboard import MIXED, build_entries, build_leaderboard, merge_runs
from esc_bench.analysis.stats import bootstrap_mean_ci
from esc_bench.commands import leaderboard as leaderboard_cmd
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from esc_bench.records import DimensionScore, Leaderboard, LeaderboardEntry, ScoreRecord
from tests.support.synthetic_runs import dialogue, make_run

META = {"t": {"protocol": "esc-eval", "simulator": "esc-role", "judge": "J"}}


def _s(card: str, dim: str, score: int | None, *, model: str = "m", judge: str = "J", task: str = "t") -> ScoreRecord:
    return ScoreRecord(task=task, model=model, card_id=card, judge=judge, dimension=dim, score=score)


def _fixture():
    dialogues = [dialogue("t", "m", c) for c in ("1", "2", "3", "4")] + [dialogue("t", "m", "5", status="failed")]
    scores = [
        _s("1", "fluency", 4), _s("2", "fluency", 3), _s("3", "fluency", None), _s("4", "fluency", 2),
        _s("1", "empathy", 1), _s("2", "empathy", 2), _s("3", "empathy", 3),  # card 4: no empathy record
        _s("5", "fluency", 0),  # a stray score of the failed dialogue: ignored
        _s("1", "fluency", 0, judge="other"), _s("2", "overall", 0, judge="other"),  # another judge: ignored
    ]
    return dialogues, scores


def test_entry_means_counts_and_average_hand_computed() -> None:
    dialogues, scores = _fixture()
    [e] = build_entries(dialogues, scores, judge="J", meta_by_task=META)
    assert (e.task, e.model, e.n_dialogues, e.n_failed) == ("t", "m", 5, 1)
    assert (e.protocol, e.simulator, e.judge) == ("esc-eval", "esc-role", "J")
    flu = e.scores["fluency"]
    assert (flu.mean, flu.score_100, flu.n, flu.n_missing) == (3.0, 75.0, 3, 1)
    emp = e.scores["empathy"]
    assert (emp.mean, emp.n, emp.n_missing) == (2.0, 3, 1)
    assert e.scores["overall"] == DimensionScore(mean=None, score_100=None, ci95=None, n=0, n_missing=4)
    # per dialogue: card1 (4+1)/2, card2 (3+2)/2, card3 3/1, card4 2/1
    per_dialogue = [2.5, 2.5, 3.0, 2.0]
    assert e.average.mean == pytest.approx(sum(per_dialogue) / 4)
    assert e.average.n == 4 and e.average.n_missing == 0
    lo, hi = bootstrap_mean_ci([4.0, 3.0, 2.0], seed=0)
    assert flu.ci95 == pytest.approx((lo, hi), abs=1e-6)
    assert e.average.ci95 == pytest.approx(bootstrap_mean_ci(per_dialogue, seed=0), abs=1e-6)
    assert set(e.scores) == set(DIMENSION_NAMES)


def test_entries_use_only_the_named_judge_and_refuse_an_ambiguous_one() -> None:
    dialogues, scores = _fixture()
    [other] = build_entries(dialogues, scores, judge="other", meta_by_task={})
    assert other.scores["fluency"].mean == 0.0 and other.scores["overall"].n == 1
    assert other.judge == "other"  # no meta: the judge argument
    with pytest.raises(UserError, match="several judges"):
        build_entries(dialogues, scores, judge=None, meta_by_task={})
    only_j = [s for s in scores if s.judge == "J"]
    [e] = build_entries(dialogues, only_j, judge=None, meta_by_task={})
    assert e.scores["fluency"].n == 3


def test_an_unjudged_run_has_no_means_and_counts_missing() -> None:
    dialogues = [dialogue("t", "m", c) for c in "123"]
    [e] = build_entries(dialogues, [], judge="J", meta_by_task=META)
    assert e.average.mean is None and e.average.n_missing == 3 and e.scores["fluency"].n_missing == 3


def _entry(task: str, model: str, avg: float | None, **kw) -> LeaderboardEntry:
    ds = DimensionScore(mean=avg, score_100=None if avg is None else avg * 25, ci95=None, n=1 if avg else 0)
    return LeaderboardEntry(model=model, task=task, n_dialogues=1, n_failed=0,
                            scores={d: ds for d in DIMENSION_NAMES}, average=ds, **kw)


def test_board_sorts_by_task_then_average_and_names_common_settings() -> None:
    entries = [
        _entry("zh", "a", 2.0, judge="J", protocol="p"), _entry("en", "b", 1.0, judge="J", protocol="p"),
        _entry("en", "c", None, judge="J", protocol="p"), _entry("en", "a", 3.0, judge="J", protocol="p"),
    ]
    board = build_leaderboard("r", "2024-01-01T00:00:00+00:00", entries)
    assert [(e.task, e.model) for e in board.entries] == [("en", "a"), ("en", "b"), ("en", "c"), ("zh", "a")]
    assert (board.protocol, board.judge, board.simulator) == ("p", "J", None)
    mixed = build_leaderboard("r", "x", [*entries, _entry("en", "d", 1.5, judge="K")])
    assert mixed.judge == MIXED and mixed.protocol == "p"


def test_merge_runs_combines_runs_with_the_same_settings(tmp_path: Path) -> None:
    make_run(tmp_path / "r1", models=["a"], tasks={"t_en": {"language": "en"}})
    make_run(tmp_path / "r2", models=["b"], tasks={"t_en": {"language": "en"}, "t_zh": {"language": "zh"}})
    board = merge_runs([tmp_path / "r1", tmp_path / "r2"])
    assert board.run_id == "r1+r2" and board.judge == "esc-rank" and board.protocol == "esc-eval"
    assert {(e.task, e.model) for e in board.entries} == {("t_en", "a"), ("t_en", "b"), ("t_zh", "b")}
    assert all(e.average.ci95 is not None for e in board.entries)


def test_merge_runs_refuses_mixed_judges_unless_allowed(tmp_path: Path) -> None:
    make_run(tmp_path / "r1", models=["a"])
    make_run(tmp_path / "r2", models=["b"], judge="gpt-judge")
    with pytest.raises(UserError, match=r"judge: esc-rank \(run r1\); gpt-judge \(run r2\).*--allow-mixed"):
        merge_runs([tmp_path / "r1", tmp_path / "r2"])
    board = merge_runs([tmp_path / "r1", tmp_path / "r2"], allow_mixed=True)
    assert board.judge == MIXED
    assert {e.judge for e in board.entries} == {"esc-rank", "gpt-judge"}


def test_merge_runs_keeps_a_model_found_in_two_runs_apart(tmp_path: Path) -> None:
    make_run(tmp_path / "r1", models=["a"])
    make_run(tmp_path / "r2", models=["a"], score=lambda *_: 4)
    board = merge_runs([tmp_path / "r1", tmp_path / "r2"])
    assert sorted(e.model for e in board.entries) == ["a@r1", "a@r2"]
    assert board.entries[0].model == "a@r2" and board.entries[0].average.mean == 4.0


def test_leaderboard_command_writes_a_valid_board(tmp_path: Path, capsys) -> None:
    make_run(tmp_path / "r1", models=["a", "b"])
    out = tmp_path / "out" / "leaderboard.json"
    parser = argparse.ArgumentParser()
    leaderboard_cmd.configure(parser)
    args = parser.parse_args([str(tmp_path / "r1"), "-o", str(out)])
    assert leaderboard_cmd.run(args) == 0
    board = Leaderboard.model_validate_json(out.read_bytes())
    assert [e.model for e in board.entries] and board.schema_version == 1
    assert "fluency" in capsys.readouterr().out
    # '-' = JSON on stdout (the table goes to stderr)
    assert leaderboard_cmd.run(parser.parse_args([str(tmp_path / "r1"), "-o", "-"])) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run_id"] == "r1" and "fluency" in captured.err


def test_leaderboard_command_errors_are_one_line(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    leaderboard_cmd.configure(parser)
    with pytest.raises(UserError, match="not a folder"):
        leaderboard_cmd.run(parser.parse_args([str(tmp_path / "nope")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an esc-bench run folder"):
        leaderboard_cmd.run(parser.parse_args([str(tmp_path / "empty")]))


def test_the_engine_finalizer_builds_the_same_board(tmp_path: Path) -> None:
    """The lead's finalize step calls build_entries/build_leaderboard with seed=: same numbers."""
    from esc_bench.engine.finalize import build_run_leaderboard
    from esc_bench.store.run_dir import RunDir

    make_run(tmp_path / "r1", models=["a", "b"], failed={("t_en", "a", 2)})
    board = build_run_leaderboard(RunDir(tmp_path / "r1"), seed=0)
    merged = merge_runs([tmp_path / "r1"])
    assert [e.model_dump() for e in board.entries] == [e.model_dump() for e in merged.entries]
    assert board.entries[[e.model for e in board.entries].index("a")].n_failed == 1


def test_a_run_with_only_its_leaderboard_file_still_merges(tmp_path: Path) -> None:
    from esc_bench.store.run_dir import RunDir

    make_run(tmp_path / "r1", models=["a"])
    kept = merge_runs([tmp_path / "r1"])
    RunDir(tmp_path / "r1").write_leaderboard(kept)
    (tmp_path / "r1" / "dialogues.jsonl").unlink()
    (tmp_path / "r1" / "scores.jsonl").unlink()
    again = merge_runs([tmp_path / "r1"])
    assert [e.model_dump() for e in again.entries] == [e.model_dump() for e in kept.entries]
