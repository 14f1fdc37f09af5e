"""A runaway model's replies are cut at max_reply_chars, marked cut, and never read whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from esc_bench.backends.base import ChatRequest
from esc_bench.backends.managed import ManagedClient
from esc_bench.backends.openai_http import OpenAIHTTPBackend, partial_content
from esc_bench.backends.registry import make_backend
from esc_bench.config.schema import ModelConfig
from tests.support.fake_openai import FakeOpenAI, default_reply

ROOT = Path(__file__).resolve().parents[1]
HUGE = "I hear you. 我在听。" * 330_000  # about 5 MB of text, every CJK character escaped on the wire


def runaway(models: set[str]):
    def reply(body: dict) -> str:
        return HUGE if body.get("model") in models else default_reply(body)

    return reply


def test_partial_content_from_a_body_cut_anywhere() -> None:
    body = json.dumps({"id": "x", "choices": [{"message": {"role": "assistant", "content": 'a "q" \\ 我\n' * 50}}]}).encode()
    full = 'a "q" \\ 我\n' * 50
    start = body.index(b'"content"')
    for n in range(start + 12, len(body) - 40):
        text = partial_content(body[:n])
        assert text is not None and full.startswith(text), n
    assert partial_content(b'{"choices": [{"message": {"role": "assis') is None


@pytest.mark.asyncio
async def test_thin_client_reads_a_bounded_prefix_and_marks_the_reply_cut() -> None:
    with FakeOpenAI(reply=runaway({"sup"})) as srv:
        cfg = ModelConfig(name="sup", backend="openai", model="sup", api_base=srv.url, max_reply_chars=1000)
        backend = OpenAIHTTPBackend(cfg)
        try:
            res = await backend.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
        finally:
            await backend.aclose()
        assert res.cut and len(res.text) == 1000 and HUGE.startswith(res.text)
        # A short reply is untouched.
        small = ModelConfig(name="j", backend="openai", model="j", api_base=srv.url, max_reply_chars=1000)
        managed = ManagedClient(make_backend(small))
        try:
            ok = await managed.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
        finally:
            await managed.aclose()
        assert not ok.cut and ok.text == default_reply({"model": "j", "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.asyncio
async def test_litellm_replies_are_cut_after() -> None:
    with FakeOpenAI(reply=lambda body: "x" * 50_000) as srv:
        cfg = ModelConfig(name="l", backend="litellm", model="openai/l", api_base=srv.url, max_reply_chars=700)
        managed = ManagedClient(make_backend(cfg))
        try:
            res = await managed.chat(ChatRequest(messages=[{"role": "user", "content": "hi"}]))
        finally:
            await managed.aclose()
        assert res.cut and res.text == "x" * 700


def _peak_rss_run(tmp: Path, url: str, name: str) -> tuple[int, Path]:
    """Peak RSS (KB) of a 3-dialogue CLI run in a fresh interpreter, and its run folder."""
    models, tasks = tmp / "models", tmp / "tasks"
    models.mkdir(exist_ok=True)
    tasks.mkdir(exist_ok=True)
    for m in ("seeker", "sup", "judge"):
        (models / f"{m}.yaml").write_text(f"backend: openai\nmodel: {m}\napi_base: {url}\nmax_retries: 0\ntimeout: 60\n")
    (tasks / "mini.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 3}\nsimulator: seeker\njudge: judge\n"
    )
    out = tmp / name
    code = (
        "import resource, sys\n"
        "from esc_bench.cli import main\n"
        f"rc = main(['--models', 'sup', '--tasks', 'mini', '--model-configs', {str(models)!r}, "
        f"'--tasks-dir', {str(tasks)!r}, '--output', {str(out)!r}, '--no-cache', '--max-failures', '100%'])\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("PEAK")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    _, peak, rc = line[0].split()
    assert rc == "0", proc.stdout[-2000:] + proc.stderr[-2000:]
    return int(peak), out


@pytest.mark.slow
def test_memory_stays_flat_with_5mb_replies_and_the_records_say_cut(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        normal, _ = _peak_rss_run(tmp_path, srv.url, "normal")
    with FakeOpenAI(reply=runaway({"sup", "judge"})) as srv:
        big, out = _peak_rss_run(tmp_path, srv.url, "runaway")
    assert big < normal + 60_000, (normal, big)  # KB; whole 5 MB replies took gigabytes
    dialogues = [json.loads(x) for x in (out / "dialogues.jsonl").read_text().splitlines()]
    assert len(dialogues) == 3
    for d in dialogues:
        replies = [t for t in d["transcript"][1:] if t["speaker"] == "supporter"]  # after the greeting
        assert replies and all(t["cut"] is True and len(t["text"]) == 32_768 for t in replies)
        assert all("cut" not in t for t in d["transcript"] if t["speaker"] == "seeker")
    scores = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert scores and all(s["cut"] is True and len(s["raw"]) == 32_768 for s in scores)
    assert (out / "dialogues.jsonl").stat().st_size < 3 * 6 * 32_768 * 2  # not 3 × 5 × 5 MB
    # The report marks what was cut.
    from esc_bench.cli import main

    page = tmp_path / "report.html"
    assert main(["report", str(out), "--format", "html", "-o", str(page)]) == 0
    assert page.read_text().count("[cut: the reply was longer") >= 3 * 5
