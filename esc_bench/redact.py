"""Secrets never leave the process: API keys and URL credentials are cut from everything written.

A server may quote a request's Authorization header back (in a reply or an error body), and a URL
may carry `user:password@`. `redact(text)` replaces the value of every key variable in the
environment with `[redacted]` and drops the credentials of every URL. Key variables: those the model
configs name (`api_key_env`, see `watch_env`) and every variable whose name ends in KEY, TOKEN,
SECRET or PASSWORD (the providers' defaults, e.g. OPENAI_API_KEY, which litellm reads itself).

It is applied where text enters from a backend (replies and errors, in the managed backend) and,
as a backstop, by every writer: run records, whole files, the response cache, stdout, error lines.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import urllib.parse
from typing import Protocol, TypeVar


class _Config(Protocol):  # a ModelConfig (this module sits below the config layer)
    api_key_env: str | None

    def api_bases(self) -> list[str | None]: ...


class _Reply(Protocol):  # a ChatResult
    text: str


class _Error(Protocol):  # a BackendError
    message: str
    args: tuple[object, ...]


R = TypeVar("R", bound=_Reply)
E = TypeVar("E", bound=_Error)

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # a shorter value ("1", "true") is no key, and replacing it would garble text
_KEY_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#\"'<>]*@")

_watched: set[str] = set()  # variable names the model configs give as api_key_env
_values: set[str] = set()  # secrets met elsewhere: URL passwords and their Basic-auth form


def watch_env(name: str | None) -> None:
    """Treat the variable `name` as a key variable, whatever it is called."""
    if name:
        _watched.add(name)


def watch_config(config: _Config) -> None:
    """A model config about to be used: its key variable, and the passwords in its URLs."""
    watch_env(config.api_key_env)
    for url in config.api_bases():
        if url:
            strip_userinfo(url)


def add_secret(value: str | None) -> None:
    if value and len(value) >= MIN_SECRET_CHARS:
        _values.add(value)


def _key_variable_values() -> set[str]:
    """The values of the key variables in the environment now.

    Called for every reply and every write, so it reads the environment's raw bytes mapping where
    there is one (POSIX) and decodes only the matches: `os.environ.items()` decodes every name and
    value and cost a sixth of a run's client CPU.
    """
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict) and all(isinstance(k, bytes) for k in raw):
        watched = {os.fsencode(w) for w in _watched}
        suffixes = tuple(s.encode() for s in _KEY_SUFFIXES)
        return {os.fsdecode(v) for k, v in raw.items() if k.upper().endswith(suffixes) or k in watched}
    return {v for k, v in os.environ.items() if k.upper().endswith(_KEY_SUFFIXES) or k in _watched}


def secret_values() -> tuple[str, ...]:
    """Every secret value known now, longest first (so a key is cut whole, not a prefix of it)."""
    found = _key_variable_values() | _values
    return tuple(sorted((v for v in found if len(v.strip()) >= MIN_SECRET_CHARS), key=lambda v: (-len(v), v)))


@functools.lru_cache(maxsize=16)
def _pattern(values: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(re.escape(v) for v in values)) if values else None


def redact(text: str) -> str:
    """`text` without any secret value or URL credentials."""
    if not text:
        return text
    pattern = _pattern(secret_values())
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "@" in text:
        text = _URL_USERINFO.sub(r"\1", text)
    return text


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@` (for anything written); its password is remembered as a secret."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return redact(url)
    if "@" not in parts.netloc:
        return url
    user, _, password = parts.netloc.rpartition("@")[0].partition(":")
    add_secret(urllib.parse.unquote(password))
    add_secret(base64.b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()).decode())
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def redact_result(result: R) -> R:
    """A reply as it enters from a backend."""
    text = redact(result.text)
    if text != result.text:
        result.text = text
    return result


def redact_error(err: E) -> E:
    """A backend's error as it enters: its message (what records and summaries show)."""
    message = redact(err.message)
    if message != err.message:
        err.message = message
        err.args = (message,)
    return err
