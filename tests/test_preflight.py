"""Preflight: a dead server, a wrong key or a model not served is one line in seconds, nothing written."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from esc_bench.cli import main
from tests.support.fake_openai import FakeOpenAI

KEY_ENV = "ESC_TEST_PREFLIGHT_KEY"


@pytest.fixture(autouse=True)
def preflight_on(monkeypatch) -> None:
    monkeypatch.setenv("ESC_BENCH_PREFLIGHT", "1")  # the test suite turns it off elsewhere


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write(root: Path, urls: dict[str, str], extra: dict[str, str] | None = None) -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True, exist_ok=True)
    tasks.mkdir(parents=True, exist_ok=True)
    for name, url in urls.items():
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_retries: 2\ntimeout: 10\n"
            + (extra or {}).get(name, "")
        )
    (tasks / "mini.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 2}\nsimulator: seeker\njudge: judge\n"
    )
    return models, tasks


def cli(models: Path, tasks: Path, out: Path, *extra: str) -> int:
    return main(["--models", "sup", "--tasks", "mini", "--model-configs", str(models), "--tasks-dir", str(tasks),
                 "--output", str(out), "--no-cache", *extra])


def probes(srv: FakeOpenAI) -> list[dict]:
    return [r.body for r in srv.requests if r.body and r.body.get("max_tokens") == 1]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("esc-bench: error: preflight:") and err.count("\n") == 1, err
    return err


def test_dead_server_is_one_line_in_seconds_and_writes_nothing(tmp_path: Path, capsys) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write(tmp_path, {"seeker": srv.url, "sup": closed_port_url(), "judge": srv.url})
        out = tmp_path / "run"
        t0 = time.perf_counter()
        rc = cli(models, tasks, out)
        elapsed = time.perf_counter() - t0
        err = one_line_error(capsys)
        assert rc == 2
        assert "model 'sup'" in err and "cannot connect" in err and "--no-preflight" in err
        assert elapsed < 5, elapsed
        assert not out.exists()
        # Only the probes reached the live server (seeker and judge, one each, concurrently).
        assert sorted(b["model"] for b in probes(srv)) == ["judge", "seeker"]
        assert srv.n_requests == 2


def test_wrong_key_and_model_not_served(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123456")
    with FakeOpenAI(api_key="sk-right") as keyed, FakeOpenAI(served={"seeker", "sup"}) as vllm:
        models, tasks = write(
            tmp_path, {"seeker": vllm.url, "sup": keyed.url, "judge": vllm.url},
            extra={"sup": f"api_key_env: {KEY_ENV}\n"},
        )
        out = tmp_path / "run"
        rc = cli(models, tasks, out)
        err = one_line_error(capsys)
        assert rc == 2 and not out.exists()
        assert "model 'sup'" in err and "HTTP 401" in err
        assert "model 'judge'" in err and "HTTP 404" in err and "does not exist" in err
        assert "sk-wrong-key" not in err
        assert keyed.n_requests == 1 and vllm.n_requests == 2  # one probe each, no retries


def test_no_preflight_skips_it_and_probes_are_not_results(tmp_path: Path, capsys) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write(tmp_path, {"seeker": srv.url, "sup": srv.url, "judge": srv.url})
        rc = cli(models, tasks, tmp_path / "a")
        assert rc == 0, capsys.readouterr().err
        assert len(probes(srv)) == 3  # three distinct endpoints (one server, three models)
        manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
        calls = manifest["invocations"][-1]["calls"]
        assert calls == srv.n_requests - 3  # the probes are not counted as the run's calls
        text = (tmp_path / "a" / "dialogues.jsonl").read_text() + (tmp_path / "a" / "scores.jsonl").read_text()
        assert '"Hi"' not in text
        srv.reset()
        assert cli(models, tasks, tmp_path / "b", "--no-preflight") == 0
        assert probes(srv) == [] and srv.n_requests > 0


def test_resume_and_score_check_first_and_leave_the_folder_untouched(tmp_path: Path, capsys) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write(tmp_path, {"seeker": srv.url, "sup": srv.url, "judge": srv.url})
        out = tmp_path / "run"
        srv.queue_faults("auth")  # the first call fails (not retried): one dialogue is left to redo
        assert cli(models, tasks, out, "--no-preflight") == 1
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # The server is gone: resuming (even from a run started with --no-preflight) and re-scoring
    # both stop at the preflight.
    dead = closed_port_url()
    write(tmp_path, {"seeker": dead, "sup": dead, "judge": dead})
    capsys.readouterr()
    assert main(["resume", str(out)]) == 2
    err = one_line_error(capsys)
    assert "model 'sup'" in err and "model 'seeker'" in err and "model 'judge'" in err
    (models / "judge2.yaml").write_text(f"backend: openai\nmodel: judge2\napi_base: {dead}\n")
    assert main(["score", str(out), "--judge", "judge2", "--model-configs", str(models)]) == 2
    err = one_line_error(capsys)
    assert "model 'judge2'" in err and "'sup'" not in err  # re-scoring calls only the judge
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before


@pytest.mark.parametrize("kind", ["empty", "rate_limit", "content_filter"])
def test_an_endpoint_that_answers_at_all_passes(tmp_path: Path, kind: str) -> None:
    with FakeOpenAI() as srv:
        models, tasks = write(tmp_path, {"seeker": srv.url, "sup": srv.url, "judge": srv.url})
        srv.queue_faults(kind, kind, kind)  # every probe gets it; the run then goes normally
        assert cli(models, tasks, tmp_path / "run") == 0
