"""Pinned downloads from upstream repositories (extraction: upstream_extract.py).

Nothing upstream is bundled: ESC-Eval's role cards and the two Python files that hold its
prompts, and SAGE's profiles, are fetched at run time from one pinned commit per source,
checked against sha256 pins, cached, and ESC-Eval's prompt strings are read from the Python
sources with `ast` only (never executed).

Sources: `ESC_EVAL` (haidequanbu/ESC-Eval, the default of every function here) and `SAGE`
(Tencent/digitalhuman, folder SAGE).

Environment:
  ESC_BENCH_UPSTREAM_URL   base URL (default: the source's raw.githubusercontent.com folder); a
                           file's URL is ``{base}/{commit}/{path}``, so one mirror serves every
                           source as ``<commit>/<path in repo>``.
  ESC_BENCH_CACHE_DIR      cache root (default ``~/.cache/esc-bench``); upstream files live in
                           ``<cache>/upstream/<commit>/<path>``.
  ESC_BENCH_UPSTREAM_PINS  path of a JSON file ``{path: sha256}`` whose entries replace the
                           built-in pins (for tests and private mirrors).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from esc_bench.config.paths import cache_dir
from esc_bench.data.upstream_extract import extract_protocol
from esc_bench.errors import DataError, parse_json, read_text
from esc_bench.files import write_atomic
from esc_bench.protocol import Protocol

UPSTREAM_REPO = "haidequanbu/ESC-Eval"
UPSTREAM_COMMIT = "9ad46e7b5e247e824dae4633910eaa82be668beb"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/haidequanbu/ESC-Eval"
PINNED_SHA256: dict[str, str] = {
    "data/card_high_en.json": "2c63cf0f65cbe159b38837e0da368667201d34e42c6e5ea1bedbcf35cb7ab4e8",
    "data/card_high_zh.json": "5579955ea5f74f20f9c8541a4370e387d2c58c575346db7c8c7c7ea9d2e6502d",
    "score.py": "1d775462adc7687d84ceb19d3648c3c917abf7ceed8b052b1fed8e4740f12724",
    "evaluate.py": "e66bda0e1093c2bec7c46daa6a64584cc6153e1f1bfde94b3fa2fd3c8f5629f8",
}
DOWNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PinnedSource:
    """One upstream repository at one commit, with the sha256 of each file esc-bench reads."""

    name: str
    repo: str  # owner/name on GitHub
    commit: str
    files: dict[str, str] = field(hash=False)  # path in repo -> sha256

    @property
    def default_base_url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}"


ESC_EVAL = PinnedSource("ESC-Eval", UPSTREAM_REPO, UPSTREAM_COMMIT, PINNED_SHA256)
SAGE = PinnedSource(
    "SAGE",
    "Tencent/digitalhuman",
    "6dcfa78b6556e7398a82809e383bd60a67fe19eb",
    {"SAGE/profile/simulator_profile_withfirsttalk.jsonl": (
        "99a2ed2ce2da3702a12c4abb4ccac85703bd1ad2a984012bf81b292458c3ee8b"
    )},
)


# -- download and cache -------------------------------------------------------------


def base_url(source: PinnedSource = ESC_EVAL) -> str:
    return (os.environ.get("ESC_BENCH_UPSTREAM_URL") or source.default_base_url).rstrip("/")


def file_url(path: str, source: PinnedSource = ESC_EVAL) -> str:
    return f"{base_url(source)}/{source.commit}/{path}"


def pins(source: PinnedSource = ESC_EVAL) -> dict[str, str]:
    """The source's sha256 pins in effect: the built-in ones, updated from ESC_BENCH_UPSTREAM_PINS."""
    result = dict(source.files)
    env = os.environ.get("ESC_BENCH_UPSTREAM_PINS")
    if not env:
        return result
    extra = parse_json(
        read_text(Path(env), what="pins file (ESC_BENCH_UPSTREAM_PINS)"), f"ESC_BENCH_UPSTREAM_PINS={env}"
    )
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise DataError(f"ESC_BENCH_UPSTREAM_PINS={env}: expected a JSON object {{path: sha256}}")
    result.update({k: v.lower() for k, v in extra.items()})
    return result


def cached_path(path: str, source: PinnedSource = ESC_EVAL) -> Path:
    """Where the verified copy of `path` is kept: ``<cache>/upstream/<commit>/<path>``."""
    return cache_dir() / "upstream" / source.commit / path


def fetch_pinned(path: str, source: PinnedSource = ESC_EVAL) -> Path:
    """Return a verified local copy of `path` in `source`, downloading it when not cached."""
    known = pins(source)
    expected = known.get(path)
    if expected is None:
        raise DataError(f"no sha256 pin for upstream file {path!r}; known: {', '.join(sorted(known))}")
    target = cached_path(path, source)
    try:
        if hashlib.sha256(target.read_bytes()).hexdigest() == expected:
            return target
    except OSError:
        pass  # not cached (or unreadable): download
    url = file_url(path, source)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            data = resp.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", None) or e
        reason = " ".join(str(reason).split()) or type(e).__name__
        raise DataError(
            f"cannot download {url}: {reason}; set ESC_BENCH_UPSTREAM_URL to a mirror or pre-fill {target}"
        ) from None
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise DataError(f"sha256 mismatch for {source.name} {path} from {url}: expected {expected}, got {got}")
    try:
        write_atomic(target, data)
    except OSError as e:
        raise DataError(f"cannot write cache file {target}: {e}") from None
    return target


def _read_source(path: str) -> str:
    local = fetch_pinned(path)
    try:
        return local.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read upstream {path} at {local}: {e}") from None


def load_upstream_protocol() -> Protocol:
    """Fetch the pinned evaluate.py and score.py and extract the `esc-eval` Protocol."""
    return extract_protocol(_read_source("evaluate.py"), _read_source("score.py"))
