"""HFBackend on tiny random models: batching never changes greedy output, LoRA per request,
logits scoring, and the event loop stays free while a batch runs."""

from __future__ import annotations

import asyncio
import random
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from esc_bench.backends.base import BackendError, ChatRequest  # noqa: E402
from esc_bench.backends.hf import HFBackend  # noqa: E402
from esc_bench.config.schema import ModelConfig  # noqa: E402
from tests.support.tiny_models import make_lora_adapters, make_tiny_lm  # noqa: E402

LABELS = tuple("01234")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    llama = make_tiny_lm(root / "llama", "llama", seed=0)
    qwen2 = make_tiny_lm(root / "qwen2", "qwen2", seed=1)
    digits = make_tiny_lm(root / "digits", "llama", seed=2, digit_boost=6.0)
    adapters = make_lora_adapters(llama, root / "adapters", ["fluency_en", "empathic_en"])
    return {"llama": llama, "qwen2": qwen2, "digits": digits, "adapters": adapters, "root": root}


def _cfg(path, **kw):
    base = dict(backend="hf", model=str(path), dtype="float32", device_map=None, max_batch_size=16,
                batch_wait_ms=30, generation={"max_tokens": 8})
    base.update(kw)
    return ModelConfig(**base)


def _conversations(n, seed=0):
    rng = random.Random(seed)
    words = "I feel sad tired lonely today my friend family said school work stress sleep 我 最近 压力 很大".split()
    out = []
    for i in range(n):
        msgs = [{"role": "system", "content": "You are a kind listener."}] if i % 2 else []
        for turn in range(1 + i % 3):
            msgs.append({"role": "user", "content": " ".join(rng.choice(words) for _ in range(rng.randint(2, 15)))})
            if turn < i % 3:
                msgs.append({"role": "assistant", "content": " ".join(rng.choice(words) for _ in range(4))})
        out.append(msgs)
    return out


def record_batches(backend: HFBackend) -> list[int]:
    """The size of every batch the backend's batcher runs, in order."""
    sizes: list[int] = []
    run_batch = backend._run_batch

    def recorded(key, batch):
        sizes.append(len(batch))
        return run_batch(key, batch)

    backend._run_batch = recorded
    return sizes


async def _run(cfg, requests, concurrent=True):
    backend = HFBackend(cfg)
    sizes = record_batches(backend)
    try:
        if concurrent:
            results = await asyncio.gather(*(backend.chat(r) for r in requests))
        else:
            results = [await backend.chat(r) for r in requests]
        return results, sizes
    finally:
        await backend.aclose()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
async def test_batched_greedy_equals_one_at_a_time(models, arch):
    requests = [ChatRequest(messages=m) for m in _conversations(8)]
    batched, sizes = await _run(_cfg(models[arch]), requests)
    single, _ = await _run(_cfg(models[arch], max_batch_size=1), requests, concurrent=False)
    assert max(sizes) > 1
    assert [r.text for r in batched] == [r.text for r in single]
    assert [(r.prompt_tokens, r.completion_tokens) for r in batched] == [(r.prompt_tokens, r.completion_tokens) for r in single]
    assert len({r.text for r in batched}) > 3  # the prompts really lead to different replies
    assert all(r.completion_tokens <= 8 and r.finish_reason in ("stop", "length") for r in batched)


