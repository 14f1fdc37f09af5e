"""The whole CLI against a real loopback OpenAI-compatible server: both protocols, both languages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.dimensions import DIMENSION_NAMES
from esc_bench.records import DialogueRecord, Leaderboard, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI


def write_configs(root: Path, url: str, *, extra: str = "") -> tuple[Path, Path]:
    models = root / "models"
    tasks = root / "tasks"
    models.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    for name in ("seeker", "sup-a", "sup-b", "judge"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_concurrency: 8\n"
            f"max_retries: 2\ntimeout: 10\ngeneration: {{temperature: 0.0, max_tokens: 64}}\n{extra}",
            encoding="utf-8",
        )
    for lang in ("en", "zh"):
        (tasks / f"mini_{lang}.yaml").write_text(
            f"language: {lang}\nprotocol: esc-bench\ncards: {{source: bundled, first: 3}}\n"
            "simulator: seeker\njudge: judge\n",
            encoding="utf-8",
        )
    return models, tasks


def run_cli(models: Path, tasks: Path, out: Path, *args: str) -> int:
    return main(
        ["--models", "sup-a,sup-b", "--tasks", "mini_en,mini_zh", "--model-configs", str(models),
         "--tasks-dir", str(tasks), "--output", str(out), *args]
    )


def test_end_to_end_run_writes_all_results(tmp_path: Path, server: FakeOpenAI, capsys) -> None:
    models, tasks = write_configs(tmp_path, server.url)
    out = tmp_path / "run"
    server.reset()
    assert run_cli(models, tasks, out, "--no-cache") == 0

    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == 2 * 2 * 3  # tasks x models x cards
    assert all(d.status == "ok" and len(d.transcript) == 11 for d in dialogues)
    assert {d.language for d in dialogues} == {"en", "zh"}
    for d in dialogues:
        speakers = [t.speaker for t in d.transcript]
        assert speakers == ["supporter"] + ["seeker", "supporter"] * 5
        assert all(f"({d.model})" in t.text for t in d.transcript[2::2])  # supporter lines came from its model
        assert d.usage["seeker"].calls == 5 and d.usage["supporter"].calls == 5

    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert len(scores) == len(dialogues) * 7
    assert {s.dimension for s in scores} == set(DIMENSION_NAMES)
    assert all(s.score is not None and str(s.score) == s.raw.strip() for s in scores)

    # 12 dialogues x (10 turns + 7 judge calls)
    assert server.n_requests == 12 * 17
    board = Leaderboard.model_validate_json((out / "leaderboard.json").read_bytes())
    assert board.schema_version == 1 and board.dimensions == list(DIMENSION_NAMES)
    assert {(e.task, e.model) for e in board.entries} == {
        (t, m) for t in ("mini_en", "mini_zh") for m in ("sup-a", "sup-b")
    }
    for e in board.entries:
        mine = [s.score for s in scores if s.task == e.task and s.model == e.model and s.dimension == "empathy"]
        assert e.scores["empathy"].n == 3
        assert e.scores["empathy"].mean == pytest.approx(sum(mine) / 3)
        assert e.scores["empathy"].score_100 == pytest.approx(e.scores["empathy"].mean * 25)
        assert e.n_dialogues == 3 and e.n_failed == 0

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["supporters"] == ["sup-a", "sup-b"]
    assert manifest["invocations"][-1]["status"] == "completed"
    assert manifest["models"]["judge"]["model"] == "judge"
    printed = capsys.readouterr().out
    assert "mini_en" in printed and "empathy" in printed
    assert "at most 60 seeker + 60 supporter + 84 judge calls" in printed


def test_rerun_is_a_no_op_and_the_cache_replays(tmp_path: Path, server: FakeOpenAI, capsys) -> None:
    models, tasks = write_configs(tmp_path, server.url)
    out = tmp_path / "run"
    server.reset()
    assert run_cli(models, tasks, out) == 0
    first = server.n_requests
    before = (out / "dialogues.jsonl").read_bytes()
    # Same command, same folder: nothing left to do, no request.
    assert run_cli(models, tasks, out) == 0
    assert server.n_requests == first
    assert (out / "dialogues.jsonl").read_bytes() == before
    # A fresh folder with the cache: every call is a hit, and the run says so.
    out2 = tmp_path / "run2"
    capsys.readouterr()
    assert run_cli(models, tasks, out2) == 0
    assert f"note: {first} of {first} calls were answered from the response cache" in capsys.readouterr().out
    assert server.n_requests == first
    a = [d.transcript for d in read_records(out / "dialogues.jsonl", DialogueRecord)]
    b = [d.transcript for d in read_records(out2 / "dialogues.jsonl", DialogueRecord)]
    assert a == b
    m2 = json.loads((out2 / "manifest.json").read_text())
    assert m2["invocations"][-1]["cache_hits"] == first


def test_changed_config_under_existing_output_is_refused(tmp_path: Path, server: FakeOpenAI, capsys) -> None:
    models, tasks = write_configs(tmp_path, server.url)
    out = tmp_path / "run"
    assert run_cli(models, tasks, out, "--limit", "1") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    original = (models / "sup-a.yaml").read_text()
    (models / "sup-a.yaml").write_text(original.replace("temperature: 0.0", "temperature: 0.7"), encoding="utf-8")
    capsys.readouterr()
    assert run_cli(models, tasks, out, "--limit", "1") == 2
    err = capsys.readouterr().err
    assert "model:sup-a" in err and err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Limits do not change replies: lowering rpm or concurrency to get past 429s may resume.
    (models / "sup-a.yaml").write_text(
        original.replace("max_concurrency: 8", "max_concurrency: 2").replace("timeout: 10", "timeout: 30")
        + "rpm: 600\n", encoding="utf-8"
    )
    assert run_cli(models, tasks, out, "--limit", "1") == 0


def test_bad_input_fails_before_any_call_and_writes_nothing(tmp_path: Path, server: FakeOpenAI, capsys) -> None:
    models, tasks = write_configs(tmp_path, server.url)
    server.reset()
    cases = [
        (["--models", "sup-aa", "--tasks", "mini_en"], "did you mean: sup-a"),
        (["--models", "sup-a", "--tasks", "mini_fr"], "did you mean: mini_"),
        (["--models", "sup-a", "--tasks", "mini_en", "--limit", "0"], "--limit"),
        (["--models", "sup-a", "--tasks", "mini_en", "--max-failures", "lots"], "--max-failures"),
    ]
    for args, expected in cases:
        out = tmp_path / "never"
        rc = main([*args, "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out)])
        err = capsys.readouterr().err
        assert rc == 2, args
        assert expected in err and err.startswith("esc-bench: error:") and err.count("\n") == 1, err
        assert not out.exists()
    # A task that selects no cards.
    (tasks / "empty.yaml").write_text("language: en\nprotocol: esc-bench\ncards: {source: bundled, sources: [Nowhere]}\nsimulator: seeker\njudge: judge\n")
    rc = main(["--models", "sup-a", "--tasks", "empty", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(tmp_path / "never")])
    assert rc == 2 and "card" in capsys.readouterr().err
    # A missing API key variable.
    (models / "keyed.yaml").write_text(f"backend: openai\nmodel: x\napi_base: {server.url}\napi_key_env: ESC_TEST_NO_SUCH_KEY\n")
    rc = main(["--models", "keyed", "--tasks", "mini_en", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(tmp_path / "never")])
    assert rc == 2 and "ESC_TEST_NO_SUCH_KEY" in capsys.readouterr().err
    # --output is a file.
    f = tmp_path / "afile"
    f.write_text("keep me")
    rc = main(["--models", "sup-a", "--tasks", "mini_en", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(f)])
    assert rc == 2 and "not a folder" in capsys.readouterr().err and f.read_text() == "keep me"
    assert server.n_requests == 0


def test_planted_api_key_never_written(tmp_path: Path, server: FakeOpenAI, monkeypatch) -> None:
    secret = "sk-test-PLANTED-9f8e7d6c5b4a"
    monkeypatch.setenv("ESC_TEST_KEY", secret)
    models, tasks = write_configs(tmp_path, server.url, extra="api_key_env: ESC_TEST_KEY\n")
    cache = tmp_path / "cache"
    out = tmp_path / "run"
    server.reset()
    assert run_cli(models, tasks, out, "--limit", "1", "--cache-dir", str(cache)) == 0
    assert any(r.headers.get("Authorization") == f"Bearer {secret}" for r in server.requests)
    for folder in (out, cache):
        for p in folder.rglob("*"):
            if p.is_file():
                assert secret.encode() not in p.read_bytes(), p


def test_output_under_a_file_is_refused(tmp_path: Path, server: FakeOpenAI, capsys) -> None:
    models, tasks = write_configs(tmp_path, server.url)
    f = tmp_path / "afile"
    f.write_text("keep me")
    rc = main(["--models", "sup-a", "--tasks", "mini_en", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(f / "sub")])
    assert rc == 2 and "not writable" in capsys.readouterr().err and f.read_text() == "keep me"


def test_litellm_supporter_end_to_end(tmp_path: Path, server: FakeOpenAI) -> None:
    """A supporter reached through litellm (provider prefix + api_base) beside the thin client."""
    models, tasks = write_configs(tmp_path, server.url)
    (models / "lite.yaml").write_text(
        f"backend: litellm\nmodel: openai/lite-sup\napi_base: {server.url}\napi_key_env: ESC_TEST_LITE_KEY\n"
        "generation: {temperature: 0.0, max_tokens: 64}\n",
        encoding="utf-8",
    )
    import os

    os.environ["ESC_TEST_LITE_KEY"] = "sk-lite-test"
    try:
        out = tmp_path / "run"
        rc = main(["--models", "lite", "--tasks", "mini_zh", "--limit", "1", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
    finally:
        del os.environ["ESC_TEST_LITE_KEY"]
    assert rc == 0
    d = read_records(out / "dialogues.jsonl", DialogueRecord)[0]
    assert d.status == "ok" and all("(lite-sup)" in t.text for t in d.transcript[2::2])
    assert d.usage["supporter"].calls == 5 and d.usage["supporter"].prompt_tokens > 0


def test_a_judge_reply_without_a_score_is_re_asked_then_missing(tmp_path: Path) -> None:
    from tests.support.fake_openai import default_reply

    def reply(body: dict) -> str:
        last = body["messages"][-1]["content"]
        if body["model"] == "judge" and last.rstrip().endswith("nothing else.") and "empathy on the" in last:
            return "I would rather not give a number."
        return default_reply(body)

    with FakeOpenAI(reply=reply) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        rc = main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(out)])
        assert rc == 1  # a dialogue with a missing score is not fully scored (issue 8.19)
        judge_calls = [r for r in srv.requests if r.body["model"] == "judge"]
    assert len(judge_calls) == 2 * (6 + 3)  # the empathy question asked three times per dialogue
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    empathy = [s for s in scores if s.dimension == "empathy"]
    assert all(s.score is None and s.attempts == 3 and s.raw.startswith("I would rather") for s in empathy)
    board = Leaderboard.model_validate_json((out / "leaderboard.json").read_bytes())
    e = board.entries[0]
    assert e.scores["empathy"].mean is None and e.scores["empathy"].n == 0 and e.scores["empathy"].n_missing == 2
    others = [s.score for s in scores if s.dimension == "fluency"]
    assert e.scores["fluency"].mean == pytest.approx(sum(others) / 2)  # never averaged in as -1


def test_failed_judge_calls_are_reported_and_set_the_exit_code(tmp_path: Path, server: FakeOpenAI, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ESC_BENCH_BACKOFF_BASE", "0.01")
    models, tasks = write_configs(tmp_path, server.url)
    (models / "judge.yaml").write_text("backend: openai\nmodel: judge\napi_base: http://127.0.0.1:9/v1\nmax_retries: 1\n")
    out = tmp_path / "run"
    rc = main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
               "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "judge judge: 14 score(s) not obtained (connection ×14)" in captured.out.replace("\n", "")
    assert "2 of 2 dialogues are incomplete (0 failed, 2 with a failed judge call" in captured.err
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert all(s.score is None and s.error.type == "connection" for s in scores)
    # The judge comes back: the rerun scores only what is missing, simulating nothing again.
    (models / "judge.yaml").write_text(f"backend: openai\nmodel: judge\napi_base: {server.url}\n")
    server.reset()
    rc = main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
               "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
    assert rc == 0 and {r.body["model"] for r in server.requests} == {"judge"} and server.n_requests == 14
