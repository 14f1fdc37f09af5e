"""Test-wide environment: no network, no hub, a private cache dir."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.upstream_standins import upstream_mirror  # noqa: F401  (a fixture for every test)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_ESC_EVAL = SHARED / "esc-eval"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Never read or write the user's real cache; an unreachable upstream URL unless a test serves one.
    os.environ["ESC_BENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="esc-bench-test-cache-")
    os.environ["ESC_BENCH_UPSTREAM_URL"] = "http://127.0.0.1:9/unreachable"
    # Tests count the calls a run makes; the preflight's probes are tested on their own
    # (tests/test_preflight.py sets it back to 1).
    os.environ["ESC_BENCH_PREFLIGHT"] = "0"
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        os.environ.pop(var, None)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    """The loopback OpenAI-compatible server of a test module (a `hang` fault answers after 5 s)."""
    with FakeOpenAI(hang_s=5.0) as srv:
        yield srv


@pytest.fixture
def srv(server: FakeOpenAI) -> FakeOpenAI:
    """The module's server with its log, counts and queued faults cleared, no latency, Retry-After 0."""
    server.reset()
    server.latency = 0.0
    server.retry_after = "0"
    return server


@pytest.fixture
def shared_esc_eval() -> Path:
    if not (SHARED_ESC_EVAL / "upstream_protocol.json").exists():
        pytest.skip("../shared/esc-eval is absent (a clone outside the workplace)")
    return SHARED_ESC_EVAL
