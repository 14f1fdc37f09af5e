"""The sage protocol end to end: the CLI against the loopback server playing a scripted sentient seeker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.support.sage_seeker import SageSeeker

SCRIPTS = ("up", "down", "bye", "flat", "badonce", "bad")


def write_setup(root: Path, url: str, scripts: tuple[str, ...] = SCRIPTS, lang: str = "en") -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    for name in ("seeker", "sup-a", "sup-b"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_concurrency: 8\nmax_retries: 1\n"
            "timeout: 10\ngeneration: {temperature: 0.0, max_tokens: 64}\n", encoding="utf-8")
    cards = root / "cards.jsonl"
    cards.write_text("\n".join(json.dumps({"id": s, "base": f"A tired night-shift nurse. SCRIPT:{s}"}) for s in scripts))
    (tasks / "sage_mini.yaml").write_text(
        f"language: {lang}\nprotocol: sage\ncards: {{source: {cards}}}\nsimulator: seeker\njudge: self\n", encoding="utf-8")
    return models, tasks


def run(models: Path, tasks: Path, out: Path, *args: str, sups: str = "sup-a") -> int:
    return main(["--models", sups, "--tasks", "sage_mini", "--model-configs", str(models),
                 "--tasks-dir", str(tasks), "--output", str(out), *args])


def emotions(d: DialogueRecord) -> list[int]:
    return [t.state["emotion"] for t in d.transcript if t.speaker == "seeker" and t.state]


def test_endings_scores_and_a_malformed_seeker(tmp_path: Path, capsys) -> None:
    seeker = SageSeeker()
    with FakeOpenAI(reply=seeker) as srv:
        models, tasks = write_setup(tmp_path, srv.url)
        rc = run(models, tasks, tmp_path / "run", "--judge", "some-judge", "--cache-dir", str(tmp_path / "c"))
        requests = srv.requests
    err = capsys.readouterr()
    assert rc == 1  # the "bad" seeker's dialogue failed; --max-failures is 0
    assert "--judge some-judge is ignored" in err.out
    assert "sentient agent (SAGE)" in err.out  # the protocol's own table after the run
    ds = {d.card_id: d for d in read_records(tmp_path / "run" / "dialogues.jsonl", DialogueRecord)}
    assert emotions(ds["up"]) == [40, 50, 60, 70, 80, 90, 100] and ds["up"].end == "success"
    assert emotions(ds["down"]) == [40, 30, 20, 10, 0] and ds["down"].end == "failure"
    assert emotions(ds["bye"]) == [40, 40, 40] and ds["bye"].end == "goodbye"
    assert ds["bye"].transcript[-1].text.endswith("bye") and ds["bye"].transcript[-1].state["goodbye"] is True
    # the cap: 10 supporter replies, the last one unrated (opening + 9 rated seeker turns)
    flat = ds["flat"]
    assert flat.end == "rounds" and emotions(flat) == [40] * 10
    assert sum(t.speaker == "supporter" for t in flat.transcript) == 10 and flat.transcript[-1].speaker == "supporter"
    # a malformed reply is asked again and then accepted ...
    assert ds["badonce"].status == "ok" and emotions(ds["badonce"]) == [40] * 10
    # ... or, malformed every time, the turn fails after 1 + 2 re-asks (never guessed)
    bad = ds["bad"]
    assert bad.status == "failed" and bad.error is not None and bad.error.type == "bad_response"
    assert bad.error.role == "seeker" and emotions(bad) == [40]
    feel_bad = [r for r in requests if "SCRIPT:bad" in r.body["messages"][0]["content"]
                and '"thoughts"' in r.body["messages"][0]["content"] and "SCRIPT:badonce" not in r.body["messages"][0]["content"]]
    assert len(feel_bad) == 3
    # every turn records emotion, change and thoughts (the opening: emotion only)
    turn = ds["up"].transcript[2]
    assert turn.state == {"emotion": 50, "change": 10, "thoughts": "(up) they said something.", "goodbye": False}
    assert ds["up"].transcript[0].state == {"emotion": 40, "change": None, "thoughts": None, "goodbye": False}
    # self-scored: the final emotion, no judge call
    scores = {s.card_id: s for s in read_records(tmp_path / "run" / "scores.jsonl", ScoreRecord)}
    assert {k: (s.score, s.judge, s.dimension) for k, s in scores.items()} == {
        "up": (100, "self", "emotion"), "down": (0, "self", "emotion"), "bye": (40, "self", "emotion"),
        "flat": (40, "self", "emotion"), "badonce": (40, "self", "emotion"),
    }
    # the supporter never sees the profile, the emotion or the thoughts
    for r in requests:
        if r.body["model"] == "sup-a":
            blob = json.dumps(r.body, ensure_ascii=False)
            assert "SCRIPT:" not in blob and "they said something" not in blob and '"thoughts"' not in blob


def test_chinese_cards_and_a_rerun_makes_no_call(tmp_path: Path) -> None:
    with FakeOpenAI(reply=SageSeeker()) as srv:
        models, tasks = write_setup(tmp_path, srv.url, ("up", "bye"), lang="zh")
        assert run(models, tasks, tmp_path / "run", "--cache-dir", str(tmp_path / "c")) == 0
        n = srv.n_requests
        assert run(models, tasks, tmp_path / "run", "--cache-dir", str(tmp_path / "c")) == 0
        assert srv.n_requests == n
    ds = {d.card_id: d for d in read_records(tmp_path / "run" / "dialogues.jsonl", DialogueRecord)}
    assert ds["up"].end == "success" and ds["bye"].end == "goodbye"


@pytest.mark.slow
def test_sigkill_mid_dialogue_then_resume_repeats_no_call(tmp_path: Path) -> None:
    with FakeOpenAI(reply=SageSeeker()) as ref:
        models, tasks = write_setup(tmp_path / "ref", ref.url, ("flat",))
        assert run(models, tasks, tmp_path / "ref_run", "--cache-dir", str(tmp_path / "refcache")) == 0
    with FakeOpenAI(reply=SageSeeker(), latency=0.05) as srv:
        models, tasks = write_setup(tmp_path / "k", srv.url, ("flat",))
        out = tmp_path / "run"
        argv = [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a", "--tasks", "sage_mini",
                "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out),
                "--cache-dir", str(tmp_path / "cache")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and srv.n_requests < 16:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        assert not (out / "dialogues.jsonl").exists() or not (out / "dialogues.jsonl").read_text().strip()
        before = srv.requests
        answered = {json.dumps(r.body, sort_keys=True) for r in before if r.time + 0.05 + 0.25 < killed_at}
        assert len(answered) >= 4
        res = subprocess.run([sys.executable, "-m", "esc_bench.cli", "resume", str(out)], env=os.environ.copy(),
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        after = [json.dumps(r.body, sort_keys=True) for r in srv.requests[len(before):]]
        assert not answered & set(after)
    [got] = read_records(out / "dialogues.jsonl", DialogueRecord)
    [want] = read_records(tmp_path / "ref_run" / "dialogues.jsonl", DialogueRecord)
    assert got.transcript == want.transcript and got.end == want.end == "rounds"


def test_compare_two_sage_runs(tmp_path: Path, capsys) -> None:
    with FakeOpenAI(reply=SageSeeker()) as srv:
        models, tasks = write_setup(tmp_path, srv.url, ("up", "down", "bye", "flat"))
        assert run(models, tasks, tmp_path / "a", "--cache-dir", str(tmp_path / "c"), sups="sup-a") == 0
        assert run(models, tasks, tmp_path / "b", "--cache-dir", str(tmp_path / "c"), sups="sup-b") == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json",
                 "-o", str(tmp_path / "cmp.json")]) == 0
    blob = (tmp_path / "cmp.json").read_text(encoding="utf-8")
    assert '"emotion"' in blob and "fluency" not in blob
    # the scripted seeker ignores the supporter: every pair ties on the final emotion
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "emotion" in out and "0/4/0" in out and "no detectable difference" in out