@pytest.mark.slow
async def test_mixed_adapter_batch_equals_separate_runs(models):
    adapters = models["adapters"]
    names = ["fluency_en", "empathic_en", None, "fluency_en", None, "empathic_en"]
    convs = _conversations(6, seed=3)
    requests = [ChatRequest(messages=m, adapter=a) for m, a in zip(convs, names)]
    cfg = _cfg(models["llama"], adapters=adapters)
    mixed, sizes = await _run(cfg, requests)
    assert sizes == [6]  # one batch held all three adapters (base included)
    for name in ("fluency_en", "empathic_en", None):
        idx = [i for i, a in enumerate(names) if a == name]
        sub = [requests[i] for i in idx]
        alone, _ = await _run(_cfg(models["llama"], adapters=adapters, max_batch_size=1), sub, concurrent=False)
        assert [mixed[i].text for i in idx] == [r.text for r in alone]
    base_only, _ = await _run(_cfg(models["llama"]), [ChatRequest(messages=m) for m in convs])
    assert [mixed[i].text for i in (2, 4)] == [base_only[i].text for i in (2, 4)]
    assert sum(mixed[i].text != base_only[i].text for i in (0, 1, 3, 5)) >= 2  # adapters change replies


@pytest.mark.slow
async def test_logits_scoring(models):
    convs = _conversations(16, seed=5)
    cfg = _cfg(models["digits"], adapters=models["adapters"], generation={"max_tokens": 3})
    adapters = [None, "fluency_en", "empathic_en", None] * 4
    scored, sizes = await _run(cfg, [ChatRequest(messages=m, adapter=a, score_labels=LABELS) for m, a in zip(convs, adapters)])
    greedy, _ = await _run(cfg, [ChatRequest(messages=m, adapter=a) for m, a in zip(convs, adapters)])
    assert sizes == [16]  # scoring is one batched forward pass
    agreed = 0
    for s, g in zip(scored, greedy):
        assert set(s.label_probs) == set(LABELS)
        assert abs(sum(s.label_probs.values()) - 1.0) < 1e-6
        assert s.text == max(LABELS, key=s.label_probs.get)
        assert s.completion_tokens == 0 and s.prompt_tokens == g.prompt_tokens
        if g.text[:1] in LABELS:
            assert g.text[0] == s.text
            agreed += 1
    assert agreed >= 4
    assert len({s.text for s in scored}) > 1
    alone, _ = await _run(_cfg(models["digits"], adapters=models["adapters"], max_batch_size=1),
                          [ChatRequest(messages=convs[1], adapter="fluency_en", score_labels=LABELS)])
    assert alone[0].label_probs == pytest.approx(scored[1].label_probs, abs=1e-5)


async def test_requests_from_many_coroutines_are_batched(models):
    backend = HFBackend(_cfg(models["llama"], max_batch_size=8, batch_wait_ms=20, generation={"max_tokens": 4}))
    batch_sizes = record_batches(backend)
    convs = _conversations(24, seed=7)

    async def dialogue(i):
        await asyncio.sleep(random.Random(i).random() * 0.01)
        first = await backend.chat(ChatRequest(messages=convs[i]))
        msgs = convs[i] + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "and then?"}]
        return await backend.chat(ChatRequest(messages=msgs))

    try:
        results = await asyncio.gather(*(dialogue(i) for i in range(24)))
    finally:
        await backend.aclose()
    assert len(results) == 24 and sum(batch_sizes) == 48
    assert max(batch_sizes) > 1 and len(batch_sizes) < 48
    assert max(batch_sizes) <= 8


async def test_different_params_never_share_a_batch(models):
    convs = _conversations(6, seed=9)
    reqs = [ChatRequest(messages=m, params={"max_tokens": 2 if i % 2 else 6}) for i, m in enumerate(convs)]
    results, sizes = await _run(_cfg(models["llama"]), reqs)
    assert sorted(sizes) == [3, 3]
    assert all(r.completion_tokens <= (2 if i % 2 else 6) for i, r in enumerate(results))


async def test_event_loop_stays_free_during_a_batch(models):
    backend = HFBackend(_cfg(models["qwen2"], generation={"max_tokens": 24}))
    ticks = 0

    async def ticker(stop):
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    try:
        await backend.chat(ChatRequest(messages=_conversations(1)[0]))  # load first
        stop = asyncio.Event()
        tick_task = asyncio.create_task(ticker(stop))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(backend.chat(ChatRequest(messages=m)) for m in _conversations(6, seed=11)))
        elapsed = loop.time() - t0
        stop.set()
        await tick_task
    finally:
        await backend.aclose()
    assert ticks >= max(3, int(elapsed / 0.01 * 0.3))


