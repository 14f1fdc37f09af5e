"""resume and score start from the typed options the manifest stores (no command-line replay, no
change of working folder); a folder written before options were stored still resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from esc_bench.cli import main
from esc_bench.records import DialogueRecord, RunOptions, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs


def _first_run(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two dialogues from relative paths, the second then torn as a crash would leave it."""
    write_configs(root, url)
    monkeypatch.chdir(root)
    argv = ["--models", "sup-a", "--tasks", "mini_en", "--model-configs", "models", "--tasks-dir", "tasks",
            "--output", "run", "--limit", "2", "--no-cache"]
    assert main(argv) == 0
    path = root / "run" / "dialogues.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    return root / "run"


def _resume_from_elsewhere(root: Path, run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["resume", str(run)]) == 0
    assert Path.cwd() == elsewhere  # the command's folder is left as it was
    assert [d.status for d in read_records(run / "dialogues.jsonl", DialogueRecord)] == ["ok", "ok"]


def test_the_manifest_stores_the_resolved_options_and_resume_uses_them(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAI() as srv:
        run = _first_run(tmp_path, srv.url, monkeypatch)
        opts = RunOptions.model_validate(json.loads((run / "manifest.json").read_text())["options"])
        assert opts.mode == "run" and opts.models == ["sup-a"] and opts.limit == 2 and not opts.use_cache
        assert opts.model_configs == [tmp_path / "models"] and opts.tasks_dirs == [tmp_path / "tasks"]
        srv.reset()
        _resume_from_elsewhere(tmp_path, run, monkeypatch)
        assert srv.n_requests == 10 + 7  # the torn dialogue only (no cache, as recorded): its turns, its scores


def test_a_manifest_written_before_options_were_stored_still_resumes_and_scores(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAI() as srv:
        run = _first_run(tmp_path, srv.url, monkeypatch)
        manifest = json.loads((run / "manifest.json").read_text())
        del manifest["options"]  # as the old code wrote it: the command line and the folder it ran in
        assert manifest["command"][1:3] == ["--models", "sup-a"] and manifest["cwd"] == str(tmp_path)
        (run / "manifest.json").write_text(json.dumps(manifest))
        _resume_from_elsewhere(tmp_path, run, monkeypatch)
        (tmp_path / "models" / "judge2.yaml").write_text(f"backend: openai\nmodel: judge2\napi_base: {srv.url}\n")
        assert main(["score", str(run), "--judge", "judge2", "--model-configs", str(tmp_path / "models")]) == 0
    assert sum(s.judge == "judge2" for s in read_records(run / "scores.jsonl", ScoreRecord)) == 2 * 7


def test_the_mode_is_a_typed_field() -> None:
    assert RunOptions(models=["m"], tasks=["t"]).mode == "run"
    with pytest.raises(ValidationError):
        RunOptions(models=["m"], tasks=["t"], mode="judge-only")  # type: ignore[arg-type]
