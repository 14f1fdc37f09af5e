"""SAGE test data from ../shared/sage (never copied into the repository) and a mirror serving it.

    with serve_sage_mirror(tmp_path, monkeypatch) as server:
        load_profiles()                               # downloads from the loopback mirror
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from esc_bench.data.sage_profiles import PROFILES_PATH
from esc_bench.data.upstream import SAGE
from tests.support.static_server import StaticServer

SHARED_SAGE = Path(__file__).resolve().parents[3] / "shared" / "sage"
PROFILES_FILE = SHARED_SAGE / "simulator_profile_withfirsttalk.jsonl"
RESULT_SAMPLE = SHARED_SAGE / "gpt-4.5_result.sample.jsonl"


def shared_sage_or_skip(path: Path = PROFILES_FILE) -> Path:
    """A file under ../shared/sage, or skip the calling test when it is absent."""
    if not path.is_file():
        pytest.skip(f"../shared/sage/{path.name} is not available")
    return path


def make_sage_mirror(root: Path) -> Path:
    """Lay out `<root>/<SAGE commit>/SAGE/profile/...` with the shared profile file; returns it."""
    dest = root / SAGE.commit / PROFILES_PATH
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(shared_sage_or_skip().read_bytes())
    return dest


@contextmanager
def serve_sage_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StaticServer]:
    """A loopback mirror serving SAGE's profiles (real bytes: the built-in pin applies), with the
    env pointing esc-bench at it and at a fresh cache (<tmp>/cache)."""
    root = tmp_path / "sage-mirror"
    make_sage_mirror(root)
    with StaticServer(root) as server:
        monkeypatch.setenv("ESC_BENCH_UPSTREAM_URL", server.url)
        monkeypatch.delenv("ESC_BENCH_UPSTREAM_PINS", raising=False)
        monkeypatch.setenv("ESC_BENCH_CACHE_DIR", str(tmp_path / "cache"))
        yield server
