"""ResponseCache: keys, round trips, concurrency (threads and processes), no secrets."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading

import pytest

from esc_bench.backends.base import ChatRequest, ChatResult
from esc_bench.backends.cache import (
    ResponseCache,
    cache_key,
    default_cache_dir,
    default_cache_path,
)
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


# ---- a damaged or unwritable cache (issue 8.15, 8.14) -------------------------------------------

def _filled(path, n=600):
    """A real cache file of many pages (WAL checkpointed into the file on close)."""
    with ResponseCache(path) as c:
        for i in range(n):
            c.put(f"k{i}", ChatResult(f"reply {i} " + "x" * 300, 10, 2))
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _damage(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_header_damage_is_named_with_the_way_out(tmp_path):
    path = _filled(tmp_path / "c.sqlite", 20)
    _damage(path, 0, b"Not SQLite at all")
    with pytest.raises(DataError) as e:
        ResponseCache(path)
    msg = str(e.value)
    assert str(path) in msg and "--no-cache" in msg and "move" in msg and "\n" not in msg


def test_page_damage_in_the_middle_is_found_at_open(tmp_path):
    path = _filled(tmp_path / "c.sqlite")
    size = path.stat().st_size
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    assert size // page > 20
    middle = (size // page // 2) * page
    _damage(path, middle, bytes(range(256)) * (page // 256))  # a b-tree page turned to junk
    with pytest.raises(DataError) as e:
        ResponseCache(path)
    assert "damaged" in str(e.value) and "--no-cache" in str(e.value) and str(path) in str(e.value)


@pytest.mark.parametrize("raw", [
    "[1, 2]", "null", "5", '"text"', '{"text": 5}', '{"prompt_tokens": 3}', '{"text": "x", "prompt_tokens": "many"}',
    '{"text": "x", "label_probs": [1, 2]}', '{"text": "x", "cost": "free"}', "not json",
])
def test_an_entry_of_the_wrong_shape_is_a_miss(tmp_path, raw):
    with ResponseCache(tmp_path / "c.sqlite") as c:
        c._db().execute("INSERT INTO responses VALUES ('bad', ?, 0)", (raw,))
        assert c.get("bad") is None
        assert c.stats() == {"hits": 0, "misses": 1, "writes": 0}
        c.put("bad", ChatResult("fresh"))  # the next put replaces it
        assert c.get("bad").text == "fresh"


def test_a_full_cache_is_warned_about_once_then_not_written(tmp_path, caplog):
    path = _filled(tmp_path / "c.sqlite", 50)
    with ResponseCache(path) as c:
        pages = c._db().execute("PRAGMA page_count").fetchone()[0]
        c._db().execute(f"PRAGMA max_page_count={pages}")  # sqlite's own SQLITE_FULL from here on
        with caplog.at_level("WARNING"):
            for i in range(200):
                c.put(f"new{i}", ChatResult("y" * 2000))  # never raises
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert str(path) in warnings[0].getMessage() and "not cached" in warnings[0].getMessage()
        assert c.get("k3").text.startswith("reply 3")  # reads still work


def _run(models, tasks, out, cache_dir, *extra):
    from esc_bench.cli import main

    return main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "1", "--model-configs", str(models),
                 "--tasks-dir", str(tasks), "--output", str(out), "--cache-dir", str(cache_dir), *extra])


def test_a_damaged_cache_stops_the_run_before_any_call(tmp_path, capsys):
    from tests.support.fake_openai import FakeOpenAI
    from tests.test_e2e_cli import write_configs

    cache_dir = tmp_path / "cache"
    _filled(cache_dir / "responses.sqlite")
    path = cache_dir / "responses.sqlite"
    page = 4096
    _damage(path, (path.stat().st_size // page // 2) * page, b"\xff" * page)
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        rc = _run(models, tasks, tmp_path / "run", cache_dir)
        err = capsys.readouterr().err
        assert rc == 2 and srv.n_requests == 0
        assert err.count("\n") == 1 and "damaged" in err and "--no-cache" in err and str(path) in err
        assert not (tmp_path / "run" / "manifest.json").exists()
        assert _run(models, tasks, tmp_path / "run", cache_dir, "--no-cache") == 0  # the way out works


def test_cache_entries_of_the_wrong_shape_are_asked_again(tmp_path, capsys):
    from tests.support.fake_openai import FakeOpenAI
    from tests.test_e2e_cli import write_configs

    cache_dir = tmp_path / "cache"
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        assert _run(models, tasks, tmp_path / "run1", cache_dir) == 0
        first = srv.n_requests
        conn = sqlite3.connect(cache_dir / "responses.sqlite")
        conn.execute("""UPDATE responses SET result = '{"text": 5, "prompt_tokens": "x"}'""")
        conn.commit()
        conn.close()
        assert _run(models, tasks, tmp_path / "run2", cache_dir) == 0, capsys.readouterr().err
        assert srv.n_requests == 2 * first  # every call made again, none served from a bad entry
        assert _run(models, tasks, tmp_path / "run3", cache_dir) == 0
        assert srv.n_requests == 2 * first  # and the fresh replies replaced the bad entries


def _without_root_powers(cmd: list[str]) -> list[str]:
    """`cmd` run so that file permissions hold (root writes anywhere unless it drops these capabilities)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return cmd
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to hold")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", *cmd]


@pytest.mark.parametrize("where", ["folder", "file", "no-folder"])
def test_a_cache_that_cannot_be_written_is_warned_about_once(tmp_path, where):
    import os
    import stat
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.fake_openai import FakeOpenAI
    from tests.test_e2e_cli import write_configs

    root = tmp_path
    cache_dir = root / "cache"
    try:
        with FakeOpenAI() as srv:
            models, tasks = write_configs(root, srv.url)
            assert _run(models, tasks, root / "run1", cache_dir, "--limit", "2") == 0  # fills the cache
            srv.reset()
            if where == "folder":
                (cache_dir / "responses.sqlite").chmod(0o444)
                cache_dir.chmod(0o555)
            elif where == "file":
                (cache_dir / "responses.sqlite").chmod(0o444)
            else:
                cache_dir.chmod(0o555)
                cache_dir = cache_dir / "sub"  # cannot be made
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            proc = subprocess.run(_without_root_powers(
                [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a", "--tasks", "mini_en", "--limit", "3",
                 "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(root / "run2"),
                 "--cache-dir", str(cache_dir)]), check=False, env=env, cwd=root, capture_output=True, text=True,
                timeout=120)
        assert proc.returncode == 0, proc.stderr
        warned = [line for line in proc.stderr.splitlines() if "response cache" in line]
        assert len(warned) == 1 and "cannot be written" in warned[0], proc.stderr
        assert (root / "run2" / "leaderboard.json").exists()
        # the two cards already cached are read from it where the file is there to read
        assert srv.n_requests == (3 if where == "no-folder" else 1) * 17
    finally:  # let pytest clean up
        for p in [root, *root.rglob("*")]:
            if p.is_dir():
                p.chmod(p.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
