"""Agreement metrics on crafted data, the reference formats, matching, and the command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from scipy import stats

from esc_bench.analysis.agreement import (
    ALL,
    agreement,
    agreement_row,
    confusion,
    krippendorff_alpha,
    metrics_from_confusion,
    qwk,
    spearman,
)
from esc_bench.analysis.agreement_refs import load_reference_file, normalize_dimension
from esc_bench.commands import agreement as agreement_cmd
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.errors import DataError, UserError
from esc_bench.records import ScoreRecord
from tests.support.synthetic_runs import make_run


def pairs(judge: list[int], ref: list[int], dim: str = "empathy"):
    return [(("t", "m", str(i)), dim, j, r) for i, (j, r) in enumerate(zip(judge, ref))]


def test_dimension_names_and_upstream_keys() -> None:
    assert normalize_dimension("Empathy") == "empathy"
    assert normalize_dimension("empathic") == "empathy"
    assert normalize_dimension("diversity") == "expression"
    assert normalize_dimension("suggestion") == "information"
    assert normalize_dimension("tech") == "skillful"
    assert normalize_dimension("human") == "humanoid"
    with pytest.raises(ValueError, match="unknown dimension"):
        normalize_dimension("kindness")


def test_perfect_agreement() -> None:
    j = [0, 1, 2, 3, 4, 2, 3, 1]
    row = agreement_row("empathy", pairs(j, j))
    v = {k: m.value for k, m in row.metrics.items()}
    assert v == {"exact": 1.0, "within1": 1.0, "qwk": 1.0, "spearman": 1.0, "alpha": 1.0, "bias": 0.0}
    assert row.n == 8 and row.metrics["exact"].ci95 == (1.0, 1.0)


def test_off_by_one_everywhere() -> None:
    ref = [0, 1, 2, 3, 0, 1, 2, 3]
    row = agreement_row("empathy", pairs([r + 1 for r in ref], ref))
    assert row.metrics["exact"].value == 0.0 and row.metrics["within1"].value == 1.0
    assert row.metrics["bias"].value == 1.0


def test_quadratic_weighted_kappa_hand_computed() -> None:
    # judge [0,1,2], ref [0,2,2]: observed weighted disagreement sum = 1/16 (one cell off by 1)
    # rows (judge) 0:1 1:1 2:1; cols (ref) 0:1 2:2; expected E_ij = r_i c_j / 3
    # sum W*E = (1/3)[(0-0)^2*1 + (0-2)^2*2 + (1-0)^2*1 + (1-2)^2*2 + (2-0)^2*1 + 0] / 16 = (1/3)(8+1+2+4)/16
    obs = 1 / 16
    exp = (1 / 3) * (8 + 1 + 2 + 4) / 16
    assert qwk([0, 1, 2], [0, 2, 2]) == pytest.approx(1 - obs / exp)
    assert qwk([2, 2, 2], [2, 2, 2]) is None  # undefined: no expected disagreement


def test_spearman_and_alpha_match_scipy_and_the_krippendorff_package() -> None:
    rng = np.random.default_rng(2)
    for n in (6, 40, 250):
        ref = rng.integers(0, 5, n)
        j = np.clip(ref + rng.integers(-1, 2, n), 0, 4)
        m = metrics_from_confusion(confusion(j, ref))
        expected_rho = stats.spearmanr(j, ref).statistic
        expected_alpha = krippendorff.alpha(reliability_data=np.vstack([j, ref]).astype(float),
                                            level_of_measurement="ordinal", value_domain=[0, 1, 2, 3, 4])
        assert float(m["spearman"]) == pytest.approx(expected_rho) == spearman(list(j), list(ref))
        assert float(m["alpha"]) == pytest.approx(expected_alpha)
        assert krippendorff_alpha(list(j), list(ref)) == pytest.approx(expected_alpha)
        assert float(m["exact"]) == pytest.approx(np.mean(j == ref))
        assert float(m["within1"]) == pytest.approx(np.mean(np.abs(j - ref) <= 1))
    assert spearman([1, 1, 1], [0, 1, 2]) is None and krippendorff_alpha([1], [1]) is None


def test_bootstrap_cis_are_deterministic_and_contain_the_estimate() -> None:
    rng = np.random.default_rng(8)
    ref = rng.integers(0, 5, 80)
    j = np.clip(ref + rng.integers(-2, 2, 80), 0, 4)
    p = pairs(list(j), list(ref))
    r1, r2 = agreement_row("empathy", p, seed=1), agreement_row("empathy", p, seed=1)
    assert r1.to_dict() == r2.to_dict()
    for name, m in r1.metrics.items():
        lo, hi = m.ci95
        assert lo <= m.value <= hi, name


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reference_formats(tmp_path: Path) -> None:
    jl = _write_jsonl(tmp_path / "ref.jsonl", [
        {"card_id": 7, "dimension": "empathic", "score": 3},
        {"task": "t_en", "model": "a", "card_id": "8", "dimension": "Overall", "score": -1},
    ])
    refs = load_reference_file(jl)
    assert (refs[0].card_id, refs[0].dimension, refs[0].score, refs[0].task) == ("7", "empathy", 3, None)
    assert refs[1].score is None and refs[1].model == "a"
    csv_path = tmp_path / "ref.csv"
    csv_path.write_text("task,model,card_id,dimension,score\nt_en,,7,tech,4\n,,9,fluency,\n", encoding="utf-8")
    refs = load_reference_file(csv_path)
    assert (refs[0].task, refs[0].model, refs[0].dimension, refs[0].score) == ("t_en", None, "skillful", 4)
    assert refs[1].score is None
    js = tmp_path / "ref.json"
    js.write_text(json.dumps([{"card_id": "1", "dimension": "human", "score": 2.0}]))
    assert load_reference_file(js)[0].dimension == "humanoid"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"card_id": 1, "dimension": "empathy", "score": 5}, r"ref.jsonl:1: score 5 is outside 0-4"),
        ({"card_id": 1, "dimension": "empathy", "score": "high"}, r"not a number"),
        ({"card_id": 1, "dimension": "empathy", "score": 2.5}, r"not a whole number"),
        ({"card_id": 1, "dimension": "warmth", "score": 2}, r"unknown dimension 'warmth'"),
        ({"card_id": 1, "score": 2}, r"missing field 'dimension'"),
    ],
)
def test_reference_errors_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_reference_file(_write_jsonl(tmp_path / "ref.jsonl", [row]))


def _judged(model: str, card: str, dim: str, score: int | None, task: str = "t_en") -> ScoreRecord:
    return ScoreRecord(task=task, model=model, card_id=card, judge="J", dimension=dim, score=score)


def test_matching_counts_and_ambiguity(tmp_path: Path) -> None:
    judged = [_judged("a", "1", "empathy", 3), _judged("a", "2", "empathy", None), _judged("a", "3", "empathy", 2),
              _judged("a", "4", "empathy", 1)]
    refs = load_reference_file(_write_jsonl(tmp_path / "r.jsonl", [
        {"card_id": "1", "dimension": "empathy", "score": 3},
        {"card_id": "2", "dimension": "empathy", "score": 3},  # judge missing
        {"card_id": "3", "dimension": "empathy", "score": None},  # reference missing
        {"card_id": "99", "dimension": "empathy", "score": 1},  # no such dialogue
    ]))
    res = agreement(judged, refs)
    assert (res.n_judge_missing, res.n_ref_missing, res.n_unmatched_ref, res.n_unreferenced) == (1, 1, 1, 1)
    assert [r.dimension for r in res.rows] == ["empathy", ALL] and res.rows[0].n == 1
    two_models = judged + [_judged("b", "1", "empathy", 0)]
    with pytest.raises(UserError, match="matches 2 scored dialogues"):
        agreement(two_models, refs)


def test_pooled_row_keeps_each_dialogues_dimensions_together() -> None:
    rng = np.random.default_rng(4)
    p = []
    for i in range(30):
        for dim in DIMENSION_NAMES:
            r = int(rng.integers(0, 5))
            p.append((("t", "m", str(i)), dim, int(np.clip(r + rng.integers(-1, 2), 0, 4)), r))
    row = agreement_row(ALL, p)
    assert row.n == 210
    j, r = [x[2] for x in p], [x[3] for x in p]
    assert row.metrics["exact"].value == pytest.approx(np.mean(np.array(j) == np.array(r)), abs=1e-6)


def run_agreement(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    agreement_cmd.configure(parser)
    return agreement_cmd.run(parser.parse_args(list(argv)))


def test_command_against_a_reference_file(tmp_path: Path, capsys) -> None:
    score = lambda t, m, i, d: (i + DIMENSION_NAMES.index(d)) % 5  # noqa: E731
    make_run(tmp_path / "run", models=["a"], n_cards=10, score=score)
    rows = []
    for i in range(10):
        for dim, key in (("fluency", "fluency"), ("expression", "diversity"), ("empathy", "empathic")):
            s = score("t_en", "a", i, dim)
            rows.append({"card_id": f"t_en-{i}", "dimension": key, "score": s if i % 2 else min(4, s + 1)})
    ref = _write_jsonl(tmp_path / "human.jsonl", rows)
    out = tmp_path / "agree.json"
    assert run_agreement(str(tmp_path / "run"), "--reference", str(ref), "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "esc-rank vs human.jsonl" in text and "exact acc" in text and "70.53" in text
    data = json.loads(out.read_text())
    by_dim = {r["dimension"]: r for r in data["rows"]}
    assert set(by_dim) == {"fluency", "expression", "empathy", ALL}
    # judge == reference on odd cards; on even cards reference = judge + 1 unless the judge gave 4
    exact_expected = np.mean([1 if i % 2 or score("t_en", "a", i, "fluency") == 4 else 0 for i in range(10)])
    assert by_dim["fluency"]["exact"]["value"] == pytest.approx(exact_expected)
    assert by_dim["fluency"]["within1"]["value"] == 1.0 and by_dim[ALL]["n"] == 30
    assert data["n_unreferenced"] == 10 * 7 - 30


def test_command_against_another_judge_in_the_same_run(tmp_path: Path, capsys) -> None:
    extra = [ScoreRecord(task="t_en", model="a", card_id=f"t_en-{i}", judge="gpt", dimension=d, score=(i + 1) % 5)
             for i in range(6) for d in DIMENSION_NAMES]
    make_run(tmp_path / "run", models=["a"], n_cards=6, extra_scores=extra)
    with pytest.raises(UserError, match="same judge"):
        run_agreement(str(tmp_path / "run"), "--reference", str(tmp_path / "run"))
    assert run_agreement(str(tmp_path / "run"), "--judge", "gpt", "--reference", str(tmp_path / "run"),
                         "--reference-judge", "esc-rank", "--json", "-") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["judge"] == "gpt" and data["reference"].startswith("esc-rank")
    assert data["rows"][-1]["n"] == 42 and "agreement: gpt vs esc-rank" in captured.err
    with pytest.raises(UserError, match="no scores by judge 'nobody'"):
        run_agreement(str(tmp_path / "run"), "--judge", "nobody", "--reference", str(tmp_path / "run"))


def test_a_run_reference_with_other_transcripts_is_refused_unless_forced(tmp_path: Path, capsys) -> None:
    # Same card ids, same scores, but cards 1 and 3 were different conversations in the reference run.
    make_run(tmp_path / "mine", models=["a"], n_cards=6)
    make_run(tmp_path / "theirs", models=["a"], n_cards=6,
             text=lambda t, m, i: "a different conversation" if i in (1, 3) else "")
    with pytest.raises(UserError, match=r"^2 scored dialogues .* have a different transcript in .*--force"):
        run_agreement(str(tmp_path / "mine"), "--reference", str(tmp_path / "theirs"))
    capsys.readouterr()
    assert run_agreement(str(tmp_path / "mine"), "--reference", str(tmp_path / "theirs"), "--force",
                         "--json", "-") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["rows"][-1]["n"] == 4 * 7 and data["n_unreferenced"] == 0
    assert "warning" in captured.err and "2 scored dialogues" in captured.err
    # the same transcripts in another run folder: compared as before
    make_run(tmp_path / "copy", models=["a"], n_cards=6)
    assert run_agreement(str(tmp_path / "mine"), "--reference", str(tmp_path / "copy"), "--json", "-") == 0
    assert json.loads(capsys.readouterr().out)["rows"][-1]["n"] == 6 * 7


def test_a_missing_dialogue_record_counts_as_a_different_transcript() -> None:
    from esc_bench.analysis.agreement_match import transcript_digest, transcript_mismatches
    from esc_bench.analysis.agreement_refs import refs_from_scores
    from tests.support.synthetic_runs import dialogue

    judged = [_judged("a", "1", "empathy", 3), _judged("a", "2", "empathy", 2)]
    refs = refs_from_scores(judged)
    d1, d2 = dialogue("t_en", "a", "1"), dialogue("t_en", "a", "2")
    assert transcript_digest(d1) != transcript_digest(d2)
    assert transcript_digest(d1) == transcript_digest(dialogue("t_zh", "a", "1", text="I need help (1)"))
    assert transcript_mismatches(judged, refs, [d1, d2], [d1, d2]) == set()
    assert transcript_mismatches(judged, refs, [d1, d2], [d1]) == {("t_en", "a", "2")}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("ref.jsonl", b'{"card_id": 1, "dimension": "empathy", "score": 1e400}\n', r"ref.jsonl:1: score inf is not a finite"),
        ("ref.jsonl", b'{"card_id": 1, "dimension": "empathy", "score": "inf"}\n', r"score 'inf' is not a finite"),
        ("ref.jsonl", b'{"card_id": 1, "dimension": "empathy", "score": NaN}\n', r"score nan is not a finite"),
        ("ref.jsonl", b'{"card_id": 1, "dimension": "empathy", "score": -Infinity}\n', r"not a finite"),
        ("ref.jsonl", b'{"card_id": 1, "dimension": "empathy", "score": 1' + b"0" * 400 + b"}\n", r"not a number"),
        ("ref.csv", b"card_id,dimension,score\n1,empathy,inf\n", r"ref.csv:2: score 'inf' is not a finite"),
        ("ref.json", b"[1, 2]", r"ref.json\[0\]: expected a score object, got int"),
        ("ref.json", b'[{"card_id": 1, "dimension": "empathy", "score": 2}, "x"]', r"ref.json\[1\]: expected a score object"),
        ("ref.jsonl", '{"card_id": 1, "dimension": "empathy", "score": 2, "note": "é"}\n'.encode("latin-1"),
         r"ref.jsonl:1: not UTF-8 text"),
        ("ref.csv", "card_id,dimension,score,note\n1,empathy,2,café\n".encode("cp1252"), r"ref.csv:2: not UTF-8 text"),
    ],
)
def test_bad_reference_files_are_one_line_data_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        load_reference_file(path)
    assert "\n" not in str(info.value)
