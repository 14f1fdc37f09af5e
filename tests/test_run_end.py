"""The end of a run: the leaderboard is written before the manifest says completed, and a
SIGTERM in the last moments ends like any interruption (exit 130, the resume command)."""

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
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs


def _argv(models: Path, tasks: Path, out: Path) -> list[str]:
    return ["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
            "--tasks-dir", str(tasks), "--output", str(out)]


def test_the_leaderboard_is_written_before_the_manifest_says_completed(tmp_path: Path, monkeypatch) -> None:
    from esc_bench.engine import finalize

    seen: list[str] = []
    original = finalize.end_of_run

    def watched(run_dir, **kw):
        board = original(run_dir, **kw)
        assert (run_dir.path / "leaderboard.json").exists()
        seen.append(json.loads(run_dir.manifest_path.read_text())["invocations"][-1]["status"])
        return board

    monkeypatch.setattr(finalize, "end_of_run", watched)
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        assert main(_argv(models, tasks, out)) == 0
    assert seen and seen[0] == "running"
    assert json.loads((out / "manifest.json").read_text())["invocations"][-1]["status"] == "completed"


# Runs the CLI with one end-of-run step slowed down (patched from the test's side), writing a
# mark when it starts, so that the test can send SIGTERM at that moment.
_SLOW_STEP = """
import pathlib, sys, time
import esc_bench.engine.finalize as finalize
mark, name = pathlib.Path(sys.argv[1]), sys.argv[2]
original = getattr(finalize, name)
def slow(*a, **kw):
    mark.write_text("now")
    time.sleep(4)
    return original(*a, **kw)
setattr(finalize, name, slow)
from esc_bench.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("step", "status"), [("end_of_run", "interrupted"), ("print_summary", "completed")])
def test_sigterm_at_the_end_of_a_run_is_an_interruption(tmp_path: Path, step: str, status: str) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        mark = tmp_path / "mark"
        env = os.environ.copy()
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_STEP, str(mark), step, *_argv(models, tasks, out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mark.exists(), proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert f"esc-bench: interrupted; finished work is saved. Resume with: esc-bench resume {out}" in err
        assert "Traceback" not in err
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["invocations"][-1]["status"] == status
        # Resuming finishes the run without a call: everything was done.
        n = srv.n_requests
        assert main(["resume", str(out)]) == 0
        assert srv.n_requests == n
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["status"] == "completed"
    assert (out / "leaderboard.json").exists()
