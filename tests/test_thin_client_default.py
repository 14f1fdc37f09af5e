"""Whatever speaks the OpenAI API goes through the thin client unless its config says litellm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esc_bench.backends.base import ChatRequest
from esc_bench.backends.openai_http import OpenAIHTTPBackend
from esc_bench.cli import main
from esc_bench.config.loader import ModelRegistry
from esc_bench.config.providers import openai_endpoint, openai_params, token_prices
from esc_bench.config.schema import ModelConfig
from tests.support.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "yaml_model,api_base,backend",
    [
        ("gpt-4o", None, "openai"),
        ("o3-mini", None, "openai"),
        ("openai/my-model", None, "openai"),
        ("hosted_vllm/org/model", "http://h:8000/v1", "openai"),
        ("ollama/llama3", None, "openai"),
        ("deepseek/deepseek-chat", None, "openai"),
        ("groq/llama-3.1-8b-instant", None, "openai"),
        ("llama3", "http://localhost:11434/v1", "openai"),
        ("anthropic/claude-sonnet-4-5", None, "litellm"),
        ("gemini/gemini-2.0-flash", None, "litellm"),
        ("meta-llama/Llama-3-8B", None, "litellm"),
    ],
)
def test_default_backend(yaml_model: str, api_base: str | None, backend: str) -> None:
    assert ModelConfig(name="m", model=yaml_model, api_base=api_base).backend == backend
    # A config that says litellm keeps it.
    assert ModelConfig(name="m", model=yaml_model, api_base=api_base, backend="litellm").backend == "litellm"


def test_shipped_openai_configs_use_the_thin_client(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-shipped")
    reg = ModelRegistry()
    for name in ("gpt-4o", "gpt-4o-mini", "llama3"):
        assert reg.get(name).backend == "openai", name
    assert reg.get("claude").backend == "litellm"
    ep = openai_endpoint("gpt-4o", [None], "OPENAI_API_KEY")
    assert (ep.bases, ep.model, ep.own_service, ep.problem) == (["https://api.openai.com/v1"], "gpt-4o", True, None)


def test_endpoints_of_providers(monkeypatch) -> None:
    for var in ("DEEPSEEK_API_KEY", "OLLAMA_API_BASE", "HOSTED_VLLM_API_BASE", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    ep = openai_endpoint("deepseek/deepseek-chat", [None], None)
    assert ep.bases == ["https://api.deepseek.com/v1"] and ep.model == "deepseek-chat"
    assert ep.problem is not None and "DEEPSEEK_API_KEY" in ep.problem
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    assert openai_endpoint("deepseek/deepseek-chat", [None], None).problem is None
    # ollama's OpenAI API is under /v1, whether the base is given with it or (litellm's way) without.
    assert openai_endpoint("ollama/llama3", [None], None).bases == ["http://localhost:11434/v1"]
    assert openai_endpoint("ollama/llama3", ["http://gpu:11434"], None).bases == ["http://gpu:11434/v1"]
    monkeypatch.setenv("OLLAMA_API_BASE", "http://box:11434")
    assert openai_endpoint("ollama_chat/llama3", [None], None).bases == ["http://box:11434/v1"]
    # A self-hosted server needs its URL; a served hub id keeps its slash.
    assert "api_base" in (openai_endpoint("hosted_vllm/x", [None], None).problem or "")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://vllm:8000/v1")
    ep = openai_endpoint("hosted_vllm/meta-llama/Llama-3-8B", [None], None)
    assert (ep.bases, ep.model, ep.own_service, ep.problem) == (["http://vllm:8000/v1"], "meta-llama/Llama-3-8B", False, None)
    assert openai_endpoint("meta-llama/Llama-3-8B", ["http://s/v1"], None).model == "meta-llama/Llama-3-8B"


def test_raw_strings_to_your_own_server_may_keep_many_requests_in_flight(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    reg = ModelRegistry(builtin=False)
    assert reg.get("openai/gpt-4.1").max_concurrency == 16  # OpenAI's service: its rate limits
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    assert ModelRegistry(builtin=False).get("openai/my-model").max_concurrency == 1000


def test_reasoning_models_get_their_parameters() -> None:
    params = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 512, "seed": 3}
    for model in ("o1", "o3-mini", "openai/o4-mini", "gpt-5", "gpt-5-mini"):
        assert openai_params(model, dict(params)) == {"max_completion_tokens": 512, "seed": 3}, model
    for model in ("gpt-4o", "openai/gpt-4.1", "hosted_vllm/o1-like-model", "llama3"):
        assert openai_params(model, dict(params)) == params, model


@pytest.mark.asyncio
async def test_a_reasoning_model_request_on_the_wire() -> None:
    with FakeOpenAI() as srv:
        cfg = ModelConfig(name="r", model="openai/o3-mini", api_base=srv.url, generation={"temperature": 0.0, "max_tokens": 64})
        backend = OpenAIHTTPBackend(cfg)
        try:
            await backend.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
        finally:
            await backend.aclose()
        body = srv.requests[-1].body
        assert body["model"] == "o3-mini" and body["max_completion_tokens"] == 64
        assert "temperature" not in body and "max_tokens" not in body


def test_prices_come_from_litellms_list_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from esc_bench.config.providers import token_prices\n"
        "p = token_prices('gpt-4o'); q = token_prices('openai/gpt-4o')\n"
        "assert p and p == q and p[0] > 0 and p[1] > p[0], (p, q)\n"
        "assert token_prices('my-own-model') is None\n"
        "assert 'litellm' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_own_service_is_priced_a_self_hosted_server_is_not(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert OpenAIHTTPBackend(ModelConfig(name="g", model="gpt-4o"))._prices == token_prices("gpt-4o")
    assert OpenAIHTTPBackend(ModelConfig(name="g", model="gpt-4o", api_base="http://x/v1"))._prices is None


def test_missing_key_or_base_is_refused_at_plan_time(tmp_path: Path, capsys, monkeypatch) -> None:
    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "HOSTED_VLLM_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "t.yaml").write_text("language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 1}\n")
    for model, expected in (("openai/gpt-4.1", "OPENAI_API_KEY"), ("hosted_vllm/x", "api_base")):
        rc = main(["--models", model, "--simulator", model, "--judge", model, "--tasks", "t",
                   "--tasks-dir", str(tmp_path), "--output", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 2 and expected in err and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()


def test_a_run_with_raw_openai_strings_never_imports_litellm(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 2}\n")
    with FakeOpenAI() as srv:
        code = (
            "import sys\n"
            "from esc_bench.cli import main\n"
            "rc = main(['--models', 'openai/sup', '--simulator', 'openai/seeker', '--judge', 'hosted_vllm/judge',\n"
            f"           '--tasks', 't', '--tasks-dir', {str(tmp_path)!r}, '--output', {str(tmp_path / 'run')!r}])\n"
            "print('RC', rc, 'litellm' in sys.modules)\n"
        )
        env = {"OPENAI_BASE_URL": srv.url, "HOSTED_VLLM_API_BASE": srv.url, "ESC_BENCH_PREFLIGHT": "1"}
        import os

        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                              env={**os.environ, **env}, check=False)
        assert "RC 0 False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
        models = {r.body["model"] for r in srv.requests}
        assert models == {"sup", "seeker", "judge"}  # the provider prefixes are not sent
    dialogues = [json.loads(x) for x in (tmp_path / "run" / "dialogues.jsonl").read_text().splitlines()]
    assert [d["status"] for d in dialogues] == ["ok", "ok"]
