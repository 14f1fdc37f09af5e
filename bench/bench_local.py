#!/usr/bin/env python
"""Local models: dynamic batching (HFBackend) against one request at a time (upstream's way).

Three workloads on a random-weight model (random weights never stop early, so every request
generates exactly max_tokens and the timings compare like with like):

  generation   N seeker/supporter prompts; upstream ESC-Role called generate() once per prompt
  scoring      ESC-RANK style: 7 dimensions x N dialogues, one LoRA adapter per dimension, long
               judge prompts; upstream ran one chat() at a time. Batched in generate mode (all
               adapters mixed in one batch) and in logits mode (one forward pass, P("0".."4"))

    python bench/bench_local.py                    # tiny model, CPU: a few seconds
    python bench/bench_local.py --shape 7b         # InternLM2-7B shapes as Llama (ESC-RANK), GPU
    python bench/bench_local.py --shape 14b        # Qwen1.5-14B shapes (ESC-Role), GPU

Greedy replies are checked to be identical batched and one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", category=FutureWarning)

from esc_bench.backends.base import ChatRequest  # noqa: E402
from esc_bench.backends.hf import HFBackend  # noqa: E402
from esc_bench.config.schema import ModelConfig  # noqa: E402
from esc_bench.dimensions import DIMENSIONS  # noqa: E402

SHAPES = {
    "tiny": dict(arch="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=8, num_key_value_heads=2, vocab_size=None),
    # InternLM2-chat-7B after convert-rank (Llama layout): the ESC-RANK judge.
    "7b": dict(arch="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=92544, rope_theta=1e6,
               max_position_embeddings=32768, rms_norm_eps=1e-5),
    # Qwen1.5-14B-Chat (qwen2): the ESC-Role simulator.
    "14b": dict(arch="qwen2", hidden_size=5120, intermediate_size=13696, num_hidden_layers=40,
                num_attention_heads=40, num_key_value_heads=40, vocab_size=152064, rope_theta=1e6,
                max_position_embeddings=32768, rms_norm_eps=1e-6),
}
ADAPTERS = [d.key + "_en" for d in DIMENSIONS]
WORDS = ("I feel sad tired lonely today my friend family said school work stress sleep exam job "
         "help listen understand okay worried talk again because maybe never always").split()


class Preloaded(HFBackend):
    """HFBackend over a model already in memory (no save/load of random weights)."""

    def __init__(self, config: ModelConfig, parts: tuple) -> None:
        super().__init__(config)
        self._parts = parts
        self.batch_sizes: list[int] = []  # one entry per batch the batcher runs

    def _load_parts(self):
        return self._parts

    def _run_batch(self, key, batch):
        self.batch_sizes.append(len(batch))
        return super()._run_batch(key, batch)


def build(shape: str, device: str, dtype_name: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from tests.support.tiny_models import make_tokenizer

    tok = make_tokenizer()
    tok.padding_side = "left"
    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    spec["vocab_size"] = spec["vocab_size"] or len(tok)
    cls = LlamaConfig if arch == "llama" else Qwen2Config
    cfg = cls(**spec, tie_word_embeddings=False, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
              pad_token_id=tok.pad_token_id)
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(model, lora, adapter_name=ADAPTERS[0])
    for name in ADAPTERS[1:]:
        model.add_adapter(name, lora)
    model.to(device=device, dtype=dtype).eval()
    params = sum(p.numel() for p in model.parameters())
    return (tok, model), params


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def dialogues(n: int, turns: int, seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        msgs = [{"role": "system", "content": "You are a warm, patient listener. " + sentence(rng, 20)}]
        for t in range(turns):
            msgs.append({"role": "user", "content": sentence(rng, rng.randint(15, 40))})
            if t < turns - 1:
                msgs.append({"role": "assistant", "content": sentence(rng, rng.randint(15, 40))})
        out.append(msgs)
    return out


def judge_prompts(n: int, turns: int, rubric_words: int, seed: int = 1) -> list[tuple[str, list[dict[str, str]]]]:
    """(adapter, messages) for 7 dimensions x n dialogues: rubric + transcript + question."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        transcript = "\n\n".join(
            f"{'Supporter' if i % 2 else 'Seeker'}: {sentence(rng, rng.randint(10, 30))}" for i in range(turns)
        )
        for name in ADAPTERS:
            rubric = f"Rate the {name} of the supporter from 0 to 4. " + sentence(rng, rubric_words)
            out.append((name, [{"role": "user", "content": f"{rubric}\n\nDialogue:\n{transcript}\n\nScore:"}]))
    return out


async def run(backend: Preloaded, requests: list[ChatRequest], concurrent: bool) -> tuple[float, list]:
    try:
        await backend.chat(requests[0])  # load and warm up (not timed)
        backend.batch_sizes.clear()
        t0 = time.perf_counter()
        if concurrent:
            results = await asyncio.gather(*(backend.chat(r) for r in requests))
        else:
            results = [await backend.chat(r) for r in requests]
        return time.perf_counter() - t0, results
    finally:
        await backend.aclose()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


