"""The CLI end to end with a local (hf) seeker and a local ESC-RANK-style judge: one LoRA per
dimension, scored in logits mode and in generate mode; the supporter is a loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from esc_bench.cli import main  # noqa: E402
from esc_bench.dimensions import DIMENSIONS  # noqa: E402
from esc_bench.records import DialogueRecord, ScoreRecord  # noqa: E402
from esc_bench.store.jsonl import read_records  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402
from tests.support.tiny_models import make_lora_adapters, make_tiny_lm  # noqa: E402


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    seeker = make_tiny_lm(root / "seeker", "qwen2", seed=3)
    judge = make_tiny_lm(root / "judge", "llama", seed=4, digit_boost=6.0)
    names = [d.key + "_en" for d in DIMENSIONS]
    adapters = make_lora_adapters(judge, root / "adapters", names, std=0.05)
    return seeker, judge, adapters


@pytest.mark.parametrize("scoring", ["logits", "generate"])
def test_cli_with_hf_seeker_and_hf_rank_judge(tmp_path: Path, local_models, scoring: str) -> None:
    seeker, judge, adapters = local_models
    models = tmp_path / "models"
    tasks = tmp_path / "tasks"
    models.mkdir()
    tasks.mkdir()
    common = "backend: hf\ndtype: float32\ndevice_map: null\nmax_batch_size: 16\nbatch_wait_ms: 20\n"
    (models / "local-seeker.yaml").write_text(
        f"{common}model: {seeker}\nmax_concurrency: 64\ngeneration: {{max_tokens: 6}}\n"
    )
    adapter_lines = "".join(f"  {n}: {p}\n" for n, p in adapters.items())
    (models / "local-rank.yaml").write_text(
        f"{common}model: {judge}\nmax_concurrency: 64\ndimension_adapters: true\nscoring: {scoring}\n"
        f"generation: {{max_tokens: 1}}\nadapters:\n{adapter_lines}"
    )
    (tasks / "local_en.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 3}\nrounds: 2\n"
        "simulator: local-seeker\njudge: local-rank\njudge_retries: 0\n"
    )
    with FakeOpenAI() as srv:
        (models / "sup.yaml").write_text(f"backend: openai\nmodel: sup\napi_base: {srv.url}\n")
        out = tmp_path / "run"
        rc = main(["--models", "sup", "--tasks", "local_en", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
        assert rc == 0
        assert {r.body["model"] for r in srv.requests} == {"sup"}
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == 3 and all(d.status == "ok" and len(d.transcript) == 5 for d in dialogues)
    assert all(d.usage["seeker"].calls == 2 for d in dialogues)
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert len(scores) == 3 * 7
    if scoring == "logits":
        for s in scores:
            assert s.score is not None and s.probs is not None and len(s.probs) == 5
            assert abs(sum(s.probs) - 1) < 1e-5 and s.score == max(range(5), key=lambda i: s.probs[i])
            assert 0 <= s.expected <= 4
    else:
        for s in scores:
            assert s.raw is not None
            assert s.score is None or str(s.score) in s.raw
        assert any(s.score is not None for s in scores)


def test_missing_judge_adapter_is_caught_before_any_call(tmp_path: Path, local_models, capsys) -> None:
    seeker, judge, adapters = local_models
    models = tmp_path / "models"
    tasks = tmp_path / "tasks"
    models.mkdir()
    tasks.mkdir()
    some = {n: p for n, p in adapters.items() if not n.startswith("tech")}
    lines = "".join(f"  {n}: {p}\n" for n, p in some.items())
    (models / "rank.yaml").write_text(f"backend: hf\nmodel: {judge}\ndimension_adapters: true\nadapters:\n{lines}")
    (models / "seek.yaml").write_text(f"backend: hf\nmodel: {seeker}\n")
    (models / "sup.yaml").write_text("backend: openai\nmodel: sup\napi_base: http://127.0.0.1:9/v1\n")
    (tasks / "t.yaml").write_text("language: en\nprotocol: esc-bench\ncards: {source: bundled}\nsimulator: seek\njudge: rank\n")
    out = tmp_path / "run"
    rc = main(["--models", "sup", "--tasks", "t", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "has no adapter tech_en" in err and not out.exists()
    # A local model folder that does not exist is named before anything runs.
    (models / "seek.yaml").write_text(f"backend: hf\nmodel: {tmp_path / 'nowhere'}\n")
    rc = main(["--models", "sup", "--tasks", "t", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(out), "--skip-judge"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and not out.exists()
