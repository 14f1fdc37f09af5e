"""Paired comparison: pairing by (task, card), differences, CIs, tests, verdicts, refusals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from esc_bench.analysis.compare import NO_DIFFERENCE, Side, compare_sides
from esc_bench.analysis.runs import load_run
from esc_bench.analysis.stats import paired_bootstrap_diff_ci, paired_test_result
from esc_bench.commands import compare as compare_cmd
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import UserError
from tests.support.synthetic_runs import make_run


def run_compare(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    compare_cmd.configure(parser)
    return compare_cmd.run(parser.parse_args(list(argv)))


def base(task: str, model: str, i: int, dim: str) -> int:
    return (i + DIMENSION_NAMES.index(dim)) % 4  # 0..3


def test_a_uniformly_better_model_is_detected(tmp_path: Path) -> None:
    make_run(tmp_path / "ra", models=["m"], n_cards=12, score=lambda t, m, i, d: base(t, m, i, d) + 1)
    make_run(tmp_path / "rb", models=["m"], n_cards=12, score=base)
    a = Side.from_run(load_run(tmp_path / "ra"), "m", "A")
    b = Side.from_run(load_run(tmp_path / "rb"), "m", "B")
    cmp = compare_sides(a, b)
    assert cmp.n_pairs == 12 and cmp.tasks == ["t_en"] and not cmp.differences
    for row in cmp.rows:
        # B − A, counted from B's side (orientation of issue 9: an improvement of B is positive)
        assert (row.n, row.diff, row.ci95, row.win, row.tie, row.loss) == (12, -1.0, (-1.0, -1.0), 0, 0, 12)
        assert row.verdict == "A higher"
        assert row.p_value == pytest.approx(2 / 2**12)  # all 12 differences positive and equal
    assert [r.dimension for r in cmp.rows] == [*DIMENSION_NAMES, "average"]


def test_identical_models_show_no_detectable_difference(tmp_path: Path) -> None:
    make_run(tmp_path / "r", models=["a", "b"], n_cards=8, score=base)
    run = load_run(tmp_path / "r")
    cmp = compare_sides(Side.from_run(run, "a"), Side.from_run(run, "b"))
    for row in cmp.rows:
        assert row.diff == 0.0 and row.ci95 == (0.0, 0.0) and row.p_value == 1.0 and row.tie == 8
        assert row.verdict == NO_DIFFERENCE


def test_known_values_for_a_noisy_difference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = {m: rng.integers(0, 5, (30, 7)) for m in ("a", "b")}
    make_run(tmp_path / "r", models=["a", "b"], n_cards=30,
             score=lambda t, m, i, d: int(table[m][i, DIMENSION_NAMES.index(d)]))
    run = load_run(tmp_path / "r")
    cmp = compare_sides(Side.from_run(run, "a"), Side.from_run(run, "b"), seed=3)
    row = cmp.rows[DIMENSION_NAMES.index("empathy")]
    xa, xb = table["a"][:, 2].astype(float), table["b"][:, 2].astype(float)
    assert row.diff == pytest.approx((xb - xa).mean())  # B − A
    assert row.ci95 == pytest.approx(paired_bootstrap_diff_ci(xb, xa, seed=3), abs=1e-6)
    assert row.p_value == pytest.approx(paired_test_result(xa, xb).p_value, abs=1e-6)
    assert (row.win, row.tie, row.loss) == (int((xb > xa).sum()), int((xa == xb).sum()), int((xb < xa).sum()))
    lo, hi = row.ci95
    assert (row.verdict == NO_DIFFERENCE) == (lo <= 0 <= hi)
    avg = cmp.rows[-1]
    assert avg.dimension == "average" and avg.diff == pytest.approx((table["b"].mean(1) - table["a"].mean(1)).mean(), abs=1e-6)


def test_pairing_by_task_and_card_skips_failed_missing_and_unpaired(tmp_path: Path) -> None:
    def score(t, m, i, d):
        if m == "a" and i == 1 and d == "fluency":
            return None  # missing for A: this pair drops out of fluency only
        return base(t, m, i, d)

    make_run(tmp_path / "ra", models=["a"], n_cards=6, score=score, failed={("t_en", "a", 0)})
    make_run(tmp_path / "rb", models=["b"], n_cards=8, score=base)  # cards 6, 7 only in B
    cmp = compare_sides(Side.from_run(load_run(tmp_path / "ra"), "a"), Side.from_run(load_run(tmp_path / "rb"), "b"))
    assert (cmp.n_pairs, cmp.n_failed, cmp.n_only_a, cmp.n_only_b) == (5, 1, 0, 2)
    by_dim = {r.dimension: r for r in cmp.rows}
    assert by_dim["fluency"].n == 4 and by_dim["empathy"].n == 5 and by_dim["average"].n == 5


def test_command_compares_two_models_of_one_run_and_writes_json(tmp_path: Path, capsys) -> None:
    make_run(tmp_path / "r", models=["a", "b"], n_cards=6, score=base)
    out = tmp_path / "cmp.json"
    assert run_compare(str(tmp_path / "r"), "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "a (A) vs b (B)" in text and NO_DIFFERENCE in text and "win/tie/loss" in text
    data = json.loads(out.read_text())
    assert data["label_a"] == "a" and data["label_b"] == "b" and data["n_pairs"] == 6
    assert [r["dimension"] for r in data["rows"]][-1] == "average"
    assert data["settings"]["t_en"]["a"] == {"protocol": "esc-eval", "simulator": "esc-role", "judge": "esc-rank"}
    # explicit model names
    assert run_compare(str(tmp_path / "r"), "--model-a", "b", "--model-b", "a") == 0
    assert "b (A) vs a (B)" in capsys.readouterr().out


def test_command_needs_model_names_when_a_run_has_several(tmp_path: Path) -> None:
    make_run(tmp_path / "r3", models=["a", "b", "c"])
    make_run(tmp_path / "r1", models=["x"])
    with pytest.raises(UserError, match="holds 3 models"):
        run_compare(str(tmp_path / "r3"))
    with pytest.raises(UserError, match="--model-a"):
        run_compare(str(tmp_path / "r3"), str(tmp_path / "r1"))
    assert run_compare(str(tmp_path / "r3"), str(tmp_path / "r1"), "--model-a", "c") == 0
    with pytest.raises(UserError, match="no dialogues of model 'nope'"):
        run_compare(str(tmp_path / "r3"), str(tmp_path / "r1"), "--model-a", "nope")
    with pytest.raises(UserError, match="nothing to compare"):
        run_compare(str(tmp_path / "r1"), "--model-a", "x", "--model-b", "x")


def test_same_model_in_two_runs_gets_run_labels(tmp_path: Path, capsys) -> None:
    make_run(tmp_path / "v1", models=["m"], score=base)
    make_run(tmp_path / "v2", models=["m"], score=lambda *a: base(*a) + 1)
    assert run_compare(str(tmp_path / "v2"), str(tmp_path / "v1")) == 0
    assert "m@v2 higher" in capsys.readouterr().out


def test_refuses_different_settings_unless_forced(tmp_path: Path, capsys) -> None:
    make_run(tmp_path / "ra", models=["a"], judge="esc-rank")
    make_run(tmp_path / "rb", models=["b"], judge="gpt-judge",
             tasks={"t_en": {"language": "en", "simulator": "gpt-seeker"}})
    with pytest.raises(UserError, match=r"simulator esc-role \(a\) vs gpt-seeker \(b\).*judge esc-rank \(a\) vs gpt-judge \(b\).*--force"):
        run_compare(str(tmp_path / "ra"), str(tmp_path / "rb"))
    assert run_compare(str(tmp_path / "ra"), str(tmp_path / "rb"), "--force") == 0
    captured = capsys.readouterr()
    assert "not like for like" in captured.err and "a (A) vs b (B)" in captured.out


def test_no_common_cards_is_an_error(tmp_path: Path) -> None:
    make_run(tmp_path / "ra", models=["a"], tasks={"t_en": {"language": "en"}})
    make_run(tmp_path / "rb", models=["b"], tasks={"t_zh": {"language": "zh"}})
    with pytest.raises(UserError, match="no \\(task, card\\) in common"):
        run_compare(str(tmp_path / "ra"), str(tmp_path / "rb"))


def test_holm_adjustment_matches_hand_computed_values() -> None:
    from esc_bench.analysis.compare import holm

    # p sorted: 0.01, 0.02, 0.03, 0.04 -> x4, x3, x2, x1, then made monotone.
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_the_average_row_uses_only_dimensions_scored_on_both_sides(tmp_path: Path) -> None:
    # A has no fluency score on any card; B's fluency is 4, every other dimension 2 on both sides.
    make_run(tmp_path / "ra", models=["a"], n_cards=8, score=lambda t, m, i, d: None if d == "fluency" else 2)
    make_run(tmp_path / "rb", models=["b"], n_cards=8, score=lambda t, m, i, d: 4 if d == "fluency" else 2)
    cmp = compare_sides(Side.from_run(load_run(tmp_path / "ra"), "a"), Side.from_run(load_run(tmp_path / "rb"), "b"))
    by_dim = {r.dimension: r for r in cmp.rows}
    assert by_dim["fluency"].n == 0
    avg = by_dim["average"]
    # 6-dimension means on both sides, not 2.0 (6 dims) against 16/7 (7 dims)
    assert (avg.n, avg.mean_a, avg.mean_b, avg.diff) == (8, 2.0, 2.0, 0.0)
    assert (avg.win, avg.tie, avg.loss) == (0, 8, 0) and avg.verdict == NO_DIFFERENCE


def test_the_average_row_skips_a_pair_with_no_dimension_scored_on_both_sides(tmp_path: Path) -> None:
    # Card 0: A scored only fluency, B everything but fluency: nothing in common, so no average pair.
    make_run(tmp_path / "ra", models=["a"], n_cards=4,
             score=lambda t, m, i, d: (3 if d == "fluency" else None) if i == 0 else 3)
    make_run(tmp_path / "rb", models=["b"], n_cards=4,
             score=lambda t, m, i, d: (None if d == "fluency" else 1) if i == 0 else 1)
    cmp = compare_sides(Side.from_run(load_run(tmp_path / "ra"), "a"), Side.from_run(load_run(tmp_path / "rb"), "b"))
    avg = cmp.rows[-1]
    assert avg.n == 3 and avg.diff == -2.0  # B − A
