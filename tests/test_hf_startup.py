"""Several local (hf) models start in one process: transformers' lazy names and model construction
are not thread-safe, and each hf backend loads on its own worker thread.

Both tests run in a fresh interpreter: the race only shows while transformers has not yet resolved
`AutoModelForCausalLM` & co., which this test process has long done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from esc_bench.dimensions import DIMENSIONS
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.tiny_models import make_lora_adapters, make_tiny_lm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def three_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("three")
    models = {
        "seeker": make_tiny_lm(root / "seeker", "qwen2", seed=5),
        "supporter": make_tiny_lm(root / "supporter", "llama", seed=6),
        "judge": make_tiny_lm(root / "judge", "llama", seed=7, digit_boost=6.0),
    }
    make_lora_adapters(models["judge"], root / "adapters", ["overall_en"], std=0.05)
    return models


def _fresh_python(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_a_run_with_three_local_models_completes(tmp_path: Path, three_models) -> None:
    """The paper's own set-up and more: seeker, supporter and judge are three hf models."""
    models = tmp_path / "models"
    tasks = tmp_path / "tasks"
    models.mkdir()
    tasks.mkdir()
    common = "backend: hf\ndtype: float32\ndevice_map: null\nmax_batch_size: 8\nbatch_wait_ms: 10\n"
    (models / "seek.yaml").write_text(f"{common}model: {three_models['seeker']}\ngeneration: {{max_tokens: 6}}\n")
    (models / "sup.yaml").write_text(f"{common}model: {three_models['supporter']}\ngeneration: {{max_tokens: 6}}\n")
    (models / "rank.yaml").write_text(f"{common}model: {three_models['judge']}\nscoring: logits\n")
    (tasks / "three_en.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 2}\nrounds: 2\n"
        "simulator: seek\njudge: rank\njudge_retries: 0\n"
    )
    out = tmp_path / "run"
    proc = _fresh_python(["-m", "esc_bench.cli", "--models", "sup", "--tasks", "three_en",
                          "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out),
                          "--no-cache"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "could not start" not in proc.stderr
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == 2 and all(d.status == "ok" and len(d.transcript) == 5 for d in dialogues)
    assert all(d.usage["seeker"].calls == 2 and d.usage["supporter"].calls == 2 for d in dialogues)
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert len(scores) == 2 * len(DIMENSIONS) and all(s.score is not None for s in scores)


_START_TOGETHER = textwrap.dedent("""
    import asyncio, json, sys
    from esc_bench.backends.base import ChatRequest
    from esc_bench.backends.hf import HFBackend
    from esc_bench.config.schema import ModelConfig

    specs = json.loads(sys.argv[1])

    async def main():
        backends = [HFBackend(ModelConfig(backend="hf", dtype="float32", device_map=None,
                                          generation={"max_tokens": 4}, **spec)) for spec in specs]
        try:
            await asyncio.gather(*(b.start() for b in backends))
            replies = await asyncio.gather(*(
                b.chat(ChatRequest(messages=[{"role": "user", "content": f"hello {i}"}],
                                   adapter=next(iter(b.config.adapters), None)))
                for i, b in enumerate(backends)))
        finally:
            await asyncio.gather(*(b.aclose() for b in backends))
        print(json.dumps([r.completion_tokens for r in replies]))

    asyncio.run(main())
""")


@pytest.mark.slow
def test_hf_backends_start_concurrently(three_models) -> None:
    """Five backends (two architectures, one with a LoRA adapter) start at the same moment."""
    adapter = str(three_models["judge"].parent / "adapters" / "overall_en")
    specs = [{"model": str(p)} for p in three_models.values()]
    specs += [{"model": str(three_models["judge"]), "adapters": {"overall_en": adapter}},
              {"model": str(three_models["seeker"])}]
    proc = _fresh_python(["-c", _START_TOGETHER, json.dumps(specs)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    tokens = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(tokens) == 5 and all(1 <= n <= 4 for n in tokens)
