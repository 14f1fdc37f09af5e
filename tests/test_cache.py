"""ResponseCache: keys, round trips, concurrency (threads and processes), no secrets."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading

import pytest

from esc_bench.backends.base import ChatRequest, ChatResult
from esc_bench.backends.cache import ResponseCache, cache_key, default_cache_dir, default_cache_path
from esc_bench.backends.openai_http import OpenAIHTTPBackend
from esc_bench.config.schema import ModelConfig
from esc_bench.errors import DataError

MSGS = [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi"}]
ID = {"backend": "openai", "model": "m", "api_base": "http://x/v1"}


def key(identity=ID, messages=MSGS, params=None, **req):
    params = {} if params is None else params
    return cache_key(identity, ChatRequest(messages, params=params, **req), params)


def test_key_covers_every_input():
    base = key()
    assert base == key() and len(base) == 64
    assert key(identity={**ID, "model": "m2"}) != base
    assert key(messages=MSGS[:1]) != base
    assert key(params={"max_tokens": 5}) != base
    assert key(adapter="fluency_en") != base
    assert key(score_labels=("0", "1")) != base
    assert key(purpose="judge:Fluency") == base  # purpose is for logs only


def test_sample_index_separates_samples_and_re_asks():
    assert key(sample_index=3) != key(sample_index=0)  # a re-ask is a new call
    assert key(params={"temperature": 0}, sample_index=3) != key(params={"temperature": 0})
    assert key(params={"temperature": 0}, sample_index=0) == key(params={"temperature": 0})
    hot = {"temperature": 0.7}
    assert key(params=hot, sample_index=1) != key(params=hot, sample_index=0)
    assert key(params=hot, sample_index=1) == key(params=hot, sample_index=1)


def test_key_is_order_insensitive_for_params():
    assert key(params={"a": 1, "b": 2}) == key(params={"b": 2, "a": 1})


def test_round_trip_and_stats(tmp_path):
    path = tmp_path / "sub" / "responses.sqlite"
    with ResponseCache(path) as c:
        assert c.get("k") is None
        r = ChatResult("hello 你好", 10, 2, cost=0.01, finish_reason="stop", label_probs={"0": 0.5})
        c.put("k", r)
        got = c.get("k")
        assert got is not None and got.cached and not r.cached
        assert (got.text, got.prompt_tokens, got.completion_tokens, got.cost) == ("hello 你好", 10, 2, 0.01)
        assert got.label_probs == {"0": 0.5} and got.finish_reason == "stop"
        assert c.stats() == {"hits": 1, "misses": 1, "writes": 1}
        mode = c._db().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    with ResponseCache(path) as again:  # persists
        assert again.get("k").text == "hello 你好"


def test_unreadable_entry_is_a_miss(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as c:
        c._db().execute("INSERT INTO responses VALUES ('bad', 'not json', 0)")
        assert c.get("bad") is None


def test_not_a_database_is_a_data_error(tmp_path):
    p = tmp_path / "junk.sqlite"
    p.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="response cache"):
        ResponseCache(p)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("ESC_BENCH_CACHE_DIR", str(tmp_path / "cc"))
    assert default_cache_dir() == tmp_path / "cc"
    assert default_cache_path() == tmp_path / "cc" / "responses.sqlite"
    monkeypatch.delenv("ESC_BENCH_CACHE_DIR")
    assert str(default_cache_dir()).endswith(".cache/esc-bench")


def test_concurrent_threads_and_two_connections(tmp_path):
    path = tmp_path / "c.sqlite"
    a, b = ResponseCache(path), ResponseCache(path)
    errors = []

    def work(cache, tid):
        try:
            for i in range(50):
                cache.put(f"{tid}-{i}", ChatResult(f"t{tid} {i}"))
                assert cache.get(f"{tid}-{i}").text == f"t{tid} {i}"
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=((a, b)[t % 2], t)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(a) == 400 == len(b)
    a.close()
    b.close()


def _writer(path: str, pid: int, n: int) -> None:
    with ResponseCache(path) as c:
        for i in range(n):
            c.put(f"p{pid}-{i}", ChatResult(f"{pid}:{i}"))


def test_concurrent_processes(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, p, 100)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with ResponseCache(path) as c:
        assert len(c) == 300 and c.get("p2-99").text == "2:99"


def test_identity_and_database_hold_no_secret(tmp_path, monkeypatch):
    secret = "sk-planted-SECRET-987654321"
    monkeypatch.setenv("MY_KEY", secret)
    cfg = ModelConfig(name="m", backend="openai", model="m", api_base="http://x/v1", api_key_env="MY_KEY")
    backend = OpenAIHTTPBackend(cfg)
    ident = backend.identity()
    assert secret not in json.dumps(ident)
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as c:
        c.put(cache_key(ident, ChatRequest(MSGS), {}), ChatResult("hi"))
    conn = sqlite3.connect(path)
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert secret not in dump
    for f in tmp_path.iterdir():
        assert secret.encode() not in f.read_bytes()


def test_a_re_ask_is_not_served_the_first_reply() -> None:
    """A judge re-asks with sample_index 1, 2... at temperature 0: each is its own entry."""
    from esc_bench.backends.base import ChatRequest
    from esc_bench.backends.cache import cache_key

    ident = {"backend": "openai", "model": "j", "api_base": None}
    msgs = [{"role": "user", "content": "rate it"}]
    params = {"temperature": 0.0}
    k0 = cache_key(ident, ChatRequest(messages=msgs), params)
    k1 = cache_key(ident, ChatRequest(messages=msgs, sample_index=1), params)
    k2 = cache_key(ident, ChatRequest(messages=msgs, sample_index=2), params)
    assert len({k0, k1, k2}) == 3
    assert k0 == cache_key(ident, ChatRequest(messages=msgs, sample_index=0), params)
