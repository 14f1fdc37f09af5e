"""Raw model strings are resolved at plan time: a name that cannot be a model costs no call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.config.providers import raw_model_provider
from tests.support.fake_openai import FakeOpenAI


def _configs(root: Path, url: str) -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    for name in ("seeker", "sup", "judge"):
        (models / f"{name}.yaml").write_text(f"backend: openai\nmodel: {name}\napi_base: {url}\n")
    (tasks / "mini.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 2}\nsimulator: seeker\njudge: judge\n"
    )
    return models, tasks


@pytest.mark.parametrize(
    "option,name,why",
    [
        ("--judge", "../../etc/x", "looks like a path"),
        ("--judge", "/etc/passwd", "looks like a path"),
        ("--models", "nosuchprovider/x", "'nosuchprovider' is not a provider"),
        ("--simulator", "openai/a b", "no spaces"),
        ("--models", "meta-llama/Llama-3-8B-Instruct", "'meta-llama' is not a provider"),
        ("--judge", "surely-no-such-model-name", "not a model litellm knows"),
    ],
)
def test_a_name_that_cannot_be_a_model_is_refused_before_any_call(
    tmp_path: Path, server: FakeOpenAI, capsys, option: str, name: str, why: str
) -> None:
    models, tasks = _configs(tmp_path, server.url)
    server.reset()
    out = tmp_path / "run"
    args = {"--models": "sup", "--simulator": "seeker", "--judge": "judge"} | {option: name}
    argv = [x for k, v in args.items() for x in (k, v)]
    rc = main([*argv, "--tasks", "mini", "--model-configs", str(models), "--tasks-dir", str(tasks),
               "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("esc-bench: error:") and err.count("\n") == 1, err
    assert repr(name) in err and why in err, err
    assert server.n_requests == 0
    assert not out.exists()


def test_resolution_of_raw_strings() -> None:
    assert raw_model_provider("openai/my-model") == "openai"
    assert raw_model_provider("hosted_vllm/org/model") == "hosted_vllm"
    assert raw_model_provider("anthropic/claude-x") == "anthropic"  # asks litellm
    assert raw_model_provider("gpt-4o") == "openai"
    for bad in ("", "openai/", "./x", "a//b", "~/models/x", "tab\there/x"):
        with pytest.raises(ValueError):
            raw_model_provider(bad)


@pytest.mark.slow
def test_openai_compatible_prefixes_need_no_litellm_import() -> None:
    code = (
        "import sys\n"
        "from esc_bench.config.loader import ModelRegistry\n"
        "reg = ModelRegistry(builtin=False)\n"
        "for n in ('openai/x', 'hosted_vllm/y', 'ollama/llama3', 'deepseek/deepseek-chat'):\n"
        "    reg.get(n)\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "try:\n"
        "    reg.get('nosuchprovider/x')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ConfigError"
    assert "Provider List" not in proc.stdout + proc.stderr  # litellm's banner is kept quiet
