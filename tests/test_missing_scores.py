"""A judge that never gives a score: the dialogues are incomplete, counted against --max-failures,
and the summary names the judge and how many scores it did not give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esc_bench.cli import main
from esc_bench.records import ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI, default_reply
from tests.test_e2e_cli import write_configs


def _no_score_from(judge: str):
    def reply(body: dict[str, Any]) -> str:
        if body.get("model") == judge:
            return "I am sorry, I cannot read this language well enough to rate it."
        return default_reply(body)

    return reply


def _argv(models: Path, tasks: Path, out: Path, *extra: str) -> list[str]:
    return ["--models", "sup-a", "--tasks", "mini_en", "--model-configs", str(models), "--tasks-dir", str(tasks),
            "--output", str(out), "--no-cache", *extra]


def test_a_judge_that_never_scores_fails_the_run(tmp_path: Path, capsys) -> None:
    with FakeOpenAI(reply=_no_score_from("judge")) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        assert main(_argv(models, tasks, tmp_path / "run")) == 1
        cap = capsys.readouterr()
        scores = read_records(tmp_path / "run" / "scores.jsonl", ScoreRecord)
        assert len(scores) == 3 * 7 and all(s.score is None and s.error is None for s in scores)
        assert "3 of 3 dialogues are incomplete (0 failed, 3 with a score the judge did not give" in cap.err
        assert "try another judge" in cap.err
        summary = " ".join(cap.out.split())
        assert "judge judge: gave no score in 21 of 21 replies (3 dialogue(s) not fully scored)" in summary
        assert "I am sorry, I cannot read" in summary
        # Tolerated when the user says so.
        assert main(_argv(models, tasks, tmp_path / "run2", "--max-failures", "100%")) == 0


def test_rescoring_with_a_judge_that_never_scores_exits_1(tmp_path: Path, capsys) -> None:
    with FakeOpenAI(reply=_no_score_from("mute")) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        (models / "mute.yaml").write_text((models / "judge.yaml").read_text().replace("model: judge", "model: mute"))
        out = tmp_path / "run"
        assert main(_argv(models, tasks, out)) == 0
        capsys.readouterr()
        assert main(["score", str(out), "--judge", "mute", "--model-configs", str(models)]) == 1
        cap = capsys.readouterr()
        assert "judge mute: gave no score in 21 of 21 replies" in " ".join(cap.out.split())
        assert "3 of 3 dialogues are incomplete" in cap.err
