"""The run's summary ends with wall time, calls by role, tokens and cost; the progress counts
every call as it returns (judge calls too), and its ETA counts down the calls left."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from rich.console import Console

from esc_bench.backends.base import BackendError, ChatRequest, ChatResult
from esc_bench.backends.managed import CallStats
from esc_bench.cli import main
from esc_bench.engine.progress import ROLES, CountedSeat, RunProgress
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs


def test_the_summary_ends_with_wall_time_calls_by_role_tokens_and_cost(tmp_path: Path, capsys) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        assert main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
                     "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"]) == 0
        n_requests = srv.n_requests
    last = capsys.readouterr().out.strip().splitlines()[-1]
    m = re.fullmatch(r"wall ([\d.]+)s · calls 34 \(seeker 10, supporter 10, judge 14\) · cached 0 · retries 0 "
                     r"· tokens ([\d,]+) · cost unknown", last)
    assert m, last
    assert n_requests == 34
    recorded = sum(u.prompt_tokens + u.completion_tokens
                   for d in read_records(out / "dialogues.jsonl", DialogueRecord) for u in d.usage.values())
    recorded += sum(s.usage.prompt_tokens + s.usage.completion_tokens
                    for s in read_records(out / "scores.jsonl", ScoreRecord) if s.usage)
    assert int(m.group(2).replace(",", "")) == recorded > 0


class _Model:
    """Stands for a managed model: counts its own calls, as ManagedBackend does."""

    def __init__(self, stats: CallStats, fail: bool = False) -> None:
        self.stats, self.fail = stats, fail

    async def chat(self, request: ChatRequest) -> ChatResult:
        if self.fail:
            self.stats.add_error("server_error", final=True)
            raise BackendError("server_error", "down")
        res = ChatResult(text="3", prompt_tokens=10, completion_tokens=1)
        self.stats.add_result(res)
        return res


def test_progress_moves_with_every_call_and_its_eta_counts_calls() -> None:
    stats = {"m": CallStats()}
    roles = {r: CallStats() for r in ROLES}
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    progress = RunProgress(console, stats, total_dialogues=2, skipped=0, planned_calls=20, roles=roles)
    judge = CountedSeat(_Model(stats["m"]), roles["judge"])
    broken = CountedSeat(_Model(stats["m"], fail=True), roles["supporter"])

    async def calls() -> None:
        for _ in range(3):
            await judge.chat(ChatRequest(messages=[]))
        try:
            await broken.chat(ChatRequest(messages=[]))
        except BackendError:
            pass

    with progress:
        asyncio.run(calls())
        # No dialogue has finished, and yet every call, judge calls and a failed one, was counted.
        assert progress.calls_done == 4
        tasks = {t.description.strip(): t for t in progress._progress.tasks}
        assert tasks["dialogues"].completed == 0
        assert tasks["calls"].total == 20 and "calls 4" in tasks["calls"].fields["info"]
        assert "tokens 33" in tasks["calls"].fields["info"]
        assert roles["judge"].calls == 3 and roles["supporter"].failures == 1
        # The ETA is the calls row's (calls left), never the dialogues'.
        assert tasks["calls"].fields.get("eta") and not tasks["dialogues"].fields.get("eta")
