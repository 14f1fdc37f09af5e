"""A protocol of another shape plugs into the unchanged engine (issue 10, "Done when").

The toy protocol below exists only in this test. Its seeker keeps a `patience` state carried from
turn to turn: each seeker reply says how it moved ("DELTA +1 | line"), parsed strictly (a malformed
reply is asked again), and the plugin adds it to the previous turn's patience. The dialogue ends
early on that state (calmed at 4, gave up at 0), scores itself (no judge: the final patience as the
metric "calm" on a 0-5 scale, x20 for the 0-100 view) and counts its own outcomes.

It is registered in-process with `register`, and for CLI subprocesses through an
`esc_bench.protocols` entry point that the test writes (a dist-info folder on PYTHONPATH naming
`tests.test_protocol_plugin:toy_factory`). A subprocess run is killed mid-dialogue and resumed:
no request the server had answered is sent again. The leaderboard, the console table, the
markdown and the HTML report then show the toy metric.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from esc_bench.backends.base import Message
from esc_bench.cli import main
from esc_bench.protocols.base import JudgeSeat, ProtocolPlugin, SeekerStep, TurnContext, self_score
from esc_bench.protocols.registry import register, unregister
from esc_bench.records import (
    Card,
    DialogueRecord,
    Language,
    Leaderboard,
    MetricSpec,
    ProtocolSpec,
    ScoreRecord,
    TrajectorySpec,
    Turn,
)
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI, default_reply

NAME = "toy-patience"
START, CALM_AT, ROUNDS = 2, 4, 6
_REPLY = re.compile(r"^DELTA ([+-]\d) \| (.+)$", re.S)


class Patience(BaseModel):
    patience: int
    delta: int | None = None


def parse_reply(text: str) -> tuple[int, str]:
    m = _REPLY.match(text.strip())
    if not m:
        raise ValueError(f"not 'DELTA +n | line': {text[:40]!r}")
    return int(m.group(1)), m.group(2).strip()


class ToyProtocol(ProtocolPlugin):
    name = NAME
    state_model = Patience

    @property
    def spec(self) -> ProtocolSpec:
        return ProtocolSpec(
            metrics=(MetricSpec(name="calm", low=0, high=5, to_100=20),),
            average=False,
            outcomes=("calmed", "gave_up"),
            judged=False,
            trajectory=TrajectorySpec(key="patience", low=0, high=5, change="delta"),
        )

    @property
    def languages(self) -> tuple[Language, ...]:
        return ("en",)

    @property
    def default_rounds(self) -> int:
        return ROUNDS

    def fingerprint(self) -> str:
        return f"{NAME}:1"

    def initial_state(self, card: Card, language: Language) -> BaseModel | None:
        return Patience(patience=START)

    async def seeker_turn(self, ctx: TurnContext) -> SeekerStep:
        if ctx.replies >= ctx.rounds:
            return SeekerStep(text=None, end="rounds")
        before = ctx.state.patience if isinstance(ctx.state, Patience) else START
        history = "\n".join(f"{t.speaker}: {t.text}" for t in ctx.transcript) or "(you speak first)"
        messages: list[Message] = [
            {"role": "system", "content": f"Play this person; answer 'DELTA +n | line'. {ctx.card.base}"},
            {"role": "user", "content": history},
        ]
        (delta, line), _, _ = await ctx.seeker.ask_parsed(messages, parse_reply, retries=1, purpose="seeker:toy")
        patience = before + delta
        end = "calmed" if patience >= CALM_AT else "gave_up" if patience <= 0 else None
        return SeekerStep(text=line, state=Patience(patience=patience, delta=delta), end=end)

    def supporter_messages(self, card: Card, language: Language, transcript: list[Turn]) -> list[Message]:
        msgs: list[Message] = [{"role": "system", "content": "You are a kind listener."}]
        for t in transcript:
            msgs.append({"role": "user" if t.speaker == "seeker" else "assistant", "content": t.text})
        return msgs

    async def score(
        self, dialogue: DialogueRecord, judge: JudgeSeat | None, names: tuple[str, ...]
    ) -> list[ScoreRecord]:
        assert judge is None  # self-scored: the engine calls no judge
        final = dialogue.state["patience"] if dialogue.state else None
        return [self_score(dialogue, "calm", None if final is None else max(0, min(5, final)))]


def toy_factory(base_dir: Path | None = None) -> ToyProtocol:
    return ToyProtocol()


# -- the loopback server's toy seeker ------------------------------------------------

# SCRIPT:<kind> in the card: each reply's delta. up: 2 -> 4 calmed after 2 turns; down: 2 -> 0
# gave up after 2 turns; flat: the round cap; wobble: a malformed reply first each turn.
DELTAS = {"up": "+1", "down": "-1", "flat": "+0", "wobble": "+0"}
EXPECTED = {  # card -> (patience per seeker turn, end, calm)
    "up": ([3, 4], "calmed", 4),
    "down": ([1, 0], "gave_up", 0),
    "flat": ([2] * ROUNDS, "rounds", 2),
    "wobble": ([2] * ROUNDS, "rounds", 2),
}


class ToySeeker:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, body: dict[str, Any]) -> str:
        system = str(body["messages"][0].get("content", ""))
        if body.get("model") != "toy-seeker" or "SCRIPT:" not in system:
            return default_reply(body)
        kind = system.split("SCRIPT:")[1].split()[0]
        turn = str(body["messages"][-1]["content"]).count("seeker:")
        if kind == "wobble":
            key = json.dumps(body["messages"])
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] == 1:
                return "I don't know what to say."  # malformed the first time: asked again
        return f"DELTA {DELTAS[kind]} | line {turn + 1} of someone who is {kind}."


def write_setup(root: Path, url: str, cards: tuple[str, ...] = tuple(EXPECTED)) -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    for name in ("toy-seeker", "sup-a", "sup-b"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_concurrency: 8\nmax_retries: 1\n"
            "timeout: 10\ngeneration: {temperature: 0.0, max_tokens: 64}\n", encoding="utf-8")
    (root / "cards.jsonl").write_text(
        "\n".join(json.dumps({"id": c, "base": f"A tired student. SCRIPT:{c} end"}) for c in cards), encoding="utf-8")
    (tasks / "toy.yaml").write_text(
        f"language: en\nprotocol: {NAME}\ncards: {{source: {root / 'cards.jsonl'}}}\nsimulator: toy-seeker\n"
        "judge: self\n", encoding="utf-8")
    return models, tasks


def cli_args(models: Path, tasks: Path, out: Path, cache: Path, sups: str = "sup-a,sup-b") -> list[str]:
    return ["--models", sups, "--tasks", "toy", "--model-configs", str(models), "--tasks-dir", str(tasks),
            "--output", str(out), "--cache-dir", str(cache)]


@pytest.fixture
def registered() -> Iterator[None]:
    register(NAME, toy_factory)
    yield
    unregister(NAME)


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python finds the toy protocol through an `esc_bench.protocols` entry point."""
    site = tmp_path / "site"
    dist = site / "esc_bench_toy_protocol-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: esc-bench-toy-protocol\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[esc_bench.protocols]\n{NAME} = tests.test_protocol_plugin:toy_factory\n")
    root = Path(__file__).resolve().parents[1]
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(site), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _patience(d: DialogueRecord) -> list[int]:
    return [t.state["patience"] for t in d.transcript if t.speaker == "seeker" and t.state]


