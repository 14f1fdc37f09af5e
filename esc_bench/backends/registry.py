"""The one factory: make_client(config) -> ManagedClient around make_backend(config) -> Backend;
and the checks run on a config before any call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esc_bench.backends.base import Backend, BackendError
from esc_bench.config.schema import HFConfig, HTTPModelConfig, LiteLLMConfig, ModelConfig, OpenAIConfig
from esc_bench.errors import UserError

if TYPE_CHECKING:
    from esc_bench.backends.managed import ManagedClient


def make_backend(config: ModelConfig) -> Backend:
    """The bare backend for a model config (one attempt per call; wrap it in ManagedClient)."""
    from esc_bench.redact import watch_config

    if isinstance(config, HTTPModelConfig):
        watch_config(config)  # its key and URL password are cut from everything written
    if isinstance(config, OpenAIConfig):
        from esc_bench.backends.openai_http import OpenAIHTTPBackend

        return OpenAIHTTPBackend(config)
    if isinstance(config, LiteLLMConfig):
        from esc_bench.backends.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(config)
    if isinstance(config, HFConfig):
        from esc_bench.backends.hf import HFBackend

        return HFBackend(config)
    raise UserError(f"model {config.name or config.model!r}: unknown backend {config.backend!r}")


def make_client(config: ModelConfig, cache: Any = None, **kwargs: Any) -> ManagedClient:
    """make_backend wrapped once in ManagedClient (limits, retries, timeout, reply limit, cache)."""
    from esc_bench.backends.managed import ManagedClient

    return ManagedClient(make_backend(config), cache, **kwargs)


def check_credentials(config: ModelConfig) -> None:
    """Raise UserError (one line) if a key the model needs is missing. hf needs none."""
    if isinstance(config, HFConfig):
        from esc_bench.backends.hf_files import model_source

        try:
            model_source(config)
        except BackendError as exc:
            raise UserError(
                f"model {config.name!r}: {exc.message} (getting ESC-Role / ESC-RANK weights: docs/local-models.md)"
            ) from None
        return
    if isinstance(config, OpenAIConfig):
        from esc_bench.backends.openai_http import api_key_env_problem
        from esc_bench.config.providers import openai_endpoint

        problem = api_key_env_problem(config)
        if problem is None:
            problem = openai_endpoint(config.model, config.api_bases(), config.api_key_env).problem
            if problem:
                problem = f"model {config.name or config.model!r}: {problem}"
    elif isinstance(config, LiteLLMConfig):
        from esc_bench.backends.litellm_backend import missing_credentials

        problem = missing_credentials(config)
    else:
        return
    if problem:
        raise UserError(problem)
