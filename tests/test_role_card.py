"""The role card the seeker was given travels with its dialogue record and shows in the pages."""

from __future__ import annotations

import html
import json
from pathlib import Path

from esc_bench.cli import main
from esc_bench.records import DialogueRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI


def _configs(root: Path, url: str) -> tuple[Path, Path]:
    models, tasks = root / "models", root / "tasks"
    models.mkdir(parents=True)
    tasks.mkdir(parents=True)
    for name in ("seeker", "sup-a", "sup-b", "judge"):
        (models / f"{name}.yaml").write_text(
            f"backend: openai\nmodel: {name}\napi_base: {url}\nmax_retries: 1\ntimeout: 10\n"
            "generation: {temperature: 0.0, max_tokens: 32}\n", encoding="utf-8")
    cards = root / "cards.json"
    cards.write_text(json.dumps([
        {"id": "c1", "base": "A nurse <on night shifts> who cannot sleep.", "language": "en", "res": "work"},
        {"id": "c2", "base": "A father worried about his son.", "language": "en", "res": "family"},
    ]), encoding="utf-8")
    (tasks / "mine.yaml").write_text(
        f"language: en\nprotocol: esc-bench\ncards: {{source: {cards}}}\nsimulator: seeker\njudge: judge\n",
        encoding="utf-8")
    return models, tasks


def test_the_run_stores_the_card_and_report_and_compare_show_it(tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        models, tasks = _configs(tmp_path, server.url)
        out = tmp_path / "run"
        assert main(["--models", "sup-a,sup-b", "--tasks", "mine", "--model-configs", str(models),
                     "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"]) == 0
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert len(dialogues) == 4
    by_card = {d.card_id: d.card for d in dialogues}
    assert by_card["c1"] is not None and by_card["c1"].base == "A nurse <on night shifts> who cannot sleep."
    assert by_card["c2"].res == "family"
    # compare: the role card above the two dialogues of each card whose averages differ
    cmp_page = tmp_path / "compare.html"
    assert main(["compare", str(out), "-o", str(cmp_page)]) == 0
    html = cmp_page.read_text(encoding="utf-8")
    shown = [c for c in ("A nurse &lt;on night shifts&gt; who cannot sleep.", "A father worried about his son.")
             if c in html]
    assert shown and html.count("what the seeker was given") == html.count('<section class="cardgroup pair">') >= 1


def test_a_dialogue_record_without_a_card_still_reads(tmp_path: Path) -> None:
    old = {"task": "t", "model": "m", "card_id": "1", "language": "en", "status": "ok", "transcript": []}
    assert DialogueRecord.model_validate(old).card is None


def _card_groups(page: str) -> list[str]:
    """The report's dialogue browser, one block per card."""
    return [g.split("</main>")[0] for g in page.split('<details class="cardgroup"')[1:]]


def test_the_html_report_shows_the_role_card_with_each_dialogue_user_cards(tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        models, tasks = _configs(tmp_path, server.url)
        out = tmp_path / "run"
        assert main(["--models", "sup-a,sup-b", "--tasks", "mine", "--model-configs", str(models),
                     "--tasks-dir", str(tasks), "--output", str(out), "--no-cache"]) == 0
    page = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(page)]) == 0
    groups = _card_groups(page.read_text(encoding="utf-8"))
    assert len(groups) == 2
    want = {"c1": "A nurse &lt;on night shifts&gt; who cannot sleep.", "c2": "A father worried about his son."}
    for group in groups:
        card = "c1" if "card c1 " in group else "c2"
        # the card once, above both models' dialogues
        assert group.count('class="rolecard"') == 1 and "what the seeker was given" in group, group[:200]
        assert want[card] in group and want["c2" if card == "c1" else "c1"] not in group
        assert group.index('class="rolecard"') < group.index('<details class="dlg"')
        assert group.count('<details class="dlg"') == 2


def test_the_html_report_shows_the_esc_eval_card_and_keeps_its_annotation_apart(
        tmp_path: Path, upstream_mirror) -> None:
    from tests.support.upstream_standins import ESC_EVAL, shared_or_skip

    shared_or_skip()
    with FakeOpenAI() as server:
        models, _ = _configs(tmp_path, server.url)
        out = tmp_path / "run"
        assert main(["--models", "sup-a", "--tasks", "esc_eval_en", "--simulator", "seeker", "--judge", "judge",
                     "--limit", "2", "--model-configs", str(models), "--output", str(out), "--no-cache"]) == 0
    page = tmp_path / "report.html"
    assert main(["report", str(out), "-o", str(page)]) == 0
    groups = _card_groups(page.read_text(encoding="utf-8"))
    cards = {str(c["id"]): c for c in json.loads((ESC_EVAL / "card_high_en.json").read_text("utf-8"))}
    assert len(groups) == 2
    for group in groups:
        card = next(c for cid, c in cards.items() if f"card {cid} " in group)
        given = group.split("what the seeker was given</span>", 1)[1].split("</div>", 1)[0]
        base, annotation = given.split("<details>", 1) if "<details>" in given else (given, "")
        assert html.escape(card["base"], quote=True) in base  # exactly what the seeker got, nothing more
        # the English cards carry a Chinese annotation: shown apart, folded, never as the seeker's text
        assert card["base_biaozhu"].strip() and card["base_biaozhu"].strip() != card["base"].strip()
        assert html.escape(card["base_biaozhu"]) not in base
        assert "not given to the seeker" in annotation and html.escape(card["base_biaozhu"]) in annotation