async def test_stop_strings_and_errors(models):
    cfg = _cfg(models["llama"], adapters=models["adapters"])
    backend = HFBackend(cfg)
    try:
        msgs = _conversations(1, seed=13)[0]
        full = await backend.chat(ChatRequest(messages=msgs))
        cut = full.text[len(full.text) // 2 :][:2]
        if cut:
            stopped = await backend.chat(ChatRequest(messages=msgs, params={"stop": [cut]}))
            assert stopped.text == full.text[: full.text.index(cut)] and stopped.finish_reason == "stop"
        with pytest.raises(BackendError) as err:
            await backend.chat(ChatRequest(messages=msgs, adapter="nope"))
        assert err.value.kind == "bad_request" and not err.value.retryable
    finally:
        await backend.aclose()
    with pytest.raises(BackendError, match="closed"):
        await backend.chat(ChatRequest(messages=msgs))
    missing = HFBackend(_cfg(models["root"] / "absent"))
    try:
        with pytest.raises(BackendError) as err:
            await missing.chat(ChatRequest(messages=msgs))
        assert err.value.kind == "local" and not err.value.retryable and "does not exist" in err.value.message
    finally:
        await missing.aclose()


async def test_identity_and_home_paths(models, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(models["llama"], home / "m")
    shutil.copytree(models["adapters"]["fluency_en"], home / "a")
    monkeypatch.setenv("HOME", str(home))
    cfg = _cfg("~/m", adapters={"fluency_en": "~/a"})
    backend = HFBackend(cfg)
    ident = backend.identity()
    assert ident["model"] == "~/m" and ident["dtype"] == "float32" and ident["backend"] == "hf"
    try:
        res = await backend.chat(ChatRequest(messages=_conversations(1)[0], adapter="fluency_en"))
        assert res.text
    finally:
        await backend.aclose()
    other = HFBackend(_cfg("~/m", adapters={"fluency_en": models["adapters"]["empathic_en"]}))
    assert other.identity()["adapters"] != ident["adapters"]
    assert HFBackend(_cfg("~/m", adapters={"fluency_en": models["adapters"]["fluency_en"]})).identity() == ident


@pytest.mark.slow
async def test_out_of_memory_splits_the_batch(models, monkeypatch):
    class OutOfMemoryError(RuntimeError):
        pass

    backend = HFBackend(_cfg(models["llama"], generation={"max_tokens": 3}))
    batch_sizes = record_batches(backend)
    real = backend._generate
    sizes = []

    def generate(requests, params):
        sizes.append(len(requests))
        if len(requests) > 2:
            raise OutOfMemoryError("CUDA out of memory (simulated)")
        return real(requests, params)

    monkeypatch.setattr(backend, "_generate", generate)
    convs = _conversations(5, seed=17)
    try:
        results = await asyncio.gather(*(backend.chat(ChatRequest(messages=m)) for m in convs))
    finally:
        await backend.aclose()
    assert batch_sizes == [5] and sizes == [5, 2, 3, 1, 2]
    expected, _ = await _run(_cfg(models["llama"], generation={"max_tokens": 3}), [ChatRequest(messages=m) for m in convs])
    assert [r.text for r in results] == [r.text for r in expected]


def _ident(path, **kw):
    return HFBackend(_cfg(path, **kw)).identity()


def test_identity_pins_the_model_folder_files(models, tmp_path):
    """Re-converting into the same folder (other template, other rope) must not reuse cached replies."""
    import json
    import os

    m = tmp_path / "m"
    shutil.copytree(models["llama"], m)
    seen = [_ident(m)]
    assert _ident(m) == seen[0] and seen[0]["model"] == str(m)

    def changed():
        ident = _ident(m)
        assert ident["model"] == str(m) and ident not in seen
        seen.append(ident)

    tc = json.loads((m / "tokenizer_config.json").read_text())
    tc["chat_template"] = "{{ 'other system text' }}" + str(tc.get("chat_template", ""))
    (m / "tokenizer_config.json").write_text(json.dumps(tc))
    changed()
    (m / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    changed()
    cfg = json.loads((m / "config.json").read_text())
    cfg["rope_scaling"] = {"type": "dynamic", "factor": 2.0}
    (m / "config.json").write_text(json.dumps(cfg))
    changed()
    gen = json.loads((m / "generation_config.json").read_text())
    gen["eos_token_id"] = [gen["eos_token_id"], 0]
    (m / "generation_config.json").write_text(json.dumps(gen))
    changed()
    weights = m / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # rewritten: same size, new mtime
    changed()
    (m / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": {}}))
    changed()
    (m / "README.md").write_text("notes")  # not behaviour: same identity
    assert _ident(m) == seen[-1]


def test_identity_of_a_hub_id_uses_the_cached_snapshot(models, tmp_path, monkeypatch):
    import huggingface_hub

    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    snapshot = repo / "snapshots" / "abc123"
    shutil.copytree(models["llama"], snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    first = _ident("org/tiny")
    uncached = _ident("org/absent")
    assert uncached["model"] == "org/absent" and uncached["model_files"] != first["model_files"]
    assert _ident("org/absent") == uncached  # the id alone: stable, no error
    (snapshot / "chat_template.jinja").write_text("{{ 'new template' }}")
    assert _ident("org/tiny")["model_files"] != first["model_files"]


async def test_start_digests_the_files_on_the_worker_thread(models, tmp_path, monkeypatch):
    import threading

    from esc_bench.backends import hf
    from esc_bench.backends.cache import ResponseCache
    from esc_bench.backends.managed import ManagedClient

    calls = []
    for name in ("model_digest", "adapter_digest"):
        real = getattr(hf, name)

        def wrapped(config, _real=real, _name=name):
            calls.append((_name, threading.current_thread().name))
            return _real(config)

        monkeypatch.setattr(hf, name, wrapped)
    inner = HFBackend(_cfg(models["llama"], adapters={"fluency_en": models["adapters"]["fluency_en"]}))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    backend = ManagedClient(inner, cache)
    try:
        await backend.start()
        assert sorted(n for n, _ in calls) == ["adapter_digest", "model_digest"]
        assert all(t.startswith("esc-bench-hf") for _, t in calls), calls
        request = ChatRequest(messages=_conversations(1)[0], adapter="fluency_en")
        first = await backend.chat(request)
        again = await backend.chat(request)
        assert not first.cached and again.cached and again.text == first.text
        assert len(calls) == 2  # identity() on the event loop read no files
    finally:
        await backend.aclose()
        cache.close()
    fresh = HFBackend(_cfg(models["llama"]))
    assert fresh.identity()["model_files"] == inner.identity()["model_files"]  # before start(): computed in place


def test_esc_rank_defaults_to_float16_like_upstream():
    """Upstream's score.py loads InternLM2 + the ESC-RANK adapters in float16; so does esc-rank."""
    from esc_bench.config.loader import ModelRegistry

    assert ModelRegistry().get("esc-rank").dtype == "float16"


@pytest.mark.parametrize(
    ("dtype", "expected"), [("float16", "float16"), ("bfloat16", "bfloat16"), ("fp16", "float16")]
)
async def test_dtype_option_sets_the_weights_precision(models, dtype, expected):
    backend = HFBackend(_cfg(models["llama"], dtype=dtype, adapters={"fluency_en": models["adapters"]["fluency_en"]}))
    try:
        await backend.start()
        base = {p.dtype for n, p in backend._model.named_parameters() if "lora_" not in n}
        assert base == {getattr(torch, expected)}  # (peft keeps the small LoRA matrices in float32)
    finally:
        await backend.aclose()
