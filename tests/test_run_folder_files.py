"""What a run leaves in its folder: every file with the usual permissions; an interrupted run with
nothing to show prints no results path."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from esc_bench.cli import main
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs


def test_every_file_a_run_writes_has_the_same_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with FakeOpenAI() as srv:
            models, tasks = write_configs(tmp_path, srv.url)
            out = tmp_path / "run"
            assert main(["--models", "sup-a", "--tasks", "mini_en", "--limit", "1", "--model-configs", str(models),
                         "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"]) == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()}
    assert {"manifest.json", "dialogues.jsonl", "scores.jsonl", "leaderboard.json"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes


def test_an_interrupted_run_with_nothing_to_show_prints_no_results_path(tmp_path: Path) -> None:
    with FakeOpenAI(latency=30) as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        argv = [sys.executable, "-m", "esc_bench.cli", "--models", "sup-a", "--tasks", "mini_en", "--limit", "1",
                "--model-configs", str(models), "--tasks-dir", str(tasks), "--output", str(out), "--no-cache",
                "--no-preflight"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while srv.n_requests < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "results:" not in stdout
    assert f"Resume with: esc-bench resume {out}" in stderr
    assert not (out / "leaderboard.json").exists()
