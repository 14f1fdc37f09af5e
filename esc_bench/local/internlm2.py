"""InternLM2 -> Llama: configuration fields, tensor names and the fused `wqkv` split.

InternLM2's attention has one fused projection, `attention.wqkv`, whose output rows are grouped
per key/value head: for each kv head, the `num_heads / num_kv_heads` query heads of its group,
then its key head, then its value head (each `head_dim` rows). Llama keeps `q_proj`, `k_proj`,
`v_proj` apart, query heads in order, and pairs query head i with kv head i // group, so splitting
the rows by that layout gives the same attention. A LoRA update on `wqkv` is `B @ A`: its rows
split the same way (B is cut by rows, A is shared by the three), so it stays exact.
Everything else is a rename. torch is imported by the callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from esc_bench.errors import UserError

# Per-layer module renames (InternLM2 -> Llama).
LAYER_MODULES = {
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
TOP_MODULES = {"model.tok_embeddings": "model.embed_tokens", "model.norm": "model.norm", "output": "lm_head"}
# Short module names as written in peft's target_modules / modules_to_save.
SHORT_NAMES = {
    "wqkv": ("q_proj", "k_proj", "v_proj"), "wo": ("o_proj",), "w1": ("gate_proj",), "w3": ("up_proj",),
    "w2": ("down_proj",), "output": ("lm_head",), "tok_embeddings": ("embed_tokens",),
    "attention_norm": ("input_layernorm",), "ffn_norm": ("post_attention_layernorm",), "norm": ("norm",),
}
QKV = ("q_proj", "k_proj", "v_proj")
_LAYER = re.compile(
    r"^(?P<pre>.*?)model\.layers\.(?P<i>\d+)\.(?P<mod>attention\.wqkv|attention\.wo|feed_forward\.w[123]|attention_norm|ffn_norm)\.(?P<rest>.+)$"
)
_TOP = re.compile(r"^(?P<pre>(?:base_model\.model\.)?)(?P<mod>model\.tok_embeddings|model\.norm|output)\.(?P<rest>.+)$")


@dataclass(frozen=True)
class Heads:
    num_heads: int
    num_kv_heads: int
    head_dim: int

    @property
    def group(self) -> int:
        return self.num_heads // self.num_kv_heads


def heads_of(cfg: dict[str, Any]) -> Heads:
    hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
    kv = int(cfg.get("num_key_value_heads") or heads)
    if hidden % heads or heads % kv:
        raise UserError(f"odd head layout: hidden_size {hidden}, heads {heads}, kv heads {kv}")
    return Heads(heads, kv, hidden // heads)


def llama_config(cfg: dict[str, Any], *, keep_dynamic_rope: bool = False) -> dict[str, Any]:
    """config.json of the Llama model equivalent to an InternLM2 config.json.

    Dynamic-NTK rope scaling only changes positions past `max_position_embeddings` in InternLM2
    (and transformers), but vLLM applies its scaled base at every length; it is dropped unless
    `keep_dynamic_rope`, which keeps the converted model exact up to max_position_embeddings
    on every engine. Linear scaling acts at every length and is always kept.
    """
    missing = [
        k
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
        if k not in cfg
    ]
    if missing:
        raise UserError(f"base config.json lacks {', '.join(missing)} (is it an InternLM2 checkpoint?)")
    if cfg.get("hidden_act", "silu") != "silu":
        raise UserError(f"hidden_act {cfg['hidden_act']!r} is not supported (InternLM2 uses silu)")
    h = heads_of(cfg)
    scaling = cfg.get("rope_scaling")
    rope = None
    if scaling:
        kind = scaling.get("type") or scaling.get("rope_type")
        if kind not in ("dynamic", "linear"):
            raise UserError(f"rope_scaling type {kind!r} is not supported (dynamic, linear)")
        if kind == "linear" or keep_dynamic_rope:
            rope = {"type": kind, "rope_type": kind, "factor": float(scaling["factor"])}
    out = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": int(cfg["vocab_size"]),
        "hidden_size": int(cfg["hidden_size"]),
        "intermediate_size": int(cfg["intermediate_size"]),
        "num_hidden_layers": int(cfg["num_hidden_layers"]),
        "num_attention_heads": h.num_heads,
        "num_key_value_heads": h.num_kv_heads,
        "head_dim": h.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": int(cfg.get("max_position_embeddings", 2048)),
        "rms_norm_eps": float(cfg.get("rms_norm_eps", 1e-6)),
        "rope_theta": float(cfg.get("rope_theta", 10000.0)),
        "rope_scaling": rope,
        "attention_bias": bool(cfg.get("bias", False)),
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "pretraining_tp": 1,
        "tie_word_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "initializer_range": float(cfg.get("initializer_range", 0.02)),
        "bos_token_id": cfg.get("bos_token_id", 1),
        "eos_token_id": cfg.get("eos_token_id", 2),
        "pad_token_id": cfg.get("pad_token_id"),
        "use_cache": True,
    }
    if cfg.get("torch_dtype"):
        out["torch_dtype"] = cfg["torch_dtype"]
    return out


def split_rows(t: Any, h: Heads) -> tuple[Any, Any, Any]:
    """The q, k, v row blocks of a fused wqkv tensor (weight, bias or LoRA B), Llama order."""
    rows = (h.num_heads + 2 * h.num_kv_heads) * h.head_dim
    if t.shape[0] != rows:
        raise UserError(f"wqkv tensor has {t.shape[0]} rows, expected {rows}")
    rest = tuple(t.shape[1:])
    g = t.reshape(h.num_kv_heads, h.group + 2, h.head_dim, *rest)
    q = g[:, : h.group].reshape(h.num_heads * h.head_dim, *rest)
    k = g[:, h.group].reshape(h.num_kv_heads * h.head_dim, *rest)
    v = g[:, h.group + 1].reshape(h.num_kv_heads * h.head_dim, *rest)
    return q.contiguous(), k.contiguous(), v.contiguous()


def convert_tensor(key: str, t: Any, h: Heads) -> list[tuple[str, Any]]:
    """Llama name(s) and tensor(s) for one InternLM2 (or peft-on-InternLM2) tensor."""
    if key.endswith("rotary_emb.inv_freq"):
        return []
    m = _LAYER.match(key)
    if m:
        pre, i, mod, rest = m["pre"], m["i"], m["mod"], m["rest"]
        base = f"{pre}model.layers.{i}."
        if mod != "attention.wqkv":
            return [(base + LAYER_MODULES[mod] + "." + rest, t)]
        names = [f"{base}self_attn.{p}.{rest}" for p in QKV]
        if rest.startswith("lora_A.") or rest.startswith("lora_embedding_A"):
            return [(n, t.clone()) for n in names]  # LoRA A is shared by q, k and v
        if rest in ("weight", "bias") or rest.startswith(("lora_B.", "base_layer.")):
            return list(zip(names, split_rows(t, h)))
        raise UserError(f"cannot convert {key}: unknown wqkv tensor {rest!r}")
    m = _TOP.match(key)
    if m:
        return [(m["pre"] + TOP_MODULES[m["mod"]] + "." + m["rest"], t)]
    raise UserError(f"cannot convert {key}: not an InternLM2 tensor name")


def rename_modules(names: Any, what: str) -> Any:
    """peft's target_modules / modules_to_save in Llama names (lists keep their order)."""
    if names is None:
        return None
    if isinstance(names, str):
        if names in SHORT_NAMES:
            return list(SHORT_NAMES[names])
        raise UserError(f"{what}: a pattern {names!r} cannot be converted; list module names instead")
    out: list[str] = []
    for n in names:
        mapped = SHORT_NAMES.get(n)
        if mapped is None:
            raise UserError(f"{what}: unknown InternLM2 module {n!r}")
        out += [x for x in mapped if x not in out]
    return out


