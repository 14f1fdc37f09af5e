"""Importing ESC-Eval's upstream transcript and score files as a run folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from esc_bench.ingest.upstream_results import parse_scores, parse_transcripts
from esc_bench.commands import import_upstream as import_cmd
from esc_bench.dimensions import BY_KEY, DIMENSION_NAMES
from esc_bench.errors import DataError, UserError
from esc_bench.records import Leaderboard
from esc_bench.store.run_dir import RunDir

SHARED_ESC_EVAL = Path(__file__).resolve().parents[2] / "shared" / "esc-eval"
FW = "\uff1a"  # full-width colon, as upstream writes it
KEYS = ["fluency", "diversity", "empathic", "suggestion", "human", "tech", "overall"]


def synthetic_transcript(n_rounds: int = 5, tag: str = "") -> list[str]:
    lines = [f"AI assistant{FW}Hi, tell me what is on your mind.{tag}"]
    for r in range(n_rounds):
        lines.append(f"ESC-Role{FW}Seeker line {r}: work keeps me up at night.{tag}")
        lines.append(f"AI assistant{FW}Supporter line {r}: that sounds exhausting.{tag}")
    return lines


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def run_import(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    import_cmd.configure(parser)
    return import_cmd.run(parser.parse_args(list(argv)))


def test_parse_transcripts_splits_speakers_on_the_full_width_colon(tmp_path: Path) -> None:
    p = write(tmp_path / "t.json", {"1": synthetic_transcript(), "0": synthetic_transcript(2, "：x")})
    out = parse_transcripts(p)
    assert list(out) == ["0", "1"]  # index order
    turns = out["1"]
    assert len(turns) == 11 and [t.speaker for t in turns] == ["supporter"] + ["seeker", "supporter"] * 5
    assert turns[0].text == "Hi, tell me what is on your mind."
    assert out["0"][1].text.endswith("：x")  # only the first colon separates the speaker


def test_parse_transcripts_rejects_an_unknown_speaker(tmp_path: Path) -> None:
    p = write(tmp_path / "t.json", {"0": ["AI assistant：hi", "Someone：hello"]})
    with pytest.raises(DataError, match="index 0 line 1"):
        parse_transcripts(p)


def test_parse_scores_maps_upstream_keys_and_minus_one(tmp_path: Path) -> None:
    p = write(tmp_path / "s.json", {"0": {k: i % 5 for i, k in enumerate(KEYS)} | {"human": -1}})
    row = parse_scores(p)["0"]
    assert row["expression"] == 1 and row["information"] == 3 and row["skillful"] == 0
    assert row["humanoid"] is None and set(row) == set(DIMENSION_NAMES)
    with pytest.raises(DataError, match="unknown dimension 'warmth'"):
        parse_scores(write(tmp_path / "bad.json", {"0": {"warmth": 2}}))
    with pytest.raises(DataError, match="outside 0-4"):
        parse_scores(write(tmp_path / "bad2.json", {"0": {"fluency": 7}}))


def test_import_writes_a_run_folder(tmp_path: Path, capsys) -> None:
    tr = write(tmp_path / "llama_en.json", {str(i): synthetic_transcript() for i in range(3)} | {"3": []})
    sc = write(tmp_path / "llama_en_scores.json", {
        "0": dict(zip(KEYS, [3, 3, 3, 3, 1, 3, 2])),
        "1": dict(zip(KEYS, [4, 2, 3, 3, 2, 3, 2])),
        "2": dict(zip(KEYS, [2, 3, -1, 3, 2, 3, 2])),
    })
    out = tmp_path / "upstream"
    assert run_import("--transcripts", str(tr), "--scores", str(sc), "--language", "english",
                      "--model", "llama3", "-o", str(out)) == 0
    assert "esc_eval_en" in capsys.readouterr().out
    rd = RunDir(out)
    dialogues = rd.read_dialogues()
    assert [d.card_id for d in dialogues] == ["0", "1", "2", "3"]
    assert all(d.task == "esc_eval_en" and d.model == "llama3" and d.language == "en" for d in dialogues)
    assert [d.status for d in dialogues] == ["ok", "ok", "ok", "failed"]
    scores = rd.read_scores()
    assert len(scores) == 21 and {s.judge for s in scores} == {"esc-rank"}
    missing = [s for s in scores if s.score is None]
    assert [(s.card_id, s.dimension) for s in missing] == [("2", "empathy")]
    m = rd.read_manifest()
    assert m.tasks["esc_eval_en"]["protocol"] == "esc-eval" and m.tasks["esc_eval_en"]["rounds"] == 5
    assert m.tasks["esc_eval_en"]["simulator"] == "esc-role" and m.cards["esc_eval_en"] == ["0", "1", "2", "3"]
    board = Leaderboard.model_validate_json(rd.leaderboard_path.read_bytes())
    [e] = board.entries
    assert (e.n_dialogues, e.n_failed) == (4, 1)
    assert e.scores["fluency"].mean == 3.0 and e.scores["empathy"].n == 2 and e.scores["empathy"].n_missing == 1
    assert e.scores["humanoid"].mean == pytest.approx(5 / 3, abs=1e-6)
    # the other language into the same folder; the same model and task again is refused
    assert run_import("--transcripts", str(tr), "--language", "zh", "--model", "llama3", "-o", str(out)) == 0
    assert set(RunDir(out).read_manifest().tasks) == {"esc_eval_en", "esc_eval_zh"}
    with pytest.raises(UserError, match="already holds llama3 on esc_eval_en"):
        run_import("--transcripts", str(tr), "--language", "en", "--model", "llama3", "-o", str(out))


def test_import_with_cards_uses_their_ids_and_metadata(tmp_path: Path) -> None:
    tr = write(tmp_path / "t.json", {"0": synthetic_transcript(), "1": synthetic_transcript()})
    cards = write(tmp_path / "cards.json", [
        {"id": 501, "base": "A teacher, 40.", "res": "工作学习", "source": "ESconv", "language": "english"},
        {"id": 502, "base": "A student, 19.", "res": "家庭生活", "source": "Psych", "language": "english"},
    ])
    out = tmp_path / "run"
    assert run_import("--transcripts", str(tr), "--language", "en", "--model", "m", "--cards", str(cards),
                      "-o", str(out)) == 0
    ds = RunDir(out).read_dialogues()
    assert [(d.card_id, d.source, d.category) for d in ds] == [("501", "ESconv", "工作学习"), ("502", "Psych", "家庭生活")]
    with pytest.raises(UserError, match="not --language 'zh'"):
        run_import("--transcripts", str(tr), "--language", "zh", "--model", "m", "--cards", str(cards),
                   "-o", str(tmp_path / "run2"))
    few = write(tmp_path / "few.json", [{"id": 1, "base": "x", "language": "english"}])
    with pytest.raises(DataError, match="index 1 is not a position in the card file"):
        run_import("--transcripts", str(tr), "--language", "en", "--model", "m", "--cards", str(few),
                   "-o", str(tmp_path / "run3"))


def test_import_refuses_scores_without_transcripts_and_foreign_folders(tmp_path: Path) -> None:
    tr = write(tmp_path / "t.json", {"0": synthetic_transcript()})
    sc = write(tmp_path / "s.json", {"0": dict.fromkeys(KEYS, 2), "5": dict.fromkeys(KEYS, 2)})
    with pytest.raises(DataError, match="indices with no transcript: 5"):
        run_import("--transcripts", str(tr), "--scores", str(sc), "--language", "en", "--model", "m",
                   "-o", str(tmp_path / "r"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an esc-bench run folder"):
        run_import("--transcripts", str(tr), "--language", "en", "--model", "m", "-o", str(other))
    with pytest.raises(UserError, match="not found"):
        run_import("--transcripts", str(tmp_path / "nope.json"), "--language", "en", "--model", "m",
                   "-o", str(tmp_path / "r"))


@pytest.fixture
def upstream() -> Path:
    if not (SHARED_ESC_EVAL / "transcripts" / "llama3_en.json").exists():
        pytest.skip("../shared/esc-eval is absent (a clone outside the workplace)")
    return SHARED_ESC_EVAL


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_import_the_real_upstream_llama3_results(upstream: Path, tmp_path: Path, lang: str) -> None:
    tr, sc = upstream / "transcripts" / f"llama3_{lang}.json", upstream / "rank_scores" / f"llama3_{lang}.json"
    cards = upstream / f"test_{lang}.json"
    out = tmp_path / "llama3"
    assert run_import("--transcripts", str(tr), "--scores", str(sc), "--cards", str(cards), "--language", lang,
                      "--model", "llama3", "-o", str(out)) == 0
    rd = RunDir(out)
    raw_transcripts = json.loads(tr.read_text(encoding="utf-8"))
    raw_scores = json.loads(sc.read_text(encoding="utf-8"))
    raw_cards = json.loads(cards.read_text(encoding="utf-8"))
    dialogues = rd.read_dialogues()
    assert len(dialogues) == len(raw_transcripts)
    for d in dialogues:
        index = [str(c["id"]) for c in raw_cards].index(d.card_id)
        assert len(d.transcript) == len(raw_transcripts[str(index)]) == 11
        assert [t.speaker for t in d.transcript] == ["supporter"] + ["seeker", "supporter"] * 5
        assert d.source == raw_cards[index]["source"] and d.language == lang
    [entry] = Leaderboard.model_validate_json(rd.leaderboard_path.read_bytes()).entries
    assert entry.task == f"esc_eval_{lang}"
    for key, dim in ((k, BY_KEY[k].name) for k in KEYS):
        vals = [v[key] for v in raw_scores.values() if v[key] != -1]
        assert entry.scores[dim].mean == pytest.approx(sum(vals) / len(vals), abs=1e-6)
        assert entry.scores[dim].score_100 == pytest.approx(25 * sum(vals) / len(vals), abs=1e-4)


def test_imported_upstream_run_works_with_compare_and_agreement(upstream: Path, tmp_path: Path, capsys) -> None:
    from esc_bench.commands import agreement as agreement_cmd
    from esc_bench.commands import compare as compare_cmd

    tr, sc = upstream / "transcripts" / "llama3_en.json", upstream / "rank_scores" / "llama3_en.json"
    for name in ("llama3", "llama3-again"):
        assert run_import("--transcripts", str(tr), "--scores", str(sc), "--language", "en",
                          "--model", name, "-o", str(tmp_path / name)) == 0
    p = argparse.ArgumentParser()
    compare_cmd.configure(p)
    assert compare_cmd.run(p.parse_args([str(tmp_path / "llama3"), str(tmp_path / "llama3-again"),
                                         "--json", str(tmp_path / "c.json")])) == 0
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert all(r["diff"] == 0.0 and r["verdict"] == "no detectable difference" for r in rows)
    # the upstream score file, as a reference in our documented format, agrees with itself
    raw = json.loads(sc.read_text(encoding="utf-8"))
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"card_id": i, "dimension": k, "score": v}) + "\n"
                           for i, dims in raw.items() for k, v in dims.items()))
    p = argparse.ArgumentParser()
    agreement_cmd.configure(p)
    assert agreement_cmd.run(p.parse_args([str(tmp_path / "llama3"), "--reference", str(ref),
                                           "--json", str(tmp_path / "a.json")])) == 0
    pooled = json.loads((tmp_path / "a.json").read_text())["rows"][-1]
    assert pooled["dimension"] == "all" and pooled["exact"]["value"] == 1.0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_parse_scores_rejects_non_finite_scores_in_one_line(tmp_path: Path, literal: str) -> None:
    sc = tmp_path / "s.json"
    sc.write_text('{"0": {"fluency": 2, "empathic": %s}}' % literal, encoding="utf-8")
    with pytest.raises(DataError, match=r"index 0 empathic: score .* is not a finite number") as info:
        parse_scores(sc)
    assert "\n" not in str(info.value)
    tr = write(tmp_path / "t.json", {"0": synthetic_transcript()})
    with pytest.raises(DataError, match="not a finite number"):
        run_import("--transcripts", str(tr), "--scores", str(sc), "--language", "en", "--model", "m",
                   "-o", str(tmp_path / "run"))


def test_import_refuses_a_card_file_with_duplicate_ids(tmp_path: Path) -> None:
    tr = write(tmp_path / "t.json", {"0": synthetic_transcript(tag="A"), "1": synthetic_transcript(tag="B")})
    cards = write(tmp_path / "cards.json", [
        {"id": 501, "base": "A teacher, 40.", "language": "english"},
        {"id": "501", "base": "A student, 19.", "language": "english"},
    ])
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"cards.json\[1\]: duplicate card id '501' \(first at \[0\]\)"):
        run_import("--transcripts", str(tr), "--language", "en", "--model", "m", "--cards", str(cards),
                   "-o", str(out))
    assert not (out / "dialogues.jsonl").exists()


def test_import_writes_under_the_run_folder_lock(tmp_path: Path) -> None:
    """A folder another process is writing is refused with one line, and nothing is added to it."""
    import subprocess
    import sys

    from esc_bench.errors import UserError

    tr = write(tmp_path / "t.json", {"0": synthetic_transcript()})
    out = tmp_path / "upstream"
    assert run_import("--transcripts", str(tr), "--language", "en", "--model", "a", "-o", str(out)) == 0
    before = (out / "dialogues.jsonl").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\nf = open(sys.argv[1], 'ab')\n"
         "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(30)\n", str(out / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError):
            run_import("--transcripts", str(tr), "--language", "en", "--model", "b", "-o", str(out))
        assert (out / "dialogues.jsonl").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    assert run_import("--transcripts", str(tr), "--language", "en", "--model", "b", "-o", str(out)) == 0
