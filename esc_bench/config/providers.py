"""Raw model strings: which provider a string names, and which providers speak the OpenAI API.

A model name with no config of its own is a raw model string in litellm's spelling:
`provider/model` (`openai/gpt-4.1`, `hosted_vllm/my-model`, `anthropic/claude-...`) or a bare
model name litellm knows (`gpt-4.1`). It is resolved at plan time, so a string that cannot be a
model is refused before any call. The providers that speak the OpenAI chat API are listed here
(no import needed); any other prefix is asked of litellm, which is imported only then (seconds).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OpenAICompatible:
    """A provider reached with the OpenAI chat API: where it lives and how it is keyed."""

    base: str | None  # the default base URL; None: an api_base (or one of base_envs) is needed
    key_envs: tuple[str, ...] = ()  # the variables holding its key, first set one wins
    base_envs: tuple[str, ...] = ()  # variables that may give the base URL (litellm's names)
    key_required: bool = False  # a cloud service: no key, no call
    suffix: str = ""  # the OpenAI API's path under a base given without it (ollama: /v1)


# Prefixes as litellm spells them; base URLs and variable names as litellm and the providers document.
OPENAI_COMPATIBLE: dict[str, OpenAICompatible] = {
    "openai": OpenAICompatible(
        "https://api.openai.com/v1", ("OPENAI_API_KEY",), ("OPENAI_BASE_URL", "OPENAI_API_BASE"), True
    ),
    "hosted_vllm": OpenAICompatible(None, ("HOSTED_VLLM_API_KEY",), ("HOSTED_VLLM_API_BASE",)),
    "openai_like": OpenAICompatible(None, ("OPENAI_LIKE_API_KEY",), ("OPENAI_LIKE_API_BASE",)),
    "custom_openai": OpenAICompatible(None, ("OPENAI_API_KEY",), ("OPENAI_API_BASE",)),
    "litellm_proxy": OpenAICompatible(None, ("LITELLM_PROXY_API_KEY",), ("LITELLM_PROXY_API_BASE",)),
    "ollama": OpenAICompatible("http://localhost:11434/v1", ("OLLAMA_API_KEY",), ("OLLAMA_API_BASE",), suffix="/v1"),
    "ollama_chat": OpenAICompatible(
        "http://localhost:11434/v1", ("OLLAMA_API_KEY",), ("OLLAMA_API_BASE",), suffix="/v1"
    ),
    "lm_studio": OpenAICompatible("http://localhost:1234/v1", ("LM_STUDIO_API_KEY",), ("LM_STUDIO_API_BASE",)),
    "llamafile": OpenAICompatible("http://127.0.0.1:8080/v1", ("LLAMAFILE_API_KEY",), ("LLAMAFILE_API_BASE",)),
    "deepseek": OpenAICompatible("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), ("DEEPSEEK_API_BASE",), True),
    "together_ai": OpenAICompatible(
        "https://api.together.xyz/v1", ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY"),
        ("TOGETHER_AI_API_BASE",), True,
    ),
    "groq": OpenAICompatible("https://api.groq.com/openai/v1", ("GROQ_API_KEY",), ("GROQ_API_BASE",), True),
    "openrouter": OpenAICompatible(
        "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY", "OR_API_KEY"), ("OPENROUTER_API_BASE",), True
    ),
    "mistral": OpenAICompatible("https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), ("MISTRAL_API_BASE",), True),
    "fireworks_ai": OpenAICompatible(
        "https://api.fireworks.ai/inference/v1", ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"),
        ("FIREWORKS_API_BASE",), True,
    ),
    "xai": OpenAICompatible("https://api.x.ai/v1", ("XAI_API_KEY",), ("XAI_API_BASE",), True),
    "deepinfra": OpenAICompatible("https://api.deepinfra.com/v1/openai", ("DEEPINFRA_API_KEY",), (), True),
    "perplexity": OpenAICompatible(
        "https://api.perplexity.ai", ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"), ("PERPLEXITY_API_BASE",), True
    ),
    "cerebras": OpenAICompatible("https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",), (), True),
    "nvidia_nim": OpenAICompatible(
        "https://integrate.api.nvidia.com/v1", ("NVIDIA_NIM_API_KEY",), ("NVIDIA_NIM_API_BASE",), True
    ),
}

# Bare names of OpenAI's own chat models: a config naming one goes to OpenAI through the thin client.
_OPENAI_NAME = re.compile(r"^(gpt-|chatgpt-|ft:gpt-|o[1-9](-|$))")
# o1/o3/o4/gpt-5 families: `max_completion_tokens`, and no sampling parameters.
_REASONING_MODEL = re.compile(r"^(o[1-9](-|$)|gpt-5)")
_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias")

_litellm: Any = None


def load_litellm() -> Any:
    """Import litellm once, quietly, with the local price map (no network at import)."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.drop_params = False
        _litellm = litellm
    return _litellm


def loaded_litellm() -> Any:
    """litellm if it was imported already, else None (never imports it)."""
    return _litellm


def split_provider(model: str) -> tuple[str | None, str]:
    """('openai', 'gpt-4.1') for 'openai/gpt-4.1'; (None, model) without a prefix."""
    prefix, sep, rest = model.partition("/")
    if sep and rest:
        return prefix, rest
    return None, model


def is_reasoning_model(model: str) -> bool:
    """OpenAI's o-series and gpt-5 (with or without the `openai/` prefix)."""
    prefix, rest = split_provider(model)
    return prefix in (None, "openai") and bool(_REASONING_MODEL.match(rest.lower()))


