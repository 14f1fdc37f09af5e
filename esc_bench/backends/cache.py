"""SQLite response cache: one table, key -> ChatResult JSON.

The key is the sha256 of canonical JSON of everything that makes two calls
interchangeable: the backend's identity (never a secret), the messages, the
merged generation parameters, the adapter, the score labels, and the sample
index -- the latter only when sampling (temperature explicitly > 0).

Safe for many coroutines/threads in one process (one connection, a lock) and for
several processes sharing the file (WAL journal, busy timeout). Checked at open (a damaged file is
one error naming the way out); unreadable entries are misses; a cache that cannot be written is
warned about once and the run goes on without writing it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from esc_bench.backends.base import ChatRequest, ChatResult
from esc_bench.config.paths import cache_dir
from esc_bench.errors import DataError
from esc_bench.redact import redact

CACHE_FILE = "responses.sqlite"
_FIELDS = tuple(f.name for f in dataclasses.fields(ChatResult) if f.name != "cached")
_ADAPTER: Any = None  # pydantic's validator of ChatResult, made on first use
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`$ESC_BENCH_CACHE_DIR` or `~/.cache/esc-bench`: the one rule, in esc_bench.config.paths."""
    return cache_dir()


def default_cache_path() -> Path:
    return default_cache_dir() / CACHE_FILE


def _parse_entry(raw: Any) -> ChatResult | None:
    """A stored entry, or None when it is not one (wrong shape, not JSON, not text)."""
    from pydantic import TypeAdapter, ValidationError

    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = TypeAdapter(ChatResult)
    try:
        result = _ADAPTER.validate_json(raw, strict=True)  # unknown keys (older versions) are ignored
    except (ValueError, TypeError, ValidationError):
        return None
    result.cached = True
    return result


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


class CacheDamaged(Exception):
    """The database file is damaged or is not a response cache (inside ResponseCache only)."""


def _damaged(exc: sqlite3.Error) -> bool:
    return str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return " ".join(str(exc).split()) or type(exc).__name__


class ResponseCache:
    """The cache file, checked when opened: a damaged file stops the command before any call.

    Entries that cannot be read are misses. A cache that cannot be written (a full disk, a read-only
    file or folder) is warned about once; the run goes on, reading what it can and writing nothing.
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._timeout = busy_timeout_s
        self._writable = True
        self._read_warned = False
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(read_only=False)
        except CacheDamaged as exc:
            raise self._damage_error(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, sqlite3.Error) and _damaged(exc):
                raise self._damage_error(_reason(exc)) from None
            self._write_failed(exc)
            self._conn = self._open_read_only()

    def _damage_error(self, why: str) -> DataError:
        return DataError(
            f"the response cache {self.path} is damaged ({why}); run with --no-cache, "
            "or move the file away and a new cache is started"
        )

    def _connect(self, *, read_only: bool, immutable: bool = False) -> sqlite3.Connection:
        target = str(self.path)
        if read_only:
            target = f"file:{quote(target)}?mode=ro" + ("&immutable=1" if immutable else "")
        conn = sqlite3.connect(
            target,
            uri=read_only,
            timeout=self._timeout,
            check_same_thread=False,
            isolation_level=None,  # autocommit: every put is its own short transaction
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            if not read_only:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS responses ("
                    " key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL NOT NULL)"
                )
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise CacheDamaged(" ".join(str(problem).split())[:200])
            try:
                conn.execute("SELECT key, result, created FROM responses LIMIT 0")
            except sqlite3.OperationalError as exc:
                if read_only and "no such table" in str(exc):
                    raise
                raise CacheDamaged(f"not an esc-bench response cache: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection | None:
        """After a failed write at open: the entries already there, or no cache at all."""
        if not self.path.is_file():
            return None
        # A WAL database in a folder we cannot write cannot even be read normally (no -shm file can be
        # made): read it as a file nobody changes, which a folder nobody may write to is.
        error: sqlite3.Error | None = None
        for immutable in (False, True):
            try:
                return self._connect(read_only=True, immutable=immutable)
            except CacheDamaged as exc:
                raise self._damage_error(str(exc)) from None
            except sqlite3.Error as exc:
                if _damaged(exc):
                    raise self._damage_error(_reason(exc)) from None
                error = exc
        self._read_failed(error or sqlite3.Error("unreadable"))
        return None

    def _write_failed(self, exc: BaseException) -> None:
        if self._writable:
            self._writable = False
            log.warning("warning: the response cache %s cannot be written (%s); replies of this run are not "
                        "cached", self.path, _reason(exc))

    def _read_failed(self, exc: BaseException) -> None:
        if not self._read_warned:
            self._read_warned = True
            log.warning("warning: the response cache %s cannot be read (%s); its entries count as misses",
                        self.path, _reason(exc))

    def _db(self) -> sqlite3.Connection:
        if self._closed:
            raise DataError(f"the response cache {self.path} is closed")
        if self._conn is None:
            raise DataError(f"the response cache {self.path} could not be opened")
        return self._conn

    def get(self, key: str) -> ChatResult | None:
        with self._lock:
            row = None
            if self._conn is not None and not self._closed:
                try:
                    row = self._conn.execute("SELECT result FROM responses WHERE key = ?", (key,)).fetchone()
                except sqlite3.Error as exc:  # damage found mid-run: a miss, said once
                    self._read_failed(exc)
            result = _parse_entry(row[0]) if row is not None else None
            if result is None:
                self.misses += 1
                return None
            self.hits += 1
        return result

    def put(self, key: str, result: ChatResult) -> None:
        data = {k: getattr(result, k) for k in _FIELDS}
        raw = redact(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        with self._lock:
            if not self._writable or self._conn is None or self._closed:
                return
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO responses (key, result, created) VALUES (?, ?, ?)",
                    (key, raw, time.time()),
                )
            except sqlite3.Error as exc:
                self._write_failed(exc)
                return
            self.writes += 1

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "writes": self.writes}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
