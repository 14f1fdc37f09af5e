"""`backend: hf`: a transformers model in this process, with dynamic batching and LoRA per request.

`chat()` puts the request in a queue and awaits a future. One batcher task per event loop takes
the oldest request, waits up to `batch_wait_ms` for companions with the same generation settings
(up to `max_batch_size`), and runs them as ONE left-padded batch on a dedicated worker thread, so
the event loop never blocks. Requests may name different LoRA adapters in one batch (peft's
`adapter_names`, "__base__" for none). With `score_labels` a batch is a single forward pass that
reads P(label) at the first reply position instead of generating.

Prompts are `tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`,
then tokenized as upstream did (`tokenizer(text)`; special tokens only when the template has not
already put the BOS token in front). Greedy unless `temperature` > 0 (or `do_sample: true`, which
samples with the checkpoint's own generation defaults); stops at EOS and at `<|im_end|>` /
`<|eot_id|>` when the vocabulary has them. torch, transformers and peft load on first use.

`identity()` (the response-cache key) pins what changes replies: the model's small defining files
(config, generation config, tokenizer files, chat template, weight index) by content and its weight
files by name, size and mtime, plus the adapters' files by content. Both digests are computed on the
worker thread when the model loads (`start()`), never on the event loop once started.

Loading is serialised across the process (`_LOAD_LOCK`): transformers resolves its names lazily and
builds models on the meta device, neither of which is safe on two threads at once, so a run with
several local models (seeker, supporter and judge each its own hf model) loads them one after the
other on their worker threads. Their file digests, and every batch once loaded, run concurrently
(a loaded model's generate and forward import nothing new).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import json
import threading
from dataclasses import dataclass
from typing import Any

from esc_bench.backends.base import Backend, BackendError, ChatRequest, ChatResult
from esc_bench.backends.hf_files import adapter_digest, expand_path, model_digest, model_source
from esc_bench.config.schema import HFConfig
from esc_bench.errors import exc_line

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in a mixed batch
EXTRA_STOP_TOKENS = ("<|im_end|>", "<|eot_id|>")
GEN_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed", "do_sample")
DEFAULT_MAX_TOKENS = 512
_DTYPES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}
# One model loads at a time in this process (see the module docstring).
_LOAD_LOCK = threading.Lock()


@dataclass
class _Item:
    request: ChatRequest
    params: dict[str, Any]
    key: tuple[Any, ...]
    future: asyncio.Future
    enqueued: float


class HFBackend(Backend):
    """A local transformers causal LM (+ optional LoRA adapters), batched dynamically."""

    config: HFConfig

    def __init__(self, config: HFConfig) -> None:
        super().__init__(config)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="esc-bench-hf")
        self._pending: list[_Item] = []
        self._inflight: list[_Item] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self._model: Any = None
        self._tok: Any = None
        self._load_error: BackendError | None = None
        self._stop_ids: list[int] = []
        self._label_ids: dict[str, int] = {}
        self._digests: tuple[str, str] | None = None  # (model files, adapters)
        self._generation_cls: Any = None  # transformers.GenerationConfig, set by _load()

    # -- interface ------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        cfg = self.config
        model_files, adapters = self._file_digests()
        return {
            "backend": "hf",
            "model": cfg.model,
            "dtype": cfg.dtype,
            "model_files": model_files,
            "adapters": adapters,
        }

    async def chat(self, request: ChatRequest) -> ChatResult:
        if self._closed:
            raise BackendError("local", "backend is closed", retryable=False)
        if request.adapter is not None and request.adapter not in self.config.adapters:
            known = ", ".join(sorted(self.config.adapters)) or "none"
            raise BackendError(
                "bad_request", f"adapter {request.adapter!r} is not loaded (adapters: {known})", retryable=False
            )
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            if self._loop is not loop:  # requests of a previous event loop cannot be answered
                self._pending = []
            self._loop, self._wakeup = loop, asyncio.Event()
            self._task = loop.create_task(self._batcher(), name="esc-bench-hf-batcher")
        params = self.merged_params(request)
        if request.score_labels:
            key: tuple[Any, ...] = ("score", tuple(request.score_labels))
        else:
            key = ("generate", tuple((k, json.dumps(params[k], sort_keys=True)) for k in GEN_PARAMS if k in params))
        item = _Item(request, params, key, loop.create_future(), loop.time())
        self._pending.append(item)
        assert self._wakeup is not None
        self._wakeup.set()
        return await item.future

    async def start(self) -> None:
        """Load the model and adapters (and digest their files for identity()) off the event loop,
        before the first request's timeout runs."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._ensure_loaded)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for item in self._pending + self._inflight:
            if not item.future.done():
                item.future.set_exception(BackendError("local", "backend closed", retryable=False))
        self._pending, self._inflight = [], []
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._unload)
        finally:
            self._executor.shutdown(wait=False)

    # -- batching -------------------------------------------------------------------------

    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        wait_s = self.config.batch_wait_ms / 1000.0
        limit = self.config.max_batch_size
        assert self._wakeup is not None
        while True:
            self._pending = [p for p in self._pending if not p.future.done()]
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            head = self._pending[0]
            deadline = head.enqueued + wait_s
            while sum(p.key == head.key for p in self._pending) < limit and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch = [p for p in self._pending if p.key == head.key and not p.future.done()][:limit]
            taken = {id(p) for p in batch}
            self._pending = [p for p in self._pending if id(p) not in taken]
            if not batch:
                continue
            self._inflight = batch
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, head.key, [(p.request, p.params) for p in batch]
                )
            except Exception as exc:  # one failure answers the whole batch
                err = exc if isinstance(exc, BackendError) else _local_error(exc)
                results = [err] * len(batch)
            self._inflight = []
            for item, res in zip(batch, results):
                if item.future.done():
                    continue
                if isinstance(res, BaseException):
                    item.future.set_exception(res)
                else:
                    item.future.set_result(res)

    # -- worker thread --------------------------------------------------------------------

    def _run_batch(self, key: tuple[Any, ...], batch: list[tuple[ChatRequest, dict[str, Any]]]) -> list[Any]:
        """One batch the batcher formed."""
        self._ensure_loaded()
        return self._run_split(key, batch)

    def _run_split(self, key: tuple[Any, ...], batch: list[tuple[ChatRequest, dict[str, Any]]]) -> list[Any]:
        try:
            if key[0] == "score":
                return self._score([r for r, _ in batch], key[1])
            return self._generate([r for r, _ in batch], batch[0][1])
        except Exception as exc:
            if type(exc).__name__ != "OutOfMemoryError" or len(batch) == 1:
                raise
        self._empty_cache()  # out of memory: the same requests in two halves
        half = len(batch) // 2
        return self._run_split(key, batch[:half]) + self._run_split(key, batch[half:])

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        if self._load_error is not None:
            raise self._load_error
        try:
            self._load()
        except BackendError as exc:
            self._load_error = exc
            raise
        except Exception as exc:
            message = f"cannot load {self.config.model}: {exc_line(exc)}"
            self._load_error = BackendError("local", message, retryable=False)
            raise self._load_error from None

    def _load(self) -> None:
        with _LOAD_LOCK:
            from transformers import GenerationConfig  # resolved here so that batches import nothing

            tok, model = self._load_parts()
            model.eval()
        self._generation_cls = GenerationConfig
        stop: set[int] = set()
        for source in (getattr(model, "generation_config", None), tok):
            eos = getattr(source, "eos_token_id", None)
            stop.update([eos] if isinstance(eos, int) else list(eos or []))
        vocab = tok.get_vocab()
        stop.update(vocab[t] for t in EXTRA_STOP_TOKENS if t in vocab)
        self._stop_ids = sorted(stop)
        self._file_digests()  # on this worker thread, after a hub model is in the local cache
        self._tok, self._model = tok, model

    def _load_parts(self) -> tuple[Any, Any]:
        """(tokenizer, model with adapters) from the config; called under `_LOAD_LOCK`."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = self.config
        src = model_source(cfg)
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=cfg.trust_remote_code)
        if not getattr(tok, "chat_template", None):
            raise BackendError("local", f"{cfg.model}: the tokenizer has no chat template", retryable=False)
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        dtype = cfg.dtype if cfg.dtype == "auto" else _DTYPES.get(cfg.dtype.lower())
        if dtype is None:
            raise BackendError(
                "local", f"unknown dtype {cfg.dtype!r} (auto, bfloat16, float16, float32)", retryable=False
            )
        kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if cfg.trust_remote_code:
            kwargs["trust_remote_code"] = True
        if cfg.device_map is not None:
            kwargs["device_map"] = cfg.device_map
        # Any: the base model, or a PeftModel around it once adapters load
        model: Any = AutoModelForCausalLM.from_pretrained(src, **kwargs)
        if cfg.device_map is None and torch.cuda.is_available():
            model.to("cuda")
        if cfg.adapters:
            from peft import PeftModel

            (first, path), *rest = cfg.adapters.items()
            model = PeftModel.from_pretrained(model, expand_path(path), adapter_name=first, is_trainable=False)
            for name, path in rest:
                model.load_adapter(expand_path(path), adapter_name=name, is_trainable=False)
        return tok, model

    def _unload(self) -> None:
        loaded, self._model, self._tok = self._model is not None, None, None
        if loaded:
            self._empty_cache()

    @staticmethod
    def _empty_cache() -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _encode(self, requests: list[ChatRequest]) -> dict[str, Any]:
        tok = self._tok
        texts = [tok.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False) for r in requests]
        bos = tok.bos_token
        special = not (bos and texts[0].startswith(bos))
        enc = tok(texts, add_special_tokens=special, padding=True, return_tensors="pt")
        device = self._model.get_input_embeddings().weight.device
        return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def _adapter_kwargs(self, requests: list[ChatRequest]) -> dict[str, Any]:
        if not self.config.adapters:
            return {}
        return {"adapter_names": [r.adapter or BASE_ADAPTER for r in requests]}

    def _generate(self, requests: list[ChatRequest], params: dict[str, Any]) -> list[ChatResult]:
        import torch

        enc = self._encode(requests)
        gen = self._generation_config(params)
        kwargs: dict[str, Any] = {"generation_config": gen, **self._adapter_kwargs(requests)}
        stops = params.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=self._tok)
        if gen.do_sample and params.get("seed") is not None:
            torch.manual_seed(int(params["seed"]))
        with torch.inference_mode():
            out = self._model.generate(**enc, **kwargs)
        prompt_len = enc["input_ids"].shape[1]
        results = []
        for row, mask in zip(out[:, prompt_len:].tolist(), enc["attention_mask"].sum(-1).tolist()):
            n, finish = len(row), "length"
            for j, t in enumerate(row):
                if t in self._stop_ids:
                    n, finish = j + 1, "stop"
                    break
            text = self._tok.decode(row[:n], skip_special_tokens=True)
            for s in stops:
                if s and s in text:
                    text, finish = text[: text.index(s)], "stop"
            results.append(ChatResult(text=text, prompt_tokens=int(mask), completion_tokens=n, finish_reason=finish))
        return results

    def _generation_config(self, params: dict[str, Any]) -> Any:
        base = getattr(self._model, "generation_config", None)
        gen = copy.deepcopy(base) if base is not None else self._generation_cls()
        temperature = float(params.get("temperature") or 0.0)
        do_sample = bool(params["do_sample"]) if "do_sample" in params else temperature > 0
        gen.do_sample = do_sample
        gen.max_new_tokens = int(params.get("max_tokens") or DEFAULT_MAX_TOKENS)
        gen.num_beams = 1
        if do_sample:
            if temperature > 0:
                gen.temperature = temperature
            for k in ("top_p", "top_k"):
                if params.get(k) is not None:
                    setattr(gen, k, params[k])
        else:
            gen.temperature = gen.top_p = gen.top_k = None
        if params.get("repetition_penalty") is not None:
            gen.repetition_penalty = float(params["repetition_penalty"])
        gen.eos_token_id = list(self._stop_ids)
        gen.pad_token_id = self._tok.pad_token_id
        return gen

    def _label_id(self, label: str) -> int:
        if label not in self._label_ids:
            vocab = self._tok.get_vocab()
            if label in vocab:
                self._label_ids[label] = vocab[label]
            else:
                ids = self._tok.encode(label, add_special_tokens=False)
                if len(ids) != 1:
                    raise BackendError("bad_request", f"score label {label!r} is not one token", retryable=False)
                self._label_ids[label] = ids[0]
        return self._label_ids[label]

    def _score(self, requests: list[ChatRequest], labels: tuple[str, ...]) -> list[ChatResult]:
        import torch

        ids = [self._label_id(label) for label in labels]
        enc = self._encode(requests)
        mask = enc["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self._model(
                **enc, position_ids=positions, use_cache=False, logits_to_keep=1, **self._adapter_kwargs(requests)
            )
        probs = torch.softmax(out.logits[:, -1, :].float()[:, ids], dim=-1).tolist()
        results = []
        for row, n in zip(probs, mask.sum(-1).tolist()):
            dist = {label: float(p) for label, p in zip(labels, row)}
            best = max(labels, key=lambda label: dist[label])
            results.append(
                ChatResult(text=best, prompt_tokens=int(n), completion_tokens=0, finish_reason="stop", label_probs=dist)
            )
        return results

    # -- identity -------------------------------------------------------------------------

    def _file_digests(self) -> tuple[str, str]:
        """(model files digest, adapter digest), computed once: by `_load()` on the worker thread, or
        here on first use when identity() is asked before the model loads."""
        if self._digests is None:
            self._digests = (model_digest(self.config), adapter_digest(self.config))
        return self._digests


def _local_error(exc: BaseException) -> BackendError:
    oom = type(exc).__name__ == "OutOfMemoryError"
    return BackendError("local", f"{type(exc).__name__}: {exc_line(exc)}", retryable=oom)
