"""Errors that reach the user as one clear line (never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class UserError(Exception):
    """Bad input or environment: printed as one line, exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A download, cache or data file problem."""


class ConfigError(UserError):
    """A task or model config that does not validate."""


def decode_text(data: bytes, label: str, error: type[UserError] = DataError) -> str:
    """UTF-8 text (a BOM is dropped); bytes that are not UTF-8 are one error naming line and offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{label}:{line}: not UTF-8 text (bad byte at offset {exc.start})") from None


def read_text(path: Path, error: type[UserError] = DataError, what: str = "file") -> str:
    """A text file's content, or one error line: missing, unreadable, or not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} not found") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path} ({exc.strerror or exc})") from None
    except ValueError:  # a path with a NUL byte (from a YAML string: a shell cannot pass one)
        raise error(f"cannot read {what} {path!r}: a path cannot hold a NUL byte") from None
    return decode_text(data, str(path), error)


def one_line(text: str, limit: int = 500) -> str:
    """Text on one line, cut to `limit` characters (for error records and messages)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exc_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut to `limit` characters (its type's name when empty)."""
    return one_line(str(exc), limit) or type(exc).__name__


def parse_json(text: str | bytes, label: str, error: type[UserError] = DataError, *, line: int | None = None) -> Any:
    """JSON from a user's file, or one error line: `label:line: invalid JSON: ...`.

    Nesting too deep for the parser (a RecursionError) is the same kind of error, not a crash.
    `line`: the line number of a JSONL line (the whole text is then that one line).
    """
    if isinstance(text, bytes):
        text = decode_text(text, label, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{label}:{line or exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        where = f"{label}:{line}" if line else label
        raise error(f"{where}: invalid JSON: nested too deeply") from None
