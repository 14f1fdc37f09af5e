"""Schemas of the YAML files: model configs and tasks (unknown keys are errors)."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from esc_bench.records import Language, normalize_language

BackendKind = Literal["litellm", "openai", "hf"]

# What changes a model's replies, and so what a run folder pins. Limits, timeouts, retries and
# addresses do not: a resumed run may lower its rpm or add a replica.
MODEL_OUTPUT_FIELDS = (
    "backend", "model", "generation", "dimension_adapters", "adapter_suffix", "scoring",
    "dtype", "trust_remote_code", "adapters",
)


# Settings only a local (hf) model has: set on another backend, they are refused, not ignored.
_LOCAL_FIELDS = ("dtype", "device_map", "max_batch_size", "batch_wait_ms", "trust_remote_code", "adapters")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ESC_RANK_SUFFIX: dict[Language, str] = {"en": "_en", "zh": ""}


class JudgeSettings(_Strict):
    """What only a judge uses (any backend may judge)."""

    # Ask a LoRA adapter (hf) or served LoRA name (vLLM) per dimension:
    # "<upstream key><protocol's rank suffix>", e.g. "fluency_en". ESC-RANK does this.
    dimension_adapters: bool = False
    # Adapter name = upstream key + this suffix for the dialogue's language (ESC-RANK's layout:
    # "fluency_en" for English, "fluency" for Chinese).
    adapter_suffix: dict[Language, str] = Field(default_factory=lambda: _ESC_RANK_SUFFIX.copy())
    scoring: Literal["generate", "logits"] = "generate"  # parse a reply, or read P("0".."4") (hf only)

    def dimension_adapter(self, key: str, language: str) -> str:
        """The adapter (hf) or served LoRA name (vLLM) that judges one dimension in one language."""
        return key + self.adapter_suffix.get(language, "")  # type: ignore[call-overload]


class ModelConfig(JudgeSettings):
    """model_configs/NAME.yaml: what every backend has. The name is the file stem (or the raw string).

    One config type per backend: `ModelConfig(**fields)` and `ModelConfig.model_validate(data)` build
    the OpenAIConfig, LiteLLMConfig or HFConfig its `backend` names (absent: the thin client for what
    speaks the OpenAI API, else litellm; providers.default_backend); a key of another backend is an
    error, not ignored.
    """

    name: str = ""  # filled from the file stem, not written in YAML
    description: str | None = None
    backend: BackendKind
    model: str = Field(min_length=1)  # litellm model string, served name, or local path / hub id
    max_concurrency: int = Field(default=16, ge=1, le=100_000)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=100)
    generation: dict[str, Any] = Field(default_factory=dict)  # temperature, max_tokens, ...
    # A reply longer than this is cut here and marked `cut` in the records (a runaway model's
    # megabytes are neither read from the wire in full nor kept).
    max_reply_chars: int = Field(default=32_768, ge=1, le=10_000_000)

    def __new__(cls, *args: Any, **data: Any) -> Any:
        return super().__new__(config_type(data) if cls is ModelConfig else cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        if cls is ModelConfig and isinstance(obj, dict):
            return config_type(obj).model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    def api_bases(self) -> list[str | None]:
        return [None]

    def public_dict(self) -> dict[str, Any]:
        """For manifests: everything but secrets (a config holds none; env values are never read here)."""
        return self.model_dump(mode="json")

    def config_hash(self) -> str:
        return _hash(self.model_dump(mode="json", include=set(MODEL_OUTPUT_FIELDS)))


class HTTPModelConfig(ModelConfig):
    """A model behind an HTTP API (backend: openai or litellm)."""

    api_base: str | list[str] | None = None  # a list = replicas, load-balanced
    api_key_env: str | None = None  # the NAME of an environment variable, never a key

    @field_validator("scoring")
    @classmethod
    def _scoring_needs_logits(cls, v: str) -> str:
        if v == "logits":
            raise ValueError(
                "logits scoring reads a local model's next-token probabilities: it needs backend: hf "
                f"(backend: {cls.model_fields['backend'].default} gives only text; use scoring: generate)"
            )
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.replace("_", "").isalnum() or v[0].isdigit():
            raise ValueError(
                "must be the name of an environment variable (letters, digits, _), not a key"
            )
        return v

    @field_validator("api_base")
    @classmethod
    def _urls(cls, v: str | list[str] | None) -> str | list[str] | None:
        for url in [v] if isinstance(v, str) else v or []:
            try:
                parts = urllib.parse.urlsplit(url)
                parts.port  # noqa: B018 - a port that is not a number raises here
            except ValueError as exc:
                raise ValueError(f"{url!r} is not a URL ({exc})") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL like http://localhost:8000/v1")
        return v

    def api_bases(self) -> list[str | None]:
        if isinstance(self.api_base, list):
            return list(self.api_base) or [None]
        return [self.api_base]

    def public_dict(self) -> dict[str, Any]:
        """For manifests: everything but secrets (env values are never read here; a URL's
        `user:password@`, used for the requests, is left out)."""
        from esc_bench.redact import strip_userinfo

        data = self.model_dump(mode="json")
        if isinstance(self.api_base, list):
            data["api_base"] = [strip_userinfo(u) for u in self.api_base]
        elif self.api_base:
            data["api_base"] = strip_userinfo(self.api_base)
        return data

class OpenAIConfig(HTTPModelConfig):
    """backend: openai -- the thin aiohttp client (backends/openai_http.py)."""

    backend: Literal["openai"] = "openai"


class LiteLLMConfig(HTTPModelConfig):
    """backend: litellm -- any provider litellm knows (backends/litellm_backend.py)."""

    backend: Literal["litellm"] = "litellm"


class HFConfig(ModelConfig):
    """backend: hf -- local weights run in this process (backends/hf.py)."""

    backend: Literal["hf"] = "hf"
    dtype: str = "auto"
    device_map: str | dict[str, Any] | None = "auto"
    max_batch_size: int = Field(default=16, ge=1)
    batch_wait_ms: float = Field(default=5.0, ge=0)
    trust_remote_code: bool = False
    adapters: dict[str, str] = Field(default_factory=dict)  # name -> path


_CONFIG_TYPES: dict[str, type[ModelConfig]] = {"openai": OpenAIConfig, "litellm": LiteLLMConfig, "hf": HFConfig}


def config_type(data: dict[str, Any]) -> type[ModelConfig]:
    """The config type for raw fields: by `backend`, or the default for the model when it is absent
    (ModelConfig itself for an unknown backend, so validation names the allowed ones)."""
    backend = data.get("backend")
    if backend is None and isinstance(data.get("model"), str):
        from esc_bench.config.providers import default_backend

        backend = default_backend(data["model"], data.get("api_base"))
    return _CONFIG_TYPES.get(backend, ModelConfig) if isinstance(backend, str) else ModelConfig


def unknown_key_message(config: type[BaseModel], data: dict[str, Any], key: str) -> str | None:
    """Why a model config key is unknown, when another backend has it."""
    if config is not ModelConfig:
        return None
    kind = config_type(data)
    owners = [name for name, t in _CONFIG_TYPES.items() if key in t.model_fields]
    if kind is ModelConfig or not owners:
        return None
    backend = kind.model_fields["backend"].default
    if owners == ["hf"]:
        return f"a setting of local models (backend: hf), not of backend: {backend}"
    if backend == "hf":
        return f"backend: hf runs the model in this process: it has no {key}"
    return None


class CardSelection(_Strict):
    """Which cards a task evaluates."""

    source: str = "official"  # official | bundled | sage (SAGE's profiles) | a path to a JSON list or JSONL file
    language: Language | None = None  # defaults to the task's language
    sources: list[str] | None = None  # dataset filter (case-insensitive): ESConv, MHP, PsyQA, ...
    categories: list[str] | None = None  # card `res` filter
    ids: list[str] | None = None
    sample: int | None = Field(default=None, ge=1)  # seeded random sample of this size
    first: int | None = Field(default=None, ge=1)  # or the first N
    seed: int = 0

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> Any:
        return normalize_language(v)

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(x) for x in v]
        return v

    @model_validator(mode="after")
    def _one_of(self) -> CardSelection:
        if self.sample is not None and self.first is not None:
            raise ValueError("give either 'sample' or 'first', not both")
        return self


class TaskConfig(_Strict):
    """tasks/NAME.yaml with `cards:` (a task) -- see GroupConfig for `tasks:`."""

    name: str = ""  # the file stem
    description: str | None = None
    include: str | None = None  # inherit from another task, then override
    language: Language
    protocol: str = "esc-eval"  # esc-eval (upstream strings, fetched) | esc-bench (ours)
    cards: CardSelection = Field(default_factory=CardSelection)
    simulator: str = "esc-role"  # model config name of the seeker
    judge: str = "esc-rank"  # model config name of the judge
    rounds: int | None = Field(default=None, ge=1, le=50)  # default: the protocol's
    judge_retries: int = Field(default=2, ge=0, le=20)  # re-asks when a reply has no score

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> Any:
        return normalize_language(v)

    def config_hash(self) -> str:
        return _hash(self.model_dump(mode="json", exclude={"description"}))


class GroupConfig(_Strict):
    """tasks/NAME.yaml with `tasks:` (a group of tasks or groups)."""

    name: str = ""
    description: str | None = None
    tasks: list[str] = Field(min_length=1)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
