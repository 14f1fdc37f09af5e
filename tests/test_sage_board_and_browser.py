"""Issue 11's last checks: a SAGE published result file and a user's own sage run on ONE
leaderboard (`esc-bench leaderboard`) and in one comparison, paired by profile; the report page
in a real (headless) browser: the trajectory chart and the dialogue browser render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.records import Leaderboard
from tests.support.fake_openai import FakeOpenAI
from tests.support.sage_data import RESULT_SAMPLE, shared_sage_or_skip
from tests.support.sage_seeker import SageSeeker
from tests.test_report_html import CHROMIUM, _chromium

# The sample's first four profiles (ids as published) with the scripted seeker's behaviour.
PROFILES = {
    "d3c386e4-1b4d-4568-8abf-4d60a4fec355": "up",
    "66aaf749-a759-4048-9915-a02753fcbeae": "down",
    "cf31b2b2-d514-4961-a5db-5a0ffa22d878": "bye",
    "6d6ee798-b854-4067-a873-7b226297cfe4": "flat",
}
PUBLISHED_FINALS = [15, 50, 40, 100, 95, 90, 25, 65, 75, 100, 100, 5]  # the sample, by hand


def _user_run(root: Path, url: str) -> Path:
    """A user's run of task sage_zh (SAGE's profile ids) with the same sentient-agent model name."""
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True)
    tasks.mkdir()
    for name in ("deepseek-v3", "my-model"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_concurrency: 8\nmax_retries: 1\n"
            "timeout: 10\ngeneration: {temperature: 0.0, max_tokens: 64}\n", encoding="utf-8")
    cards = root / "profiles.jsonl"
    lines = [json.dumps({"id": i, "base": f"一位疲惫的护士。SCRIPT:{s}"}) for i, s in PROFILES.items()]
    cards.write_text("\n".join(lines), encoding="utf-8")
    (tasks / "sage_zh.yaml").write_text(
        f"language: zh\nprotocol: sage\ncards: {{source: {cards}}}\nsimulator: deepseek-v3\njudge: self\n",
        encoding="utf-8")
    out = root / "mine"
    assert main(["--models", "my-model", "--tasks", "sage_zh", "--model-configs", str(models), "--tasks-dir",
                 str(tasks), "--output", str(out), "--cache-dir", str(root / "cache")]) == 0
    return out


def test_a_published_result_and_a_users_run_on_one_leaderboard(tmp_path: Path, capsys) -> None:
    sample = shared_sage_or_skip(RESULT_SAMPLE)
    pub = tmp_path / "pub"
    assert main(["import-sage", str(sample), "--model", "gpt-4.5", "--simulator", "deepseek-v3", "-o", str(pub)]) == 0
    with FakeOpenAI(reply=SageSeeker()) as srv:
        mine = _user_run(tmp_path, srv.url)
    capsys.readouterr()
    board_file = tmp_path / "board.json"
    # same protocol, sentient agent and judge: one board, no --allow-mixed needed
    assert main(["leaderboard", str(pub), str(mine), "-o", str(board_file)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(pub), str(mine)]) == 0  # the tables, on the console
    captured = capsys.readouterr()
    console = captured.out + captured.err
    board = Leaderboard.model_validate_json(board_file.read_bytes())
    assert (board.protocol, board.simulator, board.judge) == ("sage", "deepseek-v3", "self")
    assert board.spec("sage_zh").metric_names == ["emotion"]
    entries = {e.model: e for e in board.entries}
    assert set(entries) == {"gpt-4.5", "my-model"} and {e.task for e in board.entries} == {"sage_zh"}
    pub_e, my_e = entries["gpt-4.5"], entries["my-model"]
    assert pub_e.scores["emotion"].mean == pytest.approx(sum(PUBLISHED_FINALS) / 12)
    assert pub_e.outcomes == {"success": 3, "failure": 1} and pub_e.n_dialogues == 12
    # the user's run, by the scripts: up 100, down 0, bye 40, flat 40
    assert my_e.scores["emotion"].mean == pytest.approx(45.0) and my_e.outcomes == {"success": 1, "failure": 1}
    assert [e.model for e in board.entries] == ["gpt-4.5", "my-model"]  # ranked by mean final emotion
    assert "gpt-4.5" in console and "my-model" in console and "sentient agent (SAGE)" in console
    # ... and they compare, paired by profile (the four profiles both have)
    assert main(["compare", str(pub), str(mine), "--model-a", "gpt-4.5", "--format", "json",
                 "-o", str(tmp_path / "cmp.json")]) == 0
    cmp = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert (cmp["n_pairs"], cmp["n_only_a"], cmp["n_only_b"], cmp["differences"]) == (4, 8, 0, [])
    row = cmp["rows"][0]
    # by hand: published (15, 50, 40, 100) vs mine (100, 0, 40, 40) on the four shared profiles
    assert row["dimension"] == "emotion" and row["mean_a"] == pytest.approx(51.25) and row["mean_b"] == 45.0
    assert row["diff"] == pytest.approx(-6.25) and (row["win"], row["tie"], row["loss"]) == (1, 1, 2)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_sage_report_in_a_headless_browser(tmp_path: Path) -> None:
    import numpy as np
    from matplotlib import image

    sample = shared_sage_or_skip(RESULT_SAMPLE)
    pub = tmp_path / "pub"
    assert main(["import-sage", str(sample), "--model", "gpt-4.5", "-o", str(pub)]) == 0
    page = tmp_path / "report.html"
    assert main(["report", str(pub), "--format", "html", "-o", str(page)]) == 0
    url = page.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line] == []
    assert re.search(r'<body[^>]*data-ready="1"', dom.stdout)
    section = dom.stdout.split('<h2 id="sage">')[1].split('<h2 id="breakdowns">')[0]
    assert "<svg" in section and "sage_zh: emotion trajectories" in section
    assert '<div class="meta">emotion 45 (+5) — ' in dom.stdout
    shot = tmp_path / "sage.png"  # the section with the trajectory chart
    res = _chromium(tmp_path, f"--screenshot={shot}", f"{url}#sage")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = np.asarray(image.imread(str(shot)))
    assert pixels.shape[:2] == (2000, 1280) and float(pixels[..., :3].std()) > 0.05
    shot = tmp_path / "page.png"  # the whole page, down to the dialogue browser's first card
    res = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4200", url)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    pixels = np.asarray(image.imread(str(shot)))
    assert pixels.shape[:2] == (4200, 1280) and float(pixels[2200:, :, :3].std()) > 0.05
