"""Where esc-bench keeps its files on this machine: the cache root (responses, upstream downloads)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The esc-bench cache root (env ESC_BENCH_CACHE_DIR, default ~/.cache/esc-bench)."""
    env = os.environ.get("ESC_BENCH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "esc-bench"
