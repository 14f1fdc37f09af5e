"""One run folder, one writer: the lock is taken before the folder is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from esc_bench.cli import main
from esc_bench.records import DialogueRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs

# Runs the CLI after wrapping the engine's `execute` so that it waits (after the plan was built,
# before any model is called) until the test says go: the widest window between reading the
# folder and writing it. Patched from the test's side; the package has no hook for it.
_HELD_AFTER_PLAN = """
import asyncio, pathlib, sys, time
import esc_bench.engine.runner as runner
mark, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
original = runner.execute
async def held(plan, console, **kw):
    mark.write_text("planned")
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return await original(plan, console, **kw)
runner.execute = held
from esc_bench.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _argv(models: Path, tasks: Path, out: Path, cache: Path) -> list[str]:
    return ["--models", "sup-a", "--tasks", "mini_en", "--limit", "2", "--model-configs", str(models),
            "--tasks-dir", str(tasks), "--output", str(out), "--cache-dir", str(cache)]


def _check_folder(out: Path, winners: int) -> None:
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    dup = [k for k, n in Counter(d.key for d in dialogues).items() if n > 1]
    assert not dup, f"dialogues written twice: {dup}"
    assert len(dialogues) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["status"] for i in manifest["invocations"]] == ["completed"] * winners


def test_a_second_process_that_read_the_folder_first_cannot_write_it_twice(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        cache = tmp_path / "cache"
        assert main(_argv(models, tasks, tmp_path / "warm", cache)) == 0  # a warm cache: runs are quick
        out = tmp_path / "run"
        mark, go = tmp_path / "planned", tmp_path / "go"
        env = os.environ.copy()
        argv = [sys.executable, "-c", _HELD_AFTER_PLAN, str(mark), str(go), *_argv(models, tasks, out, cache)]
        held = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not mark.exists() and held.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mark.exists(), held.communicate()[1]
        # The first process has read the (empty) folder; a second one starts now and must be refused.
        second = subprocess.run([sys.executable, "-m", "esc_bench.cli", *_argv(models, tasks, out, cache)],
                                capture_output=True, text=True, env=env, timeout=120, check=False)
        go.write_text("go")
        _, held_err = held.communicate(timeout=120)
    assert held.returncode == 0, held_err
    assert second.returncode == 2, second.stderr
    assert "in use by another esc-bench process" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    _check_folder(out, winners=1)


def test_two_runs_started_at_once_never_duplicate_a_dialogue(tmp_path: Path) -> None:
    """The double-start trial: each time, either the loser is refused (exit 2, one line) or it
    starts after the winner finished and resumes the finished folder (nothing left to do)."""
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        cache = tmp_path / "cache"
        assert main(_argv(models, tasks, tmp_path / "warm", cache)) == 0
        env = os.environ.copy()
        for trial in range(2):
            out = tmp_path / f"run{trial}"
            argv = [sys.executable, "-m", "esc_bench.cli", *_argv(models, tasks, out, cache)]
            procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for _ in range(2)]
            errs = [p.communicate(timeout=120)[1] for p in procs]
            results = [(p.returncode, err) for p, err in zip(procs, errs)]
            for rc, err in results:
                assert rc in (0, 2), err
                if rc == 2:
                    assert "in use by another esc-bench process" in err and len(err.strip().splitlines()) == 1
            _check_folder(out, winners=sum(rc == 0 for rc, _ in results))


def test_a_refused_or_failed_start_leaves_no_folder_behind(tmp_path: Path, capsys) -> None:
    from esc_bench.store.run_dir import RunDir

    out = tmp_path / "new"
    rd = RunDir(out)
    with rd.lock():
        assert (out / ".lock").exists()
        with rd.lock():  # re-entrant within one process
            pass
        assert (out / ".lock").exists()
    assert not out.exists()
    assert main(["resume", str(out)]) == 2
    assert "not an esc-bench run folder" in capsys.readouterr().err
    assert not out.exists()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_results_without_a_manifest_are_refused_and_left_untouched(tmp_path: Path, capsys) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        argv = _argv(models, tasks, out, tmp_path / "cache")
        assert main(argv) == 0
        (out / "manifest.json").unlink()
        (out / ".lock").unlink()  # e.g. results copied from elsewhere: the refusal adds no lock file
        before = _snapshot(out)
        n = srv.n_requests
        capsys.readouterr()
        for command in (argv, ["resume", str(out)], ["score", str(out), "--judge", "judge",
                                                     "--model-configs", str(models)]):
            assert main(command) == 2, command
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            assert "holds dialogues.jsonl, scores.jsonl, leaderboard.json but no manifest.json" in err
            assert "move those files out" in err
            assert _snapshot(out) == before
        assert srv.n_requests == n
