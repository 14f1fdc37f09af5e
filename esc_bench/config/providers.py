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

# o1/o3/o4/gpt-5 families: `max_completion_tokens`, and no sampling parameters.
_REASONING_MODEL = re.compile(r"^(o[1-9](-|$)|gpt-5)")

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
    return (prefix in (None, "openai")) and bool(_REASONING_MODEL.match(rest.lower()))


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
