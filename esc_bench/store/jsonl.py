"""Append-only JSONL: one record a line, flushed and fsynced; a torn last line is ignored."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel, ValidationError

from esc_bench.errors import DataError
from esc_bench.files import write_atomic
from esc_bench.redact import redact

T = TypeVar("T", bound=BaseModel)


def iter_records(path: Path, model: type[T]) -> Iterator[T]:
    """Yield the valid records of a JSONL file.

    A last line without a newline (a write cut short) is skipped: its work is redone.
    A corrupt line in the middle means the file was edited by hand: that is an error.
    """
    if not path.exists():
        return
    with open(path, "rb") as fh:  # line by line: a big file is never held whole
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return  # the part after the last newline is torn (or empty)
            if not raw.strip():
                continue
            try:
                yield model.model_validate_json(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "line"
                raise DataError(f"{path}:{lineno}: not a valid {model.__name__} ({where}: {first['msg']})") from None


def read_records(path: Path, model: type[T]) -> list[T]:
    return list(iter_records(path, model))


class JsonlWriter:
    """Appends records line-atomically: each batch is written whole and flushed at once.

    A flushed line survives the process being killed. Against power loss the file is also
    fsynced, at most every `fsync_interval` seconds (group commit: a burst of finished
    dialogues must not stall the event loop on the disk) and on close.
    """

    def __init__(self, path: Path, *, fsync: bool = True, fsync_interval: float = 1.0) -> None:
        self.path = path
        self._fsync = fsync
        self._interval = fsync_interval
        self._last_sync = 0.0
        self._dirty = False
        self._fh: IO[bytes] | None = None

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _truncate_torn_tail(self.path)
            # Unbuffered: a failed write leaves nothing pending in memory to be flushed later.
            fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open across writes, closed by close()
            self._fh = fh
        return self._fh

    def write(self, record: BaseModel) -> None:
        self.write_many([record])

    def write_many(self, records: Sequence[BaseModel]) -> None:
        if not records:
            return
        fh = self._open()
        payload = redact("".join(r.model_dump_json() + "\n" for r in records)).encode()
        fd = fh.fileno()
        start = os.fstat(fd).st_size
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:  # e.g. a full disk: no half line is left behind
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._dirty = True
        if self._fsync and time.monotonic() - self._last_sync >= self._interval:
            self._sync()

    def _sync(self) -> None:
        if self._fh is not None and self._dirty:
            os.fsync(self._fh.fileno())
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                if self._fsync and self._dirty:
                    os.fsync(fh.fileno())
                    self._dirty = False
            finally:
                fh.close()


def _truncate_torn_tail(path: Path) -> None:
    """Drop a last line cut short by a crash, so the next record starts on a line of its own."""
    if not path.exists():
        return
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        # Scan back for the last newline (chunked: the torn line may be long).
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                break
        fh.truncate(keep)


def write_json_atomic(path: Path, obj: object) -> None:
    """Write a JSON file whole (esc_bench.files.write_atomic): readers never see half of it."""
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
