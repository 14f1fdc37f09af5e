"""The README's first run (no key, no GPU): the built-in qwen2.5-0.5b config plays seeker, supporter
and judge on bundled cards. A tiny random Qwen2 model stands in for the hub weights (no hub here):
the test copies the built-in config, changing only `model:` (and, for speed, the reply length), into
a user config folder that overrides the built-in name, and runs the README's own command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from esc_bench.cli import main
from esc_bench.config.loader import ModelRegistry, builtin_dir
from esc_bench.dimensions import DIMENSIONS
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.tiny_models import make_tiny_lm

README = Path(__file__).resolve().parents[1] / "README.md"
NAME = "qwen2.5-0.5b"


def first_run_command() -> list[str]:
    """The command of the README's "First run" section, as argv after `esc-bench`."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## First run.*?(?=^## )", text, re.S | re.M)
    assert section, "README has no '## First run' section"
    lines = [ln for ln in section.group(0).splitlines() if ln.startswith("esc-bench ")]
    assert len(lines) == 1, lines
    argv = shlex.split(lines[0].split("#")[0])
    return argv[1:]


def test_builtin_config_is_a_local_cpu_model_that_always_scores() -> None:
    cfg = ModelRegistry().get(NAME)
    assert cfg.backend == "hf" and cfg.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert cfg.dtype == "float32" and cfg.device_map is None  # CPU-friendly; a GPU is used when present
    assert cfg.scoring == "logits" and not cfg.dimension_adapters and not cfg.adapters
    assert 64 <= cfg.generation["max_tokens"] <= 512


@pytest.mark.slow
def test_readme_first_run_with_one_local_model_in_every_role(tmp_path: Path) -> None:
    argv = first_run_command()
    assert argv[argv.index("--models") + 1] == NAME
    assert argv[argv.index("--simulator") + 1] == NAME and argv[argv.index("--judge") + 1] == NAME
    limit = int(argv[argv.index("--limit") + 1])
    assert 1 <= limit <= 5  # a few bundled cards: minutes on a laptop CPU
    task = argv[argv.index("--tasks") + 1]
    assert task.startswith("esc_bench_mini")

    model = make_tiny_lm(tmp_path / "tiny-qwen2", "qwen2", seed=11, digit_boost=4.0)
    builtin = (builtin_dir("model_configs") / f"{NAME}.yaml").read_text(encoding="utf-8")
    assert "\nmodel: Qwen/Qwen2.5-0.5B-Instruct\n" in builtin
    configs = tmp_path / "model_configs"
    configs.mkdir()
    assert "\n  max_tokens: 128\n" in builtin
    ours = builtin.replace("\nmodel: Qwen/Qwen2.5-0.5B-Instruct\n", f"\nmodel: {model}\n")
    (configs / f"{NAME}.yaml").write_text(ours.replace("\n  max_tokens: 128\n", "\n  max_tokens: 24\n"))

    out = tmp_path / "run"
    rc = main([*argv, "--model-configs", str(configs), "--output", str(out), "--no-cache"])
    assert rc == 0

    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == limit * (2 if task == "esc_bench_mini" else 1)
    assert all(d.status == "ok" and len(d.transcript) == 11 for d in dialogues)  # greeting + 5 rounds
    assert all(d.usage["seeker"].calls == 5 and d.usage["supporter"].calls == 5 for d in dialogues)
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert len(scores) == len(dialogues) * len(DIMENSIONS)
    assert all(s.score is not None and s.probs is not None and s.judge == NAME for s in scores)
    assert (out / "leaderboard.json").exists()