def rename_pattern_keys(pattern: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """rank_pattern / alpha_pattern: keys are module names or paths ending in one."""
    out: dict[str, Any] = {}
    for key, value in (pattern or {}).items():
        head, _, last = key.rpartition(".")
        mapped = SHORT_NAMES.get(last)
        if mapped is None:
            raise UserError(f"{what}: cannot convert key {key!r}")
        parts = {"attention": "self_attn", "feed_forward": "mlp"}
        prefix = ".".join(parts.get(seg, seg) for seg in head.split("."))
        for m in mapped:
            out[f"{prefix}.{m}" if head else m] = value
    return out


def convert_adapter_config(acfg: dict[str, Any], base_path: str) -> dict[str, Any]:
    """A peft LoRA adapter_config.json for the converted model (same adapter, Llama names)."""
    if acfg.get("peft_type", "LORA") != "LORA":
        raise UserError(f"only LoRA adapters can be converted (got {acfg.get('peft_type')})")
    if acfg.get("use_dora"):
        raise UserError("DoRA adapters are not supported")
    out = dict(acfg)
    out["base_model_name_or_path"] = base_path
    out["target_modules"] = rename_modules(acfg.get("target_modules"), "target_modules")
    out["modules_to_save"] = rename_modules(acfg.get("modules_to_save"), "modules_to_save")
    for key in ("rank_pattern", "alpha_pattern"):
        if acfg.get(key):
            out[key] = rename_pattern_keys(acfg[key], key)
    out.pop("auto_mapping", None)
    return out
