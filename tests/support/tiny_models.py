"""Tiny random models for the local-model tests and benchmarks (no hub, no network).

- `make_tokenizer()`: a byte-level BPE trained on a small corpus with the `tokenizers` library,
  ChatML special tokens and a ChatML chat template, wrapped as a transformers fast tokenizer.
- `make_tiny_lm(dir, arch)`: a random Llama or Qwen2 causal LM saved with `save_pretrained`.
- `make_lora_adapters(model_dir, dir, names)`: random (non-zero B) peft LoRA adapters, one folder each.
- `make_fake_internlm2(dir)`: a tiny InternLM2 checkpoint as the hub ships it: config.json with
  InternLM2 field names, sharded safetensors with the fused `wqkv` layout, a SentencePiece
  `tokenizer.model` (trained with `sentencepiece` when installed, else written by hand as a
  protobuf), tokenizer_config.json with the `<|im_*|>` tokens, and a modeling file stub whose
  `chat()` has a `meta_instruction` default (a made-up test text).
- `make_fake_rank_adapters(base_dir, dir, names)`: random LoRA adapters on `wqkv` (and optionally
  the other InternLM2 linears) in the ESC-RANK folder layout.

torch / transformers / peft are imported inside the functions.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEST_META_INSTRUCTION = "You are TinyJudge, a test assistant.\n- Answer briefly (简短回答)."

_WORDS = (
    "I feel sad anxious tired lonely today and my friend family said it is okay to cry sometimes "
    "we talk about school work stress sleep exam job help listen understand you are not alone "
    "score rate the dialogue fluency empathy suggestion overall from to "
    "我 最近 压力 很大 晚上 睡不着 朋友 家人 工作 学习 你好 今天 怎么样 谢谢 理解 帮助"
).split()


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.3:
            words.append(str(rng.randint(0, 4)))
        lines.append(" ".join(words) + rng.choice([".", "?", "!", ""]))
    return lines


def make_tokenizer() -> Any:
    """Byte-level BPE (single-digit tokens) with ChatML specials, as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def make_tiny_lm(
    out_dir: Path, arch: str = "llama", *, seed: int = 0, digit_boost: float = 0.0, init_std: float = 0.2
) -> Path:
    """Save a random tiny Llama or Qwen2 (and its tokenizer) under out_dir; returns out_dir.

    `digit_boost` > 0 scales the output rows of the tokens "0".."4" so that replies often start
    with a digit (for the logits-scoring test).
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    out_dir = Path(out_dir)
    tok = make_tokenizer()
    common = dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        initializer_range=init_std, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
    )
    cfg = LlamaConfig(**common) if arch == "llama" else Qwen2Config(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, init_std)
        if digit_boost:
            for d in "01234":
                model.lm_head.weight[tok.convert_tokens_to_ids(d)] *= digit_boost
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def make_lora_adapters(
    model_dir: Path, out_dir: Path, names: list[str], *, seed: int = 1,
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj"), r: int = 4, std: float = 0.3,
) -> dict[str, str]:
    """One random LoRA adapter per name (out_dir/<name>); returns {name: path}."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths: dict[str, str] = {}
    for i, name in enumerate(names):
        base = AutoModelForCausalLM.from_pretrained(model_dir)
        cfg = LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(target_modules), init_lora_weights=False)
        model = get_peft_model(base, cfg)
        torch.manual_seed(seed + i)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_" in n:
                    p.normal_(0.0, std)
        path = Path(out_dir) / name
        model.save_pretrained(path)
        paths[name] = str(path)
    return paths


# -- fake InternLM2 ---------------------------------------------------------------------------

INTERNLM2_DIMS = dict(
    hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=8,
    num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5,
    rope_theta=1000000.0, rope_scaling={"type": "dynamic", "factor": 2.0},
)

