"""Never lose work: faults are retried or recorded, a killed run resumes without repeating turns."""

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
from tests.test_e2e_cli import run_cli, write_configs


def _results(out: Path) -> tuple[dict, dict]:
    ds = {d.key: d for d in read_records(out / "dialogues.jsonl", DialogueRecord)}
    ss = {s.key: s.score for s in read_records(out / "scores.jsonl", ScoreRecord)}
    return ds, ss


def test_fault_injection_run_completes_and_matches_a_clean_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ESC_BENCH_BACKOFF_BASE", "0.01")
    with FakeOpenAI() as clean_srv:
        models, tasks = write_configs(tmp_path / "clean", clean_srv.url)
        assert run_cli(models, tasks, tmp_path / "clean_run", "--no-cache") == 0
    with FakeOpenAI(fault_rate=0.2, fault_seed=7, hang_s=3.0) as srv:
        models, tasks = write_configs(tmp_path / "faulty", srv.url, extra="")
        for f in models.glob("*.yaml"):
            f.write_text(f.read_text().replace("max_retries: 2", "max_retries: 8").replace("timeout: 10", "timeout: 1"))
        rc = run_cli(models, tasks, tmp_path / "faulty_run", "--no-cache", "--max-failures", "100%")
        assert rc == 0
        assert sum(n for k, n in srv.counts.items() if k != "ok") > 10  # faults really happened
    clean_d, clean_s = _results(tmp_path / "clean_run")
    faulty_d, faulty_s = _results(tmp_path / "faulty_run")
    assert set(faulty_d) == set(clean_d)
    for key, d in faulty_d.items():
        assert d.status in ("ok", "failed")
        if d.status == "ok":
            assert d.transcript == clean_d[key].transcript
        else:
            assert d.error is not None and d.error.type
    for key, score in faulty_s.items():
        if score is not None:
            assert score == clean_s[key]


