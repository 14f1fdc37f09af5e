"""The package stays clean: `ruff check esc_bench` and `mypy` (both configured in pyproject.toml).

Skipped where the `dev` extra's ruff or mypy is not installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_finds_nothing_in_the_package() -> None:
    res = _run("ruff", "check", "--no-cache", "esc_bench")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_mypy_finds_nothing_in_the_package() -> None:
    res = _run("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success" in res.stdout
