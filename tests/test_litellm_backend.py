"""LiteLLMBackend against the loopback fake server (openai/<name> + api_base)."""

from __future__ import annotations

import pytest

from esc_bench.backends.base import BackendError, ChatRequest
from esc_bench.backends.litellm_backend import LiteLLMBackend, _model_for, missing_credentials
from esc_bench.backends.managed import ManagedClient
from esc_bench.config.schema import ModelConfig
from tests.support.fake_openai import ALL_FAULTS
from tests.test_openai_http import EXPECTED

KEY = "sk-planted-SECRET-litellm-42424242"
HI = [{"role": "user", "content": "My exam went badly."}]


@pytest.fixture
def srv(server, monkeypatch):
    server.reset()
    monkeypatch.setenv("PLANTED_KEY", KEY)
    return server


def cfg(url, **kw) -> ModelConfig:
    base = dict(name="lite", backend="litellm", model="openai/sup", api_base=url, timeout=5)
    base.update(kw)
    return ModelConfig(**base)


async def test_one_call_works(srv):
    b = LiteLLMBackend(cfg(srv.url, api_key_env="PLANTED_KEY", generation={"max_tokens": 30}))
    r = await b.chat(ChatRequest(HI, params={"temperature": 0.5}))
    await b.aclose()
    assert "(sup)" in r.text and r.prompt_tokens > 0 and r.completion_tokens > 0
    assert r.finish_reason == "stop"
    assert r.cost is None or r.cost >= 0
    (req,) = srv.requests
    assert req.body["model"] == "sup" and req.body["messages"] == HI
    assert req.body["max_tokens"] == 30 and req.body["temperature"] == 0.5
    assert req.headers["Authorization"] == f"Bearer {KEY}"


async def test_adapter_replaces_model_after_prefix(srv):
    b = LiteLLMBackend(cfg(srv.url, model="hosted_vllm/base"))
    r = await b.chat(ChatRequest(HI, adapter="fluency_en"))
    assert "(fluency_en)" in r.text and srv.requests[0].body["model"] == "fluency_en"
    providers = {"openai", "hosted_vllm"}
    assert _model_for("hosted_vllm/base", "lora", providers) == "hosted_vllm/lora"
    assert _model_for("gpt-4o", "lora", providers) == "lora"
    assert _model_for("openai/x", None, providers) == "openai/x"


@pytest.mark.parametrize("fault", ALL_FAULTS)
async def test_errors_map_to_kinds_without_the_key(srv, fault):
    b = LiteLLMBackend(cfg(srv.url, api_key_env="PLANTED_KEY", timeout=0.5))
    srv.queue_faults(fault)
    with pytest.raises(BackendError) as ei:
        await b.chat(ChatRequest(HI))
    err = ei.value
    assert (err.kind, err.retryable) == EXPECTED[fault]
    text = f"{err} {err.message!r} {err.args!r}"
    assert KEY not in text and "\n" not in err.message and len(err.message) <= 200
    assert srv.n_requests == 1  # litellm itself never retries
    if fault == "rate_limit":
        assert err.retry_after == 0.0


async def test_managed_litellm_retries_once_and_succeeds(srv):
    mb = ManagedClient(LiteLLMBackend(cfg(srv.url)), backoff_base=0.01, seed=0)
    srv.queue_faults("server_error")
    r = await mb.chat(ChatRequest(HI))
    await mb.aclose()
    assert r.text and srv.n_requests == 2 and mb.stats.retries == 1


async def test_missing_env_key_is_auth_without_request(srv, monkeypatch):
    monkeypatch.delenv("PLANTED_KEY")
    b = LiteLLMBackend(cfg(srv.url, api_key_env="PLANTED_KEY"))
    with pytest.raises(BackendError) as ei:
        await b.chat(ChatRequest(HI))
    assert ei.value.kind == "auth" and not ei.value.retryable and srv.n_requests == 0


def test_missing_credentials(monkeypatch):
    monkeypatch.delenv("PLANTED_KEY", raising=False)
    msg = missing_credentials(cfg("http://x/v1", api_key_env="PLANTED_KEY"))
    assert msg and "PLANTED_KEY" in msg and "\n" not in msg
    monkeypatch.setenv("PLANTED_KEY", KEY)
    assert missing_credentials(cfg("http://x/v1", api_key_env="PLANTED_KEY")) is None
    assert missing_credentials(cfg("http://x/v1")) is None  # self-hosted, keyless
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    msg = missing_credentials(cfg(None, model="gpt-4o-mini"))
    assert msg and "OPENAI_API_KEY" in msg
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert missing_credentials(cfg(None, model="gpt-4o-mini")) is None
    assert missing_credentials(cfg(None, model="ollama/llama3")) is None
