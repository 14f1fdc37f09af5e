"""A disk that fills up mid-run: one line, exit 2, sessions closed, and the folder resumes once
space is freed (no torn line, no dialogue twice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.test_e2e_cli import write_configs

# The CLI with the run folder's appends failing once `budget` bytes went through: a full disk,
# simulated from the test's side where a real small filesystem cannot be mounted.
_FILLS_UP = """
import errno, os, sys, types
import esc_bench.store.jsonl as jsonl
budget = [int(sys.argv[1])]
def write(fd, data):
    if budget[0] <= 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    n = os.write(fd, bytes(data[: budget[0]]))
    budget[0] -= n
    return n
proxy = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
proxy.write = write
jsonl.os = proxy
from esc_bench.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _argv(models: Path, tasks: Path, out: Path, cache: Path) -> list[str]:
    return ["--models", "sup-a,sup-b", "--tasks", "mini_en,mini_zh", "--model-configs", str(models),
            "--tasks-dir", str(tasks), "--output", str(out), "--cache-dir", str(cache)]


def _check_failed_then_resume(proc: subprocess.CompletedProcess[str], out: Path, env: dict[str, str]) -> None:
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr  # no "Unclosed client session", no traceback
    assert err[0].startswith("esc-bench: error: disk full writing ")
    assert f"resume with: esc-bench resume {out}" in err[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["invocations"][-1]["status"] in ("failed", "running")  # "running" if it could not be written
    for name in ("dialogues.jsonl", "scores.jsonl"):
        data = (out / name).read_bytes() if (out / name).exists() else b""
        assert not data or data.endswith(b"\n"), f"{name} ends in a torn line"
    done = {d.key for d in read_records(out / "dialogues.jsonl", DialogueRecord)}
    scored = {s.key for s in read_records(out / "scores.jsonl", ScoreRecord)}
    assert len(done) < 12 or len(scored) < 12 * 7  # the disk filled up before the end

    again = subprocess.run([sys.executable, "-m", "esc_bench.cli", "resume", str(out)], capture_output=True,
                           text=True, env=env, timeout=180, check=False)
    assert again.returncode == 0, again.stderr
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == 12 and all(d.status == "ok" for d in dialogues)
    assert not [k for k, n in Counter(d.key for d in dialogues).items() if n > 1]
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert not [k for k, n in Counter(s.key for s in scores).items() if n > 1]
    assert len({s.key for s in scores}) == 12 * 7
    assert json.loads((out / "manifest.json").read_text())["invocations"][-1]["status"] == "completed"


def test_a_full_disk_simulated_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = tmp_path / "run"
        env = os.environ.copy()
        argv = [sys.executable, "-c", _FILLS_UP, "20000", *_argv(models, tasks, out, tmp_path / "cache")]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)
        _check_failed_then_resume(proc, out, env)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 40 KB filesystem (tmpfs), where mounting is permitted (root, no sandbox)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mnt)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, check=False)


def test_a_really_full_disk_stops_cleanly_and_resumes_once_space_is_freed(tmp_path: Path, small_disk: Path) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write_configs(tmp_path, srv.url)
        out = small_disk / "run"
        env = os.environ.copy()
        argv = [sys.executable, "-m", "esc_bench.cli", *_argv(models, tasks, out, tmp_path / "cache")]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)
        subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)  # space is freed
        _check_failed_then_resume(proc, out, env)
