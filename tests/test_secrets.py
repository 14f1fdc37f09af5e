"""Secrets are never written: API keys quoted back by a server, URL credentials (issue 8.17, 8.18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_bench.cli import main
from tests.support.fake_openai import FakeOpenAI

KEY = "sk-test-PLANTED-0123456789abcdef"  # named by the configs' api_key_env
DEFAULT_KEY = "sk-proj-DEFAULT-fedcba9876543210"  # a provider's default variable, used by litellm


def _configs(root: Path, url: str, sup_url: str) -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True)
    tasks.mkdir(parents=True)
    for name in ("seeker", "sup-a", "judge"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {sup_url if name == 'sup-a' else url}\napi_key_env: MY_SECRET_API\nmax_retries: 0\n"
            "generation: {temperature: 0.0, max_tokens: 64}\n", encoding="utf-8")
    # through litellm, with the provider's default key variable (no api_key_env)
    (models / "sup-lite.yaml").write_text(
        f"backend: litellm\nmodel: openai/sup-lite\napi_base: {sup_url}\nmax_retries: 0\n", encoding="utf-8")
    (tasks / "mini.yaml").write_text(
        "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 2}\nsimulator: seeker\njudge: judge\n",
        encoding="utf-8")
    return models, tasks


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("faults", [(), ("bad_request",)], ids=["in-replies", "in-errors"])
def test_a_key_quoted_back_by_the_server_is_never_written(tmp_path: Path, monkeypatch, capsys, faults) -> None:
    monkeypatch.setenv("MY_SECRET_API", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
    cache = tmp_path / "cache"
    # the seeker and judge reply (quoting the key); the supporters reply, or fail quoting it
    with FakeOpenAI(echo_auth=True) as srv, \
            FakeOpenAI(echo_auth=True, fault_rate=1.0 if faults else 0.0, faults=faults or ("bad_request",)) as sup:
        models, tasks = _configs(tmp_path, srv.url, sup.url)
        rc = main(["--models", "sup-a,sup-lite", "--tasks", "mini", "--model-configs", str(models),
                   "--tasks-dir", str(tasks), "--output", str(tmp_path / "run"), "--cache-dir", str(cache),
                   "--no-preflight", "--max-failures", "100%"])
        sent = {r.headers.get("Authorization") for r in srv.requests + sup.requests}
    assert rc in (0, 1)
    assert f"Bearer {KEY}" in sent and f"Bearer {DEFAULT_KEY}" in sent  # the server did see both keys
    for fmt in ("html", "md", "json"):
        assert main(["report", str(tmp_path / "run"), "--format", fmt, "-o", str(tmp_path / f"report.{fmt}")]) == 0
    out, err = capsys.readouterr()
    for secret in (KEY, DEFAULT_KEY):
        assert _files_holding(tmp_path, secret) == []
        assert secret not in out and secret not in err
    run_text = (tmp_path / "run" / "dialogues.jsonl").read_text(encoding="utf-8")
    assert "[redacted]" in run_text or "***" in run_text  # what was quoted back is there, without the key
    if not faults:
        assert "you sent: Bearer [redacted]" in run_text


def test_redact_cuts_key_variables_and_url_credentials(monkeypatch) -> None:
    from esc_bench.redact import redact, strip_userinfo, watch_env

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-abcdefgh12345")
    monkeypatch.setenv("ODDLY_NAMED", "custom-secret-value-42")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to be a key: left alone
    monkeypatch.setenv("HOME_DIR", "/home/someone-else")  # not a key variable
    assert redact("x sk-ant-abcdefgh12345 y") == "x [redacted] y"
    assert redact("custom-secret-value-42") == "custom-secret-value-42"
    watch_env("ODDLY_NAMED")  # a config's api_key_env
    assert redact("key=custom-secret-value-42") == "key=[redacted]"
    assert redact("abc /home/someone-else") == "abc /home/someone-else"
    assert redact("see http://me:hunter2hunter2@host:8/v1 and https://tok@h/x") == \
        "see http://host:8/v1 and https://h/x"
    assert strip_userinfo("http://me:pa%40ss-word-1@host:8/v1?q=1") == "http://host:8/v1?q=1"
    assert redact("Basic bWU6cGFAc3Mtd29yZC0x and pa@ss-word-1") == "Basic [redacted] and [redacted]"
    assert strip_userinfo("http://host/v1") == "http://host/v1"


def test_url_credentials_are_used_for_the_request_and_never_written(tmp_path: Path, capsys) -> None:
    import base64
    import json

    password = "s3cret-pass-99"
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    cache = tmp_path / "cache"
    with FakeOpenAI(echo_auth=True) as srv:
        url = srv.url.replace("http://", f"http://alice:{password}@")
        models, tasks = _configs(tmp_path, url, url)
        (models / "sup-lite.yaml").unlink()
        for f in models.glob("*.yaml"):
            f.write_text(f.read_text().replace("api_key_env: MY_SECRET_API\n", ""), encoding="utf-8")
        rc = main(["--models", "sup-a", "--tasks", "mini", "--model-configs", str(models), "--tasks-dir", str(tasks),
                   "--output", str(tmp_path / "run"), "--cache-dir", str(cache), "--no-preflight",
                   "--max-failures", "100%"])
        sent = {r.headers.get("Authorization") for r in srv.requests}
    assert rc in (0, 1)
    assert sent == {f"Basic {basic}"}  # the credentials were used
    assert main(["report", str(tmp_path / "run"), "--format", "html", "-o", str(tmp_path / "report.html")]) == 0
    out, err = capsys.readouterr()
    for secret in (password, basic, "alice:"):
        assert _files_holding(tmp_path / "run", secret) == []
        assert _files_holding(cache, secret) == [] and _files_holding(tmp_path / "report.html", secret) == []
        assert secret not in out and secret not in err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["models"]["sup-a"]["api_base"] == srv.url  # the URL, without its credentials


def test_a_config_written_anywhere_has_no_url_credentials() -> None:
    from esc_bench.config.schema import ModelConfig

    cfg = ModelConfig(name="m", backend="openai", model="m",
                      api_base=["http://u:pw-secret-1@a:1/v1", "https://tok-secret-22@b/v1", "http://c/v1"])
    assert cfg.public_dict()["api_base"] == ["http://a:1/v1", "https://b/v1", "http://c/v1"]
    assert cfg.api_base[0] == "http://u:pw-secret-1@a:1/v1"  # still used for the requests


def test_redact_follows_the_environment_as_it_changes(monkeypatch) -> None:
    # redact reads the environment on every call (its raw bytes mapping on POSIX): a key set, changed
    # or removed after start-up is honoured at once, and a watched variable of any name counts.
    from esc_bench import redact as r

    monkeypatch.setenv("LATE_API_KEY", "sk-late-0123456789")
    assert r.redact("x sk-late-0123456789 y") == f"x {r.REDACTED} y"
    monkeypatch.setenv("LATE_API_KEY", "sk-other-987654321")
    assert r.redact("sk-late-0123456789") == "sk-late-0123456789"
    assert r.redact("sk-other-987654321") == r.REDACTED
    monkeypatch.delenv("LATE_API_KEY")
    assert r.redact("sk-other-987654321") == "sk-other-987654321"
    monkeypatch.setenv("PLAIN_NAME_FOR_TEST", "value-of-plain-name")
    assert r.redact("value-of-plain-name") == "value-of-plain-name"
    r.watch_env("PLAIN_NAME_FOR_TEST")
    try:
        assert r.redact("value-of-plain-name") == r.REDACTED
    finally:
        r._watched.discard("PLAIN_NAME_FOR_TEST")
