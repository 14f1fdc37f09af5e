"""The parts of manifest.json every writer shares: timestamps, versions, the commit, invocations."""

from __future__ import annotations

import datetime as dt
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from esc_bench.records import Invocation, Manifest

_PACKAGES = (
    "pydantic", "aiohttp", "aiolimiter", "litellm", "rich", "numpy", "scipy",
    "torch", "transformers", "peft", "accelerate", "vllm",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The esc-bench checkout's commit, when it runs from one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def start_invocation(manifest: Manifest, argv: list[str]) -> None:
    manifest.invocations.append(Invocation(argv=list(argv), started=now_iso()))


def finish_invocation(manifest: Manifest, status: str, stats: dict[str, dict[str, Any]]) -> None:
    inv = manifest.invocations[-1]
    inv.finished = now_iso()
    inv.status = status
    inv.calls = sum(int(s.get("calls", 0)) for s in stats.values())
    inv.cache_hits = sum(int(s.get("cache_hits", 0)) for s in stats.values())
    manifest.cache["hits_total"] = sum(i.cache_hits for i in manifest.invocations)
    manifest.cache["last_stats"] = stats
