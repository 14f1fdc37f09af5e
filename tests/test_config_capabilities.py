"""A config asking for something its backend cannot do is refused at plan time, not ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_bench.cli import main
from tests.support.fake_openai import FakeOpenAI


@pytest.mark.parametrize(
    "judge_yaml,line,key,why",
    [
        ("backend: openai\nmodel: judge\napi_base: {url}\nscoring: logits\n", 4, "scoring", "needs backend: hf"),
        ("backend: litellm\nmodel: openai/judge\napi_base: {url}\nscoring: logits\n", 4, "scoring", "needs backend: hf"),
        ("model: judge\napi_base: {url}\ndtype: float16\n", 3, "dtype", "local models (backend: hf)"),
        ("backend: openai\nmodel: judge\napi_base: {url}\nadapters: {{a: /x}}\n", 4, "adapters", "backend: hf"),
        ("backend: hf\nmodel: /nowhere\napi_base: {url}\n", 3, "api_base", "no api_base"),
    ],
)
def test_capability_mismatch_is_one_line_with_file_and_line(
    tmp_path: Path, capsys, judge_yaml: str, line: int, key: str, why: str
) -> None:
    with FakeOpenAI() as srv:
        models, tasks = tmp_path / "models", tmp_path / "tasks"
        models.mkdir()
        tasks.mkdir()
        for name in ("seeker", "sup"):
            (models / f"{name}.yaml").write_text(f"backend: openai\nmodel: {name}\napi_base: {srv.url}\n")
        (models / "judge.yaml").write_text(judge_yaml.format(url=srv.url))
        (tasks / "t.yaml").write_text(
            "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 1}\nsimulator: seeker\njudge: judge\n"
        )
        out = tmp_path / "run"
        rc = main(["--models", "sup", "--tasks", "t", "--model-configs", str(models), "--tasks-dir", str(tasks),
                   "--output", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        assert f"judge.yaml:{line}: {key}:" in err and why in err, err
        assert srv.n_requests == 0 and not out.exists()


def test_one_config_type_per_backend(tmp_path: Path) -> None:
    from esc_bench.config.loader import ModelRegistry
    from esc_bench.config.schema import HFConfig, LiteLLMConfig, ModelConfig, OpenAIConfig

    assert type(ModelConfig(name="a", model="gpt-4o")) is OpenAIConfig
    assert type(ModelConfig(name="b", model="anthropic/claude-x")) is LiteLLMConfig
    local = ModelConfig(name="c", model="/m", backend="hf", dtype="float16")
    assert type(local) is HFConfig and isinstance(local, ModelConfig) and local.dtype == "float16"
    assert not hasattr(ModelConfig(name="d", model="gpt-4o"), "dtype")  # no other backend's settings
    (tmp_path / "j.yaml").write_text("model: judge\napi_base: http://h/v1\ndimension_adapters: true\n")
    assert type(ModelRegistry([tmp_path], builtin=False).get("j")) is OpenAIConfig