def test_failed_dialogues_are_recorded_then_retried_on_rerun(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ESC_BENCH_BACKOFF_BASE", "0.01")
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        # sup-b is refused with a non-retryable error on its first call.
        (models / "sup-b.yaml").write_text((models / "sup-b.yaml").read_text().replace("model: sup-b", "model: sup-b"))
        srv.queue_faults(*([None] * 1), "bad_request")
        out = tmp_path / "run"
        rc = main(["--models", "sup-b", "--tasks", "mini_en", "--limit", "1", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
        err = capsys.readouterr()
        assert rc == 1 and "1 of 1 dialogues are incomplete (1 failed" in err.err
        assert "sup-b: 1 failed dialogue(s) (bad_request" in err.out
        d = read_records(out / "dialogues.jsonl", DialogueRecord)
        assert d[-1].status == "failed" and d[-1].error.role == "supporter" and d[-1].error.round == 1
        # The rerun retries only what failed, and the leaderboard counts it as done.
        n = srv.n_requests
        rc = main(["--models", "sup-b", "--tasks", "mini_en", "--limit", "1", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"])
        assert rc == 0
        assert srv.n_requests - n == 17
        board = json.loads((out / "leaderboard.json").read_text())
        assert board["entries"][0]["n_failed"] == 0 and board["entries"][0]["n_dialogues"] == 1


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_repeats_no_finished_turn(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with FakeOpenAI() as ref_srv:
        models, tasks = write_configs(tmp_path / "ref", ref_srv.url)
        assert run_cli(models, tasks, tmp_path / "ref_run", "--cache-dir", str(tmp_path / "refcache")) == 0
    with FakeOpenAI(latency=0.05) as srv:
        models, tasks = write_configs(tmp_path / "k", srv.url)
        for f in models.glob("*.yaml"):
            f.write_text(f.read_text().replace("max_concurrency: 8", "max_concurrency: 2"))
        out = tmp_path / "run"
        argv = [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a,sup-b", "--tasks", "mini_en,mini_zh",
                "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out),
                "--cache-dir", str(cache)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            p = out / "dialogues.jsonl"
            if p.exists() and p.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        done_before = read_records(out / "dialogues.jsonl", DialogueRecord)
        assert 3 <= len(done_before) < 12
        before = srv.requests
        seen_before = [json.dumps(r.body, sort_keys=True) for r in before]
        # Answered (latency 0.05 s) and stored well before the kill: these turns were finished.
        answered = {json.dumps(r.body, sort_keys=True) for r in before if r.time + 0.05 + 0.25 < killed_at}
        assert len(answered) >= 5

        rc = subprocess.run([sys.executable, "-m", "esc_bench.cli", "resume", str(out), ], env=os.environ.copy(),
                            capture_output=True, text=True)
        assert rc.returncode == 0, rc.stderr
        seen_after = [json.dumps(r.body, sort_keys=True) for r in srv.requests[len(seen_before):]]
        # No request finished before the kill was sent again (the cache replays them);
        # only the few calls in flight at the kill may be repeated.
        assert not answered & set(seen_after)
        assert len(set(seen_before) & set(seen_after)) <= 4 * 7
    ref_d, ref_s = _results(tmp_path / "ref_run")
    got_d, got_s = _results(out)
    assert set(got_d) == set(ref_d)
    assert all(got_d[k].transcript == ref_d[k].transcript for k in ref_d)
    assert got_s == ref_s


def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(tmp_path: Path) -> None:
    with FakeOpenAI(latency=0.2) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        argv = [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a", "--tasks", "mini_en",
                "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        deadline = time.monotonic() + 30
        while srv.n_requests < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert f"esc-bench resume {out}" in stderr
        assert "Traceback" not in stderr
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["invocations"][-1]["status"] == "interrupted"


def test_resume_from_another_folder_uses_the_recorded_working_directory(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        write_configs(tmp_path, srv.url)
        argv = [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a", "--tasks", "mini_en", "--limit", "2",
                "--model-configs", "models", "--tasks-dir", "tasks", "--output", "run", "--no-cache"]
        first = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=os.environ.copy())
        assert first.returncode == 0, first.stderr
        path = tmp_path / "run" / "dialogues.jsonl"
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])  # the last dialogue torn by a crash
        n = srv.n_requests
        again = subprocess.run([sys.executable, "-m", "esc_bench.cli", "resume", str(tmp_path / "run")],
                               cwd="/", capture_output=True, text=True, env=os.environ.copy())
        assert again.returncode == 0, again.stderr
        assert srv.n_requests - n == 10 + 7  # only the torn dialogue: its turns, then its scores again
    got = read_records(path, DialogueRecord)
    assert len(got) == 2 and all(d.status == "ok" for d in got)


def test_resume_replays_the_last_run_command_not_the_first(tmp_path: Path, monkeypatch) -> None:
    from esc_bench.commands.resume import recorded_run_args

    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        monkeypatch.chdir(tmp_path)
        common = ["--tasks", "mini_en", "--model-configs", "models", "--tasks-dir", "tasks", "--output", "run"]
        assert main(["--models", "sup-a", "--limit", "1", *common]) == 0
        assert main(["--models", "sup-a,sup-b", "--limit", "2", *common]) == 0
        assert main(["resume", "run"]) == 0
        monkeypatch.chdir("/")
        args = recorded_run_args(tmp_path / "run")
        assert args.models == "sup-a,sup-b" and args.limit == 2 and args.output == tmp_path / "run"
        # `score` finds the same command, from anywhere, even with an output folder named "run".
        (models / "judge2.yaml").write_text(f"backend: openai\nmodel: judge2\napi_base: {srv.url}\n")
        assert main(["score", str(tmp_path / "run"), "--judge", "judge2", "--model-configs", str(models)]) == 0
    scores = read_records(tmp_path / "run" / "scores.jsonl", ScoreRecord)
    assert sum(s.judge == "judge2" for s in scores) == 4 * 7


def test_an_edited_card_is_played_again_on_resume(tmp_path: Path) -> None:
    cards = [{"id": i, "base": f"A person of {30 + i} who cannot sleep.", "language": "en"} for i in range(2)]
    card_file = tmp_path / "cards.json"
    card_file.write_text(json.dumps(cards))
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        (tasks / "mine.yaml").write_text(
            f"language: en\nprotocol: esc-bench\ncards: {{source: {card_file}}}\nsimulator: seeker\njudge: judge\n"
        )
        argv = ["--models", "sup-a", "--tasks", "mine", "--model-configs", str(models), "--tasks-dir", str(tasks),
                "--output", str(tmp_path / "run"), "--no-cache"]
        assert main(argv) == 0
        cards[1]["base"] = "A person of 31 who lost a job last week."
        card_file.write_text(json.dumps(cards))
        srv.reset()
        assert main(argv) == 0
        assert srv.n_requests == 10 + 7  # card 1 only: its dialogue and its scores
    latest = {d.card_id: d for d in read_records(tmp_path / "run" / "dialogues.jsonl", DialogueRecord)}
    from esc_bench.engine.runner import card_digest
    from esc_bench.records import Card

    assert latest["1"].card_sha == card_digest(Card(id="1", base=cards[1]["base"], language="en"))