_MODELING_STUB = '''"""Stub standing in for the hub's modeling_internlm2.py (tests only)."""
from typing import List, Tuple


class InternLM2ForCausalLM:
    def build_inputs(self, tokenizer, query: str, history: List[Tuple[str, str]] = [], meta_instruction=""):
        raise NotImplementedError

    def chat(
        self,
        tokenizer,
        query: str,
        history: List[Tuple[str, str]] = [],
        max_new_tokens: int = 1024,
        do_sample: bool = True,
        meta_instruction: str = {first!r}
        {second!r},
        **kwargs,
    ):
        raise NotImplementedError
'''


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or isinstance(value, int):
        return _pb_varint(number << 3) + _pb_varint(int(value))
    if isinstance(value, float):
        return _pb_varint(number << 3 | 5) + struct.pack("<f", value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _pb_varint(number << 3 | 2) + _pb_varint(len(data)) + data


def handmade_sp_model(lines: list[str], merges: int = 220, *, remove_extra_whitespaces: bool = False) -> bytes:
    """A SentencePiece BPE ModelProto written by hand (used when sentencepiece is not installed)."""
    words: dict[tuple[str, ...], int] = {}
    for line in lines:
        for w in line.split():
            key = tuple("\u2581" + w)
            words[key] = words.get(key, 0) + 1
    chars = sorted({c for w in words for c in w})
    merged: list[str] = []
    for _ in range(merges):
        pairs: dict[tuple[str, str], int] = {}
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + n
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merged.append(best[0] + best[1])
        new_words: dict[tuple[str, ...], int] = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3), ("<|im_start|>", 0.0, 4), ("<|im_end|>", 0.0, 4)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)]
    seen = set()
    for i, m in enumerate(merged):
        if m not in seen:
            seen.add(m)
            pieces.append((m, -float(i), 1))
    for j, c in enumerate(chars):
        if c not in seen:
            seen.add(c)
            pieces.append((c, -float(len(merged) + j), 1))
    proto = b"".join(_pb(1, _pb(1, p) + _pb(2, s) + _pb(3, t)) for p, s, t in pieces)
    proto += _pb(2, _pb(3, 2) + _pb(4, len(pieces)) + _pb(35, True) + _pb(40, 0))
    proto += _pb(3, _pb(1, "identity") + _pb(3, True) + _pb(4, remove_extra_whitespaces) + _pb(5, True))
    return proto


def write_sp_model(path: Path, *, handmade: bool = False, remove_extra_whitespaces: bool = False) -> Path:
    lines = corpus(400, seed=3)
    try:
        if handmade:
            raise ImportError
        import io

        import sentencepiece as spm

        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=buf, vocab_size=512, model_type="bpe",
            byte_fallback=True, split_digits=True, user_defined_symbols=["<|im_start|>", "<|im_end|>"],
            normalization_rule_name="identity", remove_extra_whitespaces=remove_extra_whitespaces, minloglevel=2,
        )
        data = buf.getvalue()
    except ImportError:
        data = handmade_sp_model(lines, remove_extra_whitespaces=remove_extra_whitespaces)
    Path(path).write_bytes(data)
    return Path(path)