def test_the_toy_protocol_runs_ends_early_and_scores_itself(tmp_path: Path, registered: None, capsys) -> None:
    seeker = ToySeeker()
    with FakeOpenAI(reply=seeker) as srv:
        models, tasks = write_setup(tmp_path, srv.url)
        assert main(cli_args(models, tasks, tmp_path / "run", tmp_path / "c")) == 0
        requests = srv.requests
    out = capsys.readouterr().out
    ds = {(d.model, d.card_id): d for d in read_records(tmp_path / "run" / "dialogues.jsonl", DialogueRecord)}
    for (model, card), d in ds.items():
        want, end, _ = EXPECTED[card]
        assert d.status == "ok" and _patience(d) == want and d.end == end, (model, card)
    # the state was carried: each turn's delta moved the previous turn's patience
    assert [t.state["delta"] for t in ds[("sup-a", "up")].transcript if t.speaker == "seeker"] == [1, 1]
    scores = read_records(tmp_path / "run" / "scores.jsonl", ScoreRecord)
    assert {(s.model, s.card_id): (s.judge, s.dimension, s.score) for s in scores} == {
        (m, c): ("self", "calm", EXPECTED[c][2]) for m in ("sup-a", "sup-b") for c in EXPECTED}
    # no judge call; the malformed reply was asked again (one extra seeker call per wobble turn)
    by_model: dict[str, int] = {}
    for r in requests:
        by_model[r.body["model"]] = by_model.get(r.body["model"], 0) + 1
    assert not any("judge" in m for m in by_model)
    sup_calls = sum(len(EXPECTED[c][0]) - (EXPECTED[c][1] != "rounds") for c in EXPECTED)  # no reply after an early end
    assert by_model["sup-a"] - 1 <= sup_calls <= by_model["sup-a"]  # (+1: a preflight call, when made)
    # the supporter never sees the state nor the card
    assert not any("SCRIPT:" in json.dumps(r.body) or "DELTA" in json.dumps(r.body)
                   for r in requests if r.body["model"] == "sup-a")
    # the console table after the run is the toy's: its metric, scale and outcomes
    board = Leaderboard.model_validate_json((tmp_path / "run" / "leaderboard.json").read_bytes())
    assert board.spec("toy").metric_names == ["calm"] and board.dimensions == ["calm"]
    entry = next(e for e in board.entries if e.model == "sup-a")
    assert set(entry.scores) == {"calm"} and entry.scores["calm"].mean == pytest.approx((4 + 0 + 2 + 2) / 4)
    assert entry.scores["calm"].score_100 == pytest.approx(40.0)
    assert entry.outcomes == {"calmed": 1, "gave_up": 1}
    # patience per turn, by hand: up 3 4 | down 1 0 | flat 2.. | wobble 2..  (ended ones carry on)
    assert entry.trajectory[:3] == pytest.approx([(3 + 1 + 2 + 2) / 4, (4 + 0 + 2 + 2) / 4, 2.0])
    table = out.split("results:")[0]
    assert "calm" in table and "calmed" in table and "gave_up" in table and "scale 0–5" in table
    assert "fluency" not in table and "2.00 ±" in table


