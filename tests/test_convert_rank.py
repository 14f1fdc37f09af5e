"""convert-rank: a tiny fake InternLM2 (+ LoRA adapters) against its Llama conversion.

The reference InternLM2 forward below is written here in plain torch from the architecture
(fused grouped `wqkv`, grouped-query heads, rotary, RMSNorm, SwiGLU), independent of the code
under test, and computed in float64.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from esc_bench.errors import UserError  # noqa: E402
from esc_bench.local import convert_rank, spm  # noqa: E402
from tests.support.tiny_models import (  # noqa: E402
    TEST_META_INSTRUCTION,
    make_fake_internlm2,
    make_fake_rank_adapters,
    write_sp_model,
)

ADAPTERS = ["fluency", "fluency_en", "overall_en"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    base = make_fake_internlm2(root / "base")
    adapters = make_fake_rank_adapters(root / "base", root / "ESC-RANK", ADAPTERS, bin_format=("overall_en",))
    adapters.update(
        make_fake_rank_adapters(root / "base", root / "ESC-RANK", ["allmods"], seed=40, r=4, alpha=12,
                                targets=("wqkv", "wo", "w1", "w2", "w3"))
    )
    report = convert_rank.convert(root / "base", root / "ESC-RANK", root / "out")
    return {"root": root, "base": base, "adapters": adapters, "report": report, "out": root / "out"}


# -- reference InternLM2 -------------------------------------------------------------------


def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def internlm2_logits(base, ids, lora=None):
    """Plain-torch InternLM2 forward (float64). `lora`: {module: (A, B, scale)} adds scale*B@A."""
    cfg = base["config"]
    w = {k: v.double() for k, v in base["weights"].items()}
    hidden, n_h, n_kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d, grp, eps = hidden // n_h, n_h // n_kv, cfg["rms_norm_eps"]
    t = len(ids)

    def lin(name, x):
        y = x @ w[name + ".weight"].T
        if lora and name in lora:
            a, b, scale = lora[name]
            y = y + scale * ((x @ a.double().T) @ b.double().T)
        return y

    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat((ang, ang), -1).cos()[:, None, :], torch.cat((ang, ang), -1).sin()[:, None, :]
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    x = w["model.tok_embeddings.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = _rms(x, w[p + "attention_norm.weight"], eps)
        qkv = lin(p + "attention.wqkv", a).view(t, n_kv, grp + 2, d)
        q = qkv[:, :, :grp, :].reshape(t, n_h, d)
        k, v = qkv[:, :, grp, :], qkv[:, :, grp + 1, :]
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = k.repeat_interleave(grp, dim=1), v.repeat_interleave(grp, dim=1)  # head j <- kv head j // grp
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(d)
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        o = torch.einsum("hts,shd->thd", att, v).reshape(t, n_h * d)
        x = x + lin(p + "attention.wo", o)
        f = _rms(x, w[p + "ffn_norm.weight"], eps)
        gate = lin(p + "feed_forward.w1", f)
        x = x + lin(p + "feed_forward.w2", gate * torch.sigmoid(gate) * lin(p + "feed_forward.w3", f))
    return _rms(x, w["model.norm.weight"], eps) @ w["output.weight"].T


def _lora_of(adapter):
    scale = adapter["alpha"] / adapter["r"]
    out = {}
    for key, t in adapter["weights"].items():
        module = key.removeprefix("base_model.model.").rsplit(".lora_", 1)[0]
        a_or_b = "A" if ".lora_A." in key else "B"
        out.setdefault(module, {})[a_or_b] = t
    return {m: (ab["A"], ab["B"], scale) for m, ab in out.items()}


def _sequences(vocab):
    g = torch.Generator().manual_seed(5)
    return [torch.randint(5, vocab, (n,), generator=g).tolist() for n in (1, 7, 33)]


def _llama(out):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(out / "model", dtype=torch.float32).eval()


# -- tests ---------------------------------------------------------------------------------


def test_converted_model_is_logit_equivalent(converted):
    model = _llama(converted["out"])
    assert type(model).__name__ == "LlamaForCausalLM"
    for ids in _sequences(converted["base"]["config"]["vocab_size"]):
        with torch.no_grad():
            got = model(torch.tensor([ids])).logits[0].double()
        want = internlm2_logits(converted["base"], ids)
        assert not torch.isnan(got).any()
        assert (got - want).abs().max().item() < 1e-4
        assert want.std().item() > 0.1  # not a degenerate model


@pytest.mark.parametrize("name", ["fluency_en", "overall_en", "allmods"])
def test_converted_lora_is_logit_equivalent(converted, name):
    from peft import PeftModel

    adapter = converted["adapters"][name]
    model = PeftModel.from_pretrained(_llama(converted["out"]), converted["out"] / "adapters" / name).eval()
    lora = _lora_of(adapter)
    for ids in _sequences(converted["base"]["config"]["vocab_size"])[1:]:
        with torch.no_grad():
            got = model(input_ids=torch.tensor([ids])).logits[0].double()
        want = internlm2_logits(converted["base"], ids, lora)
        plain = internlm2_logits(converted["base"], ids)
        assert not torch.isnan(got).any()
        assert (got - want).abs().max().item() < 1e-4
        assert (want - plain).abs().max().item() > 1e-2  # the adapter really changes the logits


def test_adapter_configs_rewritten(converted):
    out = converted["out"]
    assert sorted(p.name for p in (out / "adapters").iterdir()) == sorted(ADAPTERS + ["allmods"])
    cfg = json.loads((out / "adapters" / "fluency" / "adapter_config.json").read_text())
    assert cfg["target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 16
    assert Path(cfg["base_model_name_or_path"]) == (out / "model").resolve()
    cfg = json.loads((out / "adapters" / "allmods" / "adapter_config.json").read_text())
    assert set(cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.parametrize("trim", [False, True], ids=["keep-spaces", "remove-extra-whitespaces"])
@pytest.mark.parametrize("handmade", [False, True])
def test_tokenizer_ids_match_sentencepiece(tmp_path, handmade, trim):
    sentencepiece = pytest.importorskip("sentencepiece")
    model = write_sp_model(tmp_path / "tokenizer.model", handmade=handmade, remove_extra_whitespaces=trim)
    sp = spm.read_sp_model(model)
    assert sp.remove_extra_whitespaces is trim
    tok = spm.build_tokenizer(sp, {3: ("<|im_start|>", True), 4: ("<|im_end|>", True)}, add_bos="<s>")
    spp = sentencepiece.SentencePieceProcessor(model_file=str(model))
    chat = f"<|im_start|>system\n{TEST_META_INSTRUCTION}<|im_end|>\n<|im_start|>user\nI feel sad 3<|im_end|>\n<|im_start|>assistant\n"
    specials = {"<|im_start|>": 3, "<|im_end|>": 4}
    for text in spm.SAMPLE_TEXTS + (chat, "friend said  it is okay", "a<|im_end|>b"):
        assert tok.encode(text, add_special_tokens=False).ids == spm.reference_ids(spp, text, specials), text
        if "<|" not in text:
            assert tok.encode(text, add_special_tokens=False).ids == spp.encode(text)
            assert tok.decode(tok.encode(text).ids, skip_special_tokens=True) == spp.decode(spp.encode(text))
    assert tok.encode("Hello").ids[0] == 1  # BOS, as InternLM2's tokenizer adds it


def test_tokenizer_and_template_carry_over(converted):
    from transformers import AutoTokenizer

    out, report = converted["out"], converted["report"]
    tok = AutoTokenizer.from_pretrained(out / "model")
    if report["tokenizer_checked_texts"] is not None:
        assert report["tokenizer_checked_texts"] >= 5
    gen = json.loads((out / "model" / "generation_config.json").read_text())
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token == "</s>" and set(gen["eos_token_id"]) == {tok.eos_token_id, im_end}
    q = "Rate the dialogue 你好"
    prompt = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
    # What InternLM2's chat() builds with its default meta instruction.
    assert prompt == (
        f"<s><|im_start|>system\n{TEST_META_INSTRUCTION}<|im_end|>\n"
        f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
    )
    own = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": q}], add_generation_prompt=True, tokenize=False
    )
    assert own.startswith("<s><|im_start|>system\nS<|im_end|>\n") and TEST_META_INSTRUCTION not in own
    ids = tok(prompt, add_special_tokens=False).input_ids
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == tok.chat_template


def test_meta_instruction_is_read_from_the_base(tmp_path, converted):
    base = tmp_path / "base"
    shutil.copytree(converted["root"] / "base", base)
    stub = base / "modeling_internlm2.py"
    stub.write_text(stub.read_text().replace("TinyJudge", "OtherJudge"))
    text, where = convert_rank.find_meta_instruction(base)
    assert text == TEST_META_INSTRUCTION.replace("TinyJudge", "OtherJudge") and "chat" in where
    stub.unlink()
    with pytest.raises(UserError, match="meta_instruction"):
        convert_rank.find_meta_instruction(base)
    # No copy of InternLM's real system text lives in the local-model code, configs or docs.
    root = Path(convert_rank.__file__).resolve().parents[2]
    files = [*root.glob("esc_bench/local/*.py"), root / "esc_bench/backends/hf.py",
             *root.glob("esc_bench/resources/model_configs/esc-r*.yaml"), root / "docs/local-models.md"]
    for f in files:
        assert "书生" not in f.read_text(encoding="utf-8"), f


def test_cli_run_and_errors(tmp_path, converted, capsys):
    p = argparse.ArgumentParser()
    convert_rank.configure(p)
    root = converted["root"]
    meta = tmp_path / "meta.txt"
    meta.write_text("Custom system")
    args = p.parse_args(["--base", str(root / "base"), "--adapters", str(root / "ESC-RANK" / "fluency"),
                         "--out", str(tmp_path / "o"), "--meta-instruction-file", str(meta)])
    assert convert_rank.run(args) == 0
    assert "converted" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "o" / "adapters").iterdir()] == ["fluency"]
    assert "Custom system" in (tmp_path / "o" / "chat_template.jinja").read_text()
    with pytest.raises(UserError, match="not empty"):
        convert_rank.run(args)
    bad = p.parse_args(["--base", str(tmp_path), "--adapters", str(root / "ESC-RANK"), "--out", str(tmp_path / "x")])
    with pytest.raises(UserError):
        convert_rank.run(bad)


async def test_converted_rank_runs_in_the_hf_backend(converted):
    from esc_bench.backends.base import ChatRequest
    from esc_bench.backends.hf import HFBackend
    from esc_bench.config.schema import ModelConfig

    out = converted["out"]
    cfg = ModelConfig(
        backend="hf", model=str(out / "model"), dtype="float32", device_map=None, max_batch_size=8,
        adapters={n: str(out / "adapters" / n) for n in ADAPTERS}, dimension_adapters=True,
        generation={"max_tokens": 4},
    )
    backend = HFBackend(cfg)
    try:
        msgs = [{"role": "user", "content": "Rate the fluency of this dialogue from 0 to 4."}]
        import asyncio

        res = await asyncio.gather(
            *(backend.chat(ChatRequest(messages=msgs, adapter=a, score_labels=tuple("01234"))) for a in ADAPTERS),
            backend.chat(ChatRequest(messages=msgs, adapter="fluency_en")),
        )
        for r in res[:3]:
            assert abs(sum(r.label_probs.values()) - 1) < 1e-5
        assert res[0].label_probs != res[1].label_probs  # different adapters, different judges
        assert res[3].completion_tokens >= 1 and res[3].prompt_tokens == res[0].prompt_tokens
    finally:
        await backend.aclose()


def _cli(capsys, *argv):
    """esc-bench convert-rank through the real entry point: (exit code, stderr)."""
    from esc_bench.cli import main

    capsys.readouterr()
    code = main(["convert-rank", *map(str, argv)])
    return code, capsys.readouterr().err


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_output_under_a_file_is_a_user_error(tmp_path, converted, capsys, monkeypatch):
    root = converted["root"]
    f = tmp_path / "file.txt"
    f.write_text("not a folder")
    for out in (f / "out", f):
        code, err = _cli(capsys, "--base", root / "base", "--adapters", root / "ESC-RANK" / "fluency", "--out", out)
        assert code == 2, err
        assert err.count("\n") == 1 and "is a file" in err and "internal error" not in err
    assert f.read_text() == "not a folder"
    # Past the up-front check, the OS error itself is still one line.
    monkeypatch.setattr(convert_rank, "_check_out_folder", lambda out: None)
    with pytest.raises(UserError, match="Not a directory") as exc:
        convert_rank.convert(root / "base", root / "ESC-RANK" / "fluency", f / "out")
    assert "\n" not in str(exc.value)


def test_corrupt_inputs_are_user_errors_and_leave_no_half_written_model(tmp_path, converted, capsys):
    root = converted["root"]
    base = tmp_path / "base"
    shutil.copytree(root / "base", base)
    shard = base / "model-00002-of-00002.safetensors"  # the first shard converts, then this one fails
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    out = tmp_path / "out"
    code, err = _cli(capsys, "--base", base, "--adapters", root / "ESC-RANK", "--out", out)
    assert code == 2 and err.count("\n") == 1 and shard.name in err and "internal error" not in err, err
    assert _leftovers(out) == []  # no model, no temporary folders
    # With --force over a good conversion: the failure leaves the previous one in place.
    shutil.copytree(converted["out"], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = _cli(capsys, "--base", base, "--adapters", root / "ESC-RANK", "--out", out, "--force")
    assert code == 2 and shard.name in err, err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert _leftovers(out) == sorted(["adapters", "chat_template.jinja", "conversion.json", "model"])
    # A truncated adapter (.bin, read with torch.load) fails the same way, after the model was written.
    adapters = tmp_path / "ESC-RANK"
    shutil.copytree(root / "ESC-RANK" / "overall_en", adapters / "overall_en")
    weights = adapters / "overall_en" / "adapter_model.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    code, err = _cli(capsys, "--base", root / "base", "--adapters", adapters, "--out", tmp_path / "out2")
    assert code == 2 and err.count("\n") == 1 and "adapter_model.bin" in err, err
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize("error", ["safetensors", "oserror"])
def test_write_failures_are_user_errors(tmp_path, converted, monkeypatch, error):
    from safetensors import SafetensorError

    def fail(*args, **kwargs):
        if error == "safetensors":
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        raise OSError(28, "No space left on device", str(args[1] / "model.safetensors"))

    monkeypatch.setattr(convert_rank, "write_weights", fail)
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)  # empty: may be replaced without --force
    with pytest.raises(UserError, match="No space left on device") as exc:
        convert_rank.convert(converted["root"] / "base", converted["root"] / "ESC-RANK" / "fluency", out)
    assert "\n" not in str(exc.value)
    assert _leftovers(out) == ["model"] and _leftovers(out / "model") == []


def test_reconverting_with_force_changes_the_judge_identity(tmp_path, converted):
    """The response cache must not serve replies of an earlier conversion into the same folder."""
    from esc_bench.backends.hf import HFBackend
    from esc_bench.config.schema import ModelConfig

    root, out = converted["root"], tmp_path / "o"
    meta = tmp_path / "meta.txt"

    def convert(text, **kw):
        meta.write_text(text)
        convert_rank.convert(root / "base", root / "ESC-RANK" / "fluency", out, meta_instruction_file=meta, force=True, **kw)
        cfg = ModelConfig(backend="hf", model=str(out / "model"), dtype="float32",
                          adapters={"fluency": str(out / "adapters" / "fluency")})
        return HFBackend(cfg).identity()

    first = convert("System A")
    other_text = convert("System B")
    other_rope = convert("System B", keep_dynamic_rope=True)
    assert first["model"] == other_text["model"] == other_rope["model"]
    assert len({first["model_files"], other_text["model_files"], other_rope["model_files"]}) == 3
    assert _leftovers(out) == sorted(["adapters", "chat_template.jinja", "conversion.json", "model"])
