"""Where tasks and model configs are found: the user's folders, then ./tasks and ./model_configs,
then the ones shipped inside the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from esc_bench.config.loader import ModelRegistry, TaskRegistry, builtin_dir


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def test_builtin_configs_live_inside_the_package() -> None:
    import esc_bench

    pkg = Path(esc_bench.__file__).resolve().parent
    for kind in ("tasks", "model_configs"):
        assert builtin_dir(kind).resolve().is_relative_to(pkg), kind
    assert (builtin_dir("tasks") / "all.yaml").is_file()
    assert (builtin_dir("model_configs") / "gpt-4o.yaml").is_file()
    # One copy only: nothing left at the repository root.
    assert not (pkg.parent / "tasks").exists() and not (pkg.parent / "model_configs").exists()


def test_found_from_any_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert [t.name for t in TaskRegistry().resolve(["all"])] == ["esc_eval_en", "esc_eval_zh"]
    assert ModelRegistry().get("gpt-4o").model == "gpt-4o"


def test_user_folder_then_working_folder_then_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    task = "language: en\nprotocol: esc-bench\ncards: {source: bundled}\nsimulator: s\njudge: %s\n"
    write(tmp_path / "tasks", "esc_bench_mini_en.yaml", task % "from-cwd")
    write(tmp_path / "tasks", "only_cwd.yaml", task % "cwd-only")
    user = tmp_path / "mine"
    write(user, "esc_bench_mini_en.yaml", task % "from-user")
    write(tmp_path / "model_configs", "gpt-4o.yaml", "model: openai/cwd-model\n")

    assert TaskRegistry([user]).task("esc_bench_mini_en").judge == "from-user"
    reg = TaskRegistry()
    assert reg.task("esc_bench_mini_en").judge == "from-cwd"
    assert reg.task("only_cwd").judge == "cwd-only"
    assert reg.files["esc_bench_mini_en"] == tmp_path / "tasks" / "esc_bench_mini_en.yaml"
    assert reg.files["esc_eval_en"].parent == builtin_dir("tasks")  # the rest still built in
    assert ModelRegistry().get("gpt-4o").model == "openai/cwd-model"
    assert ModelRegistry().get("claude").model != "openai/cwd-model"
    # builtin=False: only the folders named.
    assert TaskRegistry([user], builtin=False).names() == ["esc_bench_mini_en"]