@pytest.mark.slow
def test_the_toy_protocol_is_killed_resumed_and_reported_by_the_cli(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    with FakeOpenAI(reply=ToySeeker(), latency=0.05) as srv:
        models, tasks = write_setup(tmp_path, srv.url, ("flat", "wobble"))
        out = tmp_path / "run"
        argv = [sys.executable, "-m", "esc_bench.cli", *cli_args(models, tasks, out, tmp_path / "cache", "sup-a")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=plugin_env, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and srv.n_requests < 20 and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        assert not (out / "dialogues.jsonl").exists() or not (out / "dialogues.jsonl").read_text().strip()
        before = srv.requests
        answered = {json.dumps(r.body, sort_keys=True) for r in before if r.time + 0.05 + 0.25 < killed_at}
        assert len(answered) >= 4
        res = subprocess.run([sys.executable, "-m", "esc_bench.cli", "resume", str(out)], env=plugin_env,
                             capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        after = [json.dumps(r.body, sort_keys=True) for r in srv.requests[len(before):]]
        assert not answered & set(after)  # no answered call was made again
    ds = {d.card_id: d for d in read_records(out / "dialogues.jsonl", DialogueRecord)}
    assert {c: (_patience(d), d.end) for c, d in ds.items()} == {
        c: (EXPECTED[c][0], EXPECTED[c][1]) for c in ("flat", "wobble")}
    # the resumed run's console table shows the toy metric
    assert "calm" in res.stdout + res.stderr and "fluency" not in res.stdout + res.stderr
    board = Leaderboard.model_validate_json((out / "leaderboard.json").read_bytes())
    assert [set(e.scores) for e in board.entries] == [{"calm"}]
    # markdown and HTML reports, each made by a fresh process
    rep = tmp_path / "r"
    for fmt in ("md", "html"):
        res = subprocess.run([sys.executable, "-m", "esc_bench.cli", "report", str(out), "--format", fmt,
                              "-o", f"{rep}.{fmt}"], env=plugin_env, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    md = Path(f"{rep}.md").read_text(encoding="utf-8")
    assert "| model | calm | calmed | gave_up | n | failed |" in md and "| sup-a | 2.00 ±" in md
    assert "scale 0–5" in md and "fluency" not in md
    page = Path(f"{rep}.html").read_text(encoding="utf-8")
    assert "<th>calm</th><th>calmed</th><th>gave_up</th>" in page and "fluency" not in page
    assert '<div class="meta">patience 2 (+0)</div>' in page  # each seeker line with its state