async def main(args: argparse.Namespace) -> None:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    t0 = time.perf_counter()
    parts, params = build(args.shape, device, dtype)
    print(f"shape {args.shape}: {params / 1e6:.1f}M parameters (+7 LoRA r=8) on {device} {dtype}, "
          f"torch threads {torch.get_num_threads()}, built in {time.perf_counter() - t0:.1f}s")

    def backend(batch: int, max_tokens: int) -> Preloaded:
        cfg = ModelConfig(backend="hf", model=f"random-{args.shape}", dtype=dtype, device_map=None,
                          max_batch_size=batch, batch_wait_ms=args.wait_ms, adapters={a: "(memory)" for a in ADAPTERS},
                          generation={"max_tokens": max_tokens})
        return Preloaded(cfg, parts)

    rows = []
    if "generate" in args.parts:
        reqs = [ChatRequest(messages=m) for m in dialogues(args.dialogues, args.turns)]
        one_t, one = await run(backend(1, args.max_tokens), reqs, concurrent=False)
        b = backend(args.batch, args.max_tokens)
        bat_t, bat = await run(b, reqs, concurrent=True)
        _sync(device)
        tokens = sum(r.completion_tokens for r in bat)
        same = [r.text for r in one] == [r.text for r in bat]
        rows.append(("generation", len(reqs), args.max_tokens, one_t, bat_t, b.batch_sizes, tokens, same,
                     sum(r.prompt_tokens for r in bat) / len(bat)))
    if "score" in args.parts:
        jp = judge_prompts(args.dialogues, args.judge_turns, args.rubric_words)
        reqs = [ChatRequest(messages=m, adapter=a) for a, m in jp]
        one_t, one = await run(backend(1, args.judge_tokens), reqs, concurrent=False)
        b = backend(args.batch, args.judge_tokens)
        bat_t, bat = await run(b, reqs, concurrent=True)
        same = [r.text for r in one] == [r.text for r in bat]
        rows.append(("scoring/generate", len(reqs), args.judge_tokens, one_t, bat_t, b.batch_sizes,
                     sum(r.completion_tokens for r in bat), same, sum(r.prompt_tokens for r in bat) / len(bat)))
        lreqs = [ChatRequest(messages=m, adapter=a, score_labels=tuple("01234")) for a, m in jp]
        b = backend(args.batch, args.judge_tokens)
        log_t, _ = await run(b, lreqs, concurrent=True)
        _sync(device)
        rows.append(("scoring/logits", len(lreqs), 0, one_t, log_t, b.batch_sizes, 0, None, None))
    print(f"{'workload':<17}{'requests':>9}{'max_tok':>8}{'one-at-a-time':>15}{'batched':>10}{'speed-up':>9}  batches / notes")
    for name, n, mt, one_t, bat_t, sizes, tokens, same, plen in rows:
        note = f"batches {sizes[:8]}{'…' if len(sizes) > 8 else ''}"
        if same is not None:
            note += f", identical greedy: {'yes' if same else 'NO'}, {tokens / bat_t:.0f} tok/s, prompt ~{plen:.0f} tok"
        else:
            note += " (vs one-at-a-time generate)"
        print(f"{name:<17}{n:>9}{mt:>8}{one_t:>14.2f}s{bat_t:>9.2f}s{one_t / bat_t:>8.1f}x  {note}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--dialogues", type=int, default=None, help="N (default: 8 tiny, 32 on 7b/14b)")
    p.add_argument("--turns", type=int, default=4, help="user turns per generation prompt")
    p.add_argument("--max-tokens", type=int, default=None, help="generation max_tokens (default 32 tiny, 256 GPU)")
    p.add_argument("--judge-tokens", type=int, default=8, help="judge reply length in generate mode")
    p.add_argument("--judge-turns", type=int, default=None, help="dialogue turns in a judge prompt (default 6 tiny, 10 GPU)")
    p.add_argument("--rubric-words", type=int, default=None, help="rubric length in words (default 40 tiny, 150 GPU)")
    p.add_argument("--batch", type=int, default=32, help="max_batch_size")
    p.add_argument("--wait-ms", type=float, default=5.0, help="batch_wait_ms")
    p.add_argument("--parts", default="generate,score", help="comma list: generate, score")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--dtype", help="float32 | bfloat16 | float16 (default: bfloat16 on GPU, float32 on CPU)")
    args = p.parse_args(argv)
    big = args.shape != "tiny"
    args.dialogues = args.dialogues or (32 if big else 8)
    args.max_tokens = args.max_tokens or (256 if big else 32)
    args.judge_turns = args.judge_turns or (10 if big else 6)
    args.rubric_words = args.rubric_words or (150 if big else 40)
    args.parts = {x.strip() for x in args.parts.split(",")}
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
