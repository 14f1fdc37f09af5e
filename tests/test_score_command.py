"""`esc-bench score`: a second judge scores saved dialogues without re-simulating, side by side."""

from __future__ import annotations

import json
from pathlib import Path

from esc_bench.cli import main
from esc_bench.records import ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import run_cli, write_configs


def test_rescore_with_another_judge(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        (models / "judge2.yaml").write_text(f"backend: openai\nmodel: judge2\napi_base: {srv.url}\n")
        out = tmp_path / "run"
        assert run_cli(models, tasks, out, "--limit", "2") == 0
        board_before = (out / "leaderboard.json").read_bytes()
        srv.reset()
        rc = main(["score", str(out), "--judge", "judge2", "--model-configs", str(models)])
        assert rc == 0
        called = {r.body["model"] for r in srv.requests}
        assert called == {"judge2"}  # nothing simulated again
        assert srv.n_requests == 2 * 2 * 2 * 7
        # Again: everything is scored already.
        srv.reset()
        assert main(["score", str(out), "--judge", "judge2", "--model-configs", str(models)]) == 0
        assert srv.n_requests == 0
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert {s.judge for s in scores} == {"judge", "judge2"}
    assert sum(s.judge == "judge2" for s in scores) == 56
    assert (out / "leaderboard.json").read_bytes() == board_before  # the run's own board is untouched
    other = json.loads((out / "leaderboard.judge2.json").read_text())
    assert {e["judge"] for e in other["entries"]} == {"judge2"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra_judges"] == ["judge2"]
    assert all(t["judge"] == "judge" for t in manifest["tasks"].values())


def test_score_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["score", str(tmp_path), "--judge", "x"]) == 2
    assert "not an esc-bench run folder" in capsys.readouterr().err