def make_fake_internlm2(out_dir: Path, *, seed: int = 0, std: float = 0.08, handmade_tokenizer: bool = False) -> dict[str, Any]:
    """Write a tiny InternLM2 checkpoint; returns its config dict and float32 weights."""
    import torch
    from safetensors.torch import save_file

    from esc_bench.local.spm import read_sp_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sp_path = write_sp_model(out / "tokenizer.model", handmade=handmade_tokenizer)
    pieces = read_sp_model(sp_path).pieces
    vocab = len(pieces)
    d = INTERNLM2_DIMS
    cfg = {
        "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2",
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                     "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
        "vocab_size": vocab, "hidden_act": "silu", "bias": False, "initializer_range": 0.02,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "tie_word_embeddings": False,
        "torch_dtype": "float32", "use_cache": True, "attn_implementation": "eager", **d,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    h, heads, kv = d["hidden_size"], d["num_attention_heads"], d["num_key_value_heads"]
    hd, inter = h // heads, d["intermediate_size"]
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, s: float = std) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    w: dict[str, torch.Tensor] = {"model.tok_embeddings.weight": rnd(vocab, h, s=0.5)}
    for i in range(d["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "attention.wqkv.weight"] = rnd((heads + 2 * kv) * hd, h)
        w[p + "attention.wo.weight"] = rnd(h, heads * hd)
        w[p + "feed_forward.w1.weight"] = rnd(inter, h)
        w[p + "feed_forward.w3.weight"] = rnd(inter, h)
        w[p + "feed_forward.w2.weight"] = rnd(h, inter)
        w[p + "attention_norm.weight"] = 1.0 + rnd(h, s=0.1)
        w[p + "ffn_norm.weight"] = 1.0 + rnd(h, s=0.1)
    w["model.norm.weight"] = 1.0 + rnd(h, s=0.1)
    w["output.weight"] = rnd(vocab, h, s=0.2)
    keys = list(w)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    for fname, ks in shards.items():
        save_file({k: w[k].contiguous() for k in ks}, str(out / fname), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}))
    specials = {i: p.piece for i, p in enumerate(pieces) if p.piece in ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")}
    tok_cfg = {
        "tokenizer_class": "InternLM2Tokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", "tokenization_internlm2_fast.InternLM2TokenizerFast"]},
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>",
        "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {
            str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True}
            for i, c in specials.items()
        },
        "chat_template": "{{ bos_token }}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2, ensure_ascii=False))
    first, second = TEST_META_INSTRUCTION.split("\n", 1)
    (out / "modeling_internlm2.py").write_text(_MODELING_STUB.format(first=first + "\n", second=second))
    return {"config": cfg, "weights": w}


def make_fake_rank_adapters(
    base_dir: Path, out_dir: Path, names: list[str], *, seed: int = 7, r: int = 8, alpha: int = 16,
    targets: tuple[str, ...] = ("wqkv",), std: float = 0.1, bin_format: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """Random LoRA adapters for the fake InternLM2 in the ESC-RANK layout; returns name -> weights."""
    import torch
    from safetensors.torch import save_file

    cfg = json.loads((Path(base_dir) / "config.json").read_text())
    h, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, inter = h // heads, cfg["intermediate_size"]
    shapes = {
        "attention.wqkv": (h, (heads + 2 * kv) * hd), "attention.wo": (heads * hd, h),
        "feed_forward.w1": (h, inter), "feed_forward.w3": (h, inter), "feed_forward.w2": (inter, h),
    }
    result: dict[str, dict[str, Any]] = {}
    for n, name in enumerate(names):
        g = torch.Generator().manual_seed(seed + n)
        w: dict[str, torch.Tensor] = {}
        for i in range(cfg["num_hidden_layers"]):
            for mod, (fan_in, fan_out) in shapes.items():
                if mod.split(".")[-1] not in targets:
                    continue
                p = f"base_model.model.model.layers.{i}.{mod}."
                w[p + "lora_A.weight"] = torch.randn(r, fan_in, generator=g) * std
                w[p + "lora_B.weight"] = torch.randn(fan_out, r, generator=g) * std
        folder = Path(out_dir) / name
        folder.mkdir(parents=True, exist_ok=True)
        acfg = {
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "internlm/internlm2-chat-7b",
            "r": r, "lora_alpha": alpha, "lora_dropout": 0.05, "target_modules": list(targets),
            "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "modules_to_save": None,
            "init_lora_weights": True, "layers_to_transform": None, "layers_pattern": None,
            "rank_pattern": {}, "alpha_pattern": {}, "revision": None, "use_rslora": False, "use_dora": False,
        }
        (folder / "adapter_config.json").write_text(json.dumps(acfg, indent=2))
        if name in bin_format:
            torch.save(w, folder / "adapter_model.bin")
        else:
            save_file(w, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
        result[name] = {"weights": w, "r": r, "alpha": alpha}
    return result
