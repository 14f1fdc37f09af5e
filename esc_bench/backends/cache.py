"""SQLite response cache: one table, key -> ChatResult JSON.

The key is the sha256 of canonical JSON of everything that makes two calls
interchangeable: the backend's identity (never a secret), the messages, the
merged generation parameters, the adapter, the score labels, and the sample
index -- the latter only when sampling (temperature explicitly > 0).

Safe for many coroutines/threads in one process (one connection, a lock) and for
several processes sharing the file (WAL journal, busy timeout).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from esc_bench.backends.base import ChatRequest, ChatResult
from esc_bench.config.paths import cache_dir
from esc_bench.errors import DataError

CACHE_FILE = "responses.sqlite"
_FIELDS = tuple(f.name for f in dataclasses.fields(ChatResult) if f.name != "cached")


def default_cache_dir() -> Path:
    """`$ESC_BENCH_CACHE_DIR` or `~/.cache/esc-bench`: the one rule, in esc_bench.config.paths."""
    return cache_dir()


def default_cache_path() -> Path:
    return default_cache_dir() / CACHE_FILE


def _sampling(params: dict[str, Any]) -> bool:
    t = params.get("temperature")
    return isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0


def cache_key(identity: dict[str, Any], request: ChatRequest, params: dict[str, Any]) -> str:
    """sha256 of canonical JSON; `params` are the merged generation parameters."""
    obj: dict[str, Any] = {
        "identity": identity,
        "messages": request.messages,
        "params": params,
        "adapter": request.adapter,
        "score_labels": list(request.score_labels) if request.score_labels is not None else None,
    }
    # Repeats are distinct samples when sampling, and any explicit re-ask (a judge reply with
    # no score is asked again with sample_index 1, 2, ...) must not get the first reply back.
    if _sampling(params) or request.sample_index:
        obj["sample_index"] = request.sample_index
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: str | Path | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_s,
                check_same_thread=False,
                isolation_level=None,  # autocommit: every put is its own short transaction
            )
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL NOT NULL)"
            )
        except (sqlite3.Error, OSError) as exc:
            raise DataError(f"cannot open the response cache {self.path}: {exc}") from None
        self._conn: sqlite3.Connection | None = conn

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DataError(f"the response cache {self.path} is closed")
        return self._conn

    def get(self, key: str) -> ChatResult | None:
        with self._lock:
            try:
                row = self._db().execute(
                    "SELECT result FROM responses WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise DataError(f"response cache {self.path}: {exc}") from None
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        try:
            data = json.loads(row[0])
            result = ChatResult(**{k: data[k] for k in _FIELDS if k in data})
        except (ValueError, TypeError):
            return None  # an unreadable entry is a miss; the next put replaces it
        result.cached = True
        return result

    def put(self, key: str, result: ChatResult) -> None:
        data = {k: getattr(result, k) for k in _FIELDS}
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            try:
                self._db().execute(
                    "INSERT OR REPLACE INTO responses (key, result, created) VALUES (?, ?, ?)",
                    (key, raw, time.time()),
                )
            except sqlite3.Error as exc:
                raise DataError(f"response cache {self.path}: {exc}") from None
            self.writes += 1

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "writes": self.writes}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
