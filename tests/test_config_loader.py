"""Strict YAML: unknown keys, bad values and malformed files are one-line errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_bench.config.loader import ModelRegistry, TaskRegistry
from esc_bench.errors import ConfigError


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.write_text(text, encoding="utf-8")
    return p


def test_unknown_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "model: x/y\nmax_concurrency: 4\ntemprature: 0.3\n")
    with pytest.raises(ConfigError) as e:
        ModelRegistry([tmp_path], builtin=False).get("m")
    msg = str(e.value)
    assert f"{tmp_path / 'm.yaml'}:3:" in msg and "temprature" in msg and "unknown key" in msg
    assert "\n" not in msg


def test_nested_wrong_type_points_at_the_nested_line(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", "language: en\ncards:\n  source: bundled\n  first: many\n")
    with pytest.raises(ConfigError) as e:
        TaskRegistry([tmp_path], builtin=False).task("t")
    assert ":4: cards.first:" in str(e.value)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", "language: en\ncards: [oops\nprotocol: x\n")
    with pytest.raises(ConfigError) as e:
        TaskRegistry([tmp_path], builtin=False).task("t")
    assert str(e.value).startswith(f"{tmp_path / 't.yaml'}:") and "malformed YAML" in str(e.value)


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "model: a/b\nmodel: c/d\n")
    with pytest.raises(ConfigError, match=r"m.yaml:2: duplicate key 'model'"):
        ModelRegistry([tmp_path], builtin=False).get("m")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_bytes(b"model: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        ModelRegistry([tmp_path], builtin=False).get("m")


def test_api_key_must_be_a_variable_name(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "model: openai/x\napi_key_env: sk-live-123\n")
    with pytest.raises(ConfigError, match="api_key_env"):
        ModelRegistry([tmp_path], builtin=False).get("m")


@pytest.mark.slow
def test_unknown_model_suggests_close_names(tmp_path: Path) -> None:
    write(tmp_path, "gpt-4o-mini.yaml", "model: gpt-4o-mini\n")
    with pytest.raises(ConfigError, match="did you mean: gpt-4o-mini"):
        ModelRegistry([tmp_path], builtin=False).get("gpt-4o-mnii")


def test_raw_provider_string_is_a_model(tmp_path: Path) -> None:
    cfg = ModelRegistry([tmp_path], builtin=False).get("openai/some-model")
    assert cfg.model == "openai/some-model" and cfg.backend == "openai"  # the thin client (issue 9 §3)


def test_task_include_inherits_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "language: en\nprotocol: esc-bench\ncards: {source: bundled, first: 3}\njudge: j\n")
    write(tmp_path, "child.yaml", "include: base\nlanguage: zh\ncards: {first: 2}\n")
    t = TaskRegistry([tmp_path], builtin=False).task("child")
    assert (t.language, t.protocol, t.judge, t.cards.source, t.cards.first) == ("zh", "esc-bench", "j", "bundled", 2)


def test_include_loop_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "include: b\nlanguage: en\n")
    write(tmp_path, "b.yaml", "include: a\nlanguage: en\n")
    with pytest.raises(ConfigError, match="include loop: a -> b -> a"):
        TaskRegistry([tmp_path], builtin=False).task("a")


def test_group_loop_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "g1.yaml", "tasks: [g2]\n")
    write(tmp_path, "g2.yaml", "tasks: [g1]\n")
    with pytest.raises(ConfigError, match="group loop"):
        TaskRegistry([tmp_path], builtin=False).resolve(["g1"])


def test_groups_expand_in_order_without_repeats(tmp_path: Path) -> None:
    for n in ("t1", "t2", "t3"):
        write(tmp_path, f"{n}.yaml", "language: en\n")
    write(tmp_path, "g.yaml", "tasks: [t2, t1]\n")
    write(tmp_path, "top.yaml", "tasks: [g, t1, t3]\n")
    names = [t.name for t in TaskRegistry([tmp_path], builtin=False).resolve(["top", "t2"])]
    assert names == ["t2", "t1", "t3"]


def test_unknown_task_suggests(tmp_path: Path) -> None:
    reg = TaskRegistry(builtin=True)
    with pytest.raises(ConfigError, match="did you mean: esc_eval_en"):
        reg.resolve(["esc_eval_em"])


def test_user_folder_wins_over_builtin(tmp_path: Path) -> None:
    write(tmp_path, "esc_eval_en.yaml", "language: en\nprotocol: esc-bench\n")
    assert TaskRegistry([tmp_path]).task("esc_eval_en").protocol == "esc-bench"


def test_builtin_tasks_all_validate() -> None:
    reg = TaskRegistry()
    tasks = reg.resolve(["all"])
    assert [t.name for t in tasks] == ["esc_eval_en", "esc_eval_zh"]
    assert all(t.protocol == "esc-eval" and t.simulator == "esc-role" and t.judge == "esc-rank" for t in tasks)
    for name in reg.names():
        reg.resolve([name])


def test_builtin_model_configs_validate() -> None:
    reg = ModelRegistry()
    for name in reg.names():
        cfg = reg.get(name)
        assert cfg.name == name
    assert {"gpt-4o", "gpt-4o-mini", "llama3", "claude", "vllm-example"} <= set(reg.names())


def test_tasks_and_models_commands_list_and_validate(tmp_path: Path, capsys) -> None:
    from esc_bench.cli import main

    assert main(["tasks", "validate"]) == 0
    out = capsys.readouterr().out
    assert "esc_eval_en" in out and "all 10 task files validate" in out  # 7 + sage_zh, sage_en, sage (issue 11)
    write(tmp_path, "broken.yaml", "language: en\nprotocl: esc-bench\n")
    assert main(["tasks", "validate", "--tasks-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "broken.yaml:2: protocl: unknown key" in captured.out.replace("\n", "")
    assert "1 task file(s) do not validate" in captured.err
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "gpt-4o" in out and "esc-rank" in out