def default_backend(model: str, api_base: object) -> str:
    """The backend a config gets when it names none: the thin client for what speaks the OpenAI
    API (an OpenAI-compatible prefix, OpenAI's own model names, a bare served name with an
    api_base), litellm for every other provider."""
    prefix, _ = split_provider(model)
    if prefix in OPENAI_COMPATIBLE:
        return "openai"
    if prefix is None and (api_base or _OPENAI_NAME.match(model)):
        return "openai"
    return "litellm"


@dataclass(frozen=True)
class Endpoint:
    """Where and how the thin client reaches one model."""

    model: str  # the name sent in requests (the provider prefix taken off)
    bases: list[str]
    key_envs: tuple[str, ...]  # variables to read the key from, first set one wins
    own_service: bool  # the provider's own base URL (not a server of the user's): priced, keyed
    problem: str | None = None  # why it cannot be called at all


def openai_endpoint(model: str, api_bases: list[str | None], api_key_env: str | None) -> Endpoint:
    """Resolve a thin-client model: its provider's base URL (or the configured api_base, or the
    provider's base variable), the key variable, and the model name to send."""
    prefix, rest = split_provider(model)
    if prefix in OPENAI_COMPATIBLE:
        info, sent = OPENAI_COMPATIBLE[prefix], rest
    else:  # a served name (`llama3`, `meta-llama/Meta-Llama-3-8B-Instruct`), or OpenAI's own model
        prefix, info, sent = "openai", OPENAI_COMPATIBLE["openai"], model
    bases = [b for b in api_bases if b]
    if not bases:
        bases = [v for v in (os.environ.get(n, "").strip() for n in info.base_envs) if v][:1]
    own = not bases
    if own and info.base:
        bases = [info.base]
    if info.suffix:
        bases = [b if b.rstrip("/").endswith(info.suffix) else b.rstrip("/") + info.suffix for b in bases]
    keys = (api_key_env,) if api_key_env else info.key_envs
    problem = None
    if not bases:
        hint = f" (or set {info.base_envs[0]})" if info.base_envs else ""
        problem = f"{prefix}/ models are served by your own server: give its URL as api_base{hint}"
    elif own and info.key_required and not any(os.environ.get(k, "").strip() for k in keys):
        problem = f"no {' or '.join(keys)} in the environment; set it, or name the variable with api_key_env"
    return Endpoint(sent, [b.rstrip("/") for b in bases], keys, own, problem)


SELF_HOSTED_CONCURRENCY = 1000  # a server of your own queues requests itself (vLLM batches them)


def raw_model_settings(name: str) -> dict[str, Any]:
    """Settings of a raw model string beyond its name: one that reaches a server of your own
    (its URL from the provider's variable) may keep many requests in flight."""
    if default_backend(name, None) == "openai" and not openai_endpoint(name, [None], None).own_service:
        return {"max_concurrency": SELF_HOSTED_CONCURRENCY}
    return {}


def openai_params(model: str, params: dict[str, Any]) -> dict[str, Any]:
    """Generation parameters as OpenAI's reasoning models (o1/o3/o4, gpt-5) take them:
    `max_completion_tokens` for `max_tokens`, and no sampling parameters."""
    if not is_reasoning_model(model):
        return params
    out = {k: v for k, v in params.items() if k not in _SAMPLING}
    if "max_tokens" in out:
        out.setdefault("max_completion_tokens", out.pop("max_tokens"))
        out.pop("max_tokens", None)
    return out


_cost_map: dict[str, Any] | None = None


def token_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's bundled price list, read as a file (litellm
    is not imported); None when the model is not in it."""
    prefix, rest = split_provider(model)
    for key in (model, rest, f"{prefix}/{rest}" if prefix else rest):
        entry = _prices_map().get(key)
        if isinstance(entry, dict):
            try:
                return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _prices_map() -> dict[str, Any]:
    global _cost_map
    if _cost_map is None:
        _cost_map = _read_cost_map()
    return _cost_map


def _read_cost_map() -> dict[str, Any]:
    import importlib.util
    import json

    try:
        spec = importlib.util.find_spec("litellm")
        folder = list(spec.submodule_search_locations or [])[0] if spec else None
        if folder is None:
            return {}
        with open(os.path.join(folder, "model_prices_and_context_window_backup.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, IndexError, ImportError):
        return {}
    return data if isinstance(data, dict) else {}


def raw_model_provider(name: str) -> str:
    """The provider a raw model string names; ValueError (a reason) when it cannot be a model.

    Needs no import for the OpenAI-compatible prefixes; a bare name is looked up in litellm's map.
    """
    if not name or any(c.isspace() or not c.isprintable() for c in name):
        raise ValueError("a model string has no spaces or control characters")
    prefix, _ = split_provider(name)
    if "/" in name:
        if any(part in ("", ".", "..") for part in name.split("/")) or name.startswith("~"):
            raise ValueError("it looks like a path, not provider/model")
        if prefix in OPENAI_COMPATIBLE:
            return prefix
    provider = _litellm_provider(name)
    if provider is None:
        if "/" in name:
            raise ValueError(f"{prefix!r} is not a provider litellm knows (provider/model)")
        raise ValueError("not a model litellm knows (write provider/model, or add a model config)")
    return provider


def _litellm_provider(name: str) -> str | None:
    if "/" not in name:  # litellm's price list, read as a file, knows most bare names
        entry = _prices_map().get(name)
        if isinstance(entry, dict) and entry.get("litellm_provider"):
            return str(entry["litellm_provider"])
    litellm = load_litellm()
    if "/" not in name:
        entry = litellm.model_cost.get(name)
        if isinstance(entry, dict) and entry.get("litellm_provider"):
            return str(entry["litellm_provider"])
    try:
        _, provider, _, _ = litellm.get_llm_provider(name)
    except Exception:
        return None
    return str(provider) if provider else None
