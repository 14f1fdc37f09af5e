"""Protocol fidelity through the whole CLI: every request equals the upstream recipe, byte for byte.

The upstream files are served by a loopback mirror of stand-ins built from
../shared/esc-eval/upstream_protocol.json (skipped when ../shared is absent).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_bench.cli import main
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.jsonl import read_records
from tests.support.fake_openai import FakeOpenAI
from tests.support.static_server import StaticServer
from tests.support.upstream_standins import ESC_EVAL, recipe, reference


def _dump(messages: list[dict]) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("adapters", [False, True], ids=["llm-judge", "rank-adapters"])
def test_requests_match_the_upstream_recipe(tmp_path: Path, upstream_mirror: StaticServer, adapters: bool) -> None:
    ref = reference()
    rec = recipe(ref)
    with FakeOpenAI() as srv:
        models = tmp_path / "models"
        models.mkdir()
        for name in ("seeker", "sup-a", "judge"):
            extra = "dimension_adapters: true\n" if (name == "judge" and adapters) else ""
            (models / f"{name}.yaml").write_text(
                f"backend: openai\nmodel: {name}\napi_base: {srv.url}\n{extra}", encoding="utf-8"
            )
        out = tmp_path / "run"
        rc = main(["--models", "sup-a", "--tasks", "esc_eval", "--simulator", "seeker", "--judge", "judge",
                   "--limit", "2", "--model-configs", str(models), "--output", str(out), "--no-cache"])
        assert rc == 0
        logged = srv.requests
    by_model: dict[str, list[str]] = {}
    for r in logged:
        by_model.setdefault(r.body["model"], []).append(_dump(r.body["messages"]))

    cards = {
        lang: {str(c["id"]): c for c in json.loads((ESC_EVAL / f"card_high_{lang}.json").read_text("utf-8"))}
        for lang in ("en", "zh")
    }
    dialogues = read_records(out / "dialogues.jsonl", DialogueRecord)
    assert sorted((d.task, d.language) for d in dialogues) == [
        ("esc_eval_en", "en"), ("esc_eval_en", "en"), ("esc_eval_zh", "zh"), ("esc_eval_zh", "zh")
    ]
    prefix = ref["transcript_speaker_prefix"]
    expected_judge: dict[str, list[str]] = {}
    for d in dialogues:
        lang = ref["languages"][d.language]
        card = cards[d.language][d.card_id]
        texts = [t.text for t in d.transcript]
        assert texts[0] == lang["greeting"] and len(texts) == 11
        seeker_lines, supporter_lines = texts[1::2], texts[2::2]
        system = lang["seeker_system_before_card"] + card["base"] + lang["seeker_system_after_card"]
        for k in range(5):
            seeker = [{"role": "system", "content": system}, {"role": "user", "content": lang["greeting"]}]
            for i in range(k):
                seeker += [{"role": "assistant", "content": seeker_lines[i]},
                           {"role": "user", "content": supporter_lines[i]}]
            assert _dump(seeker) in by_model["seeker"], (d.card_id, k)
            supporter = [{"role": "system", "content": ref["supporter_system_if_missing"]}]
            for i in range(k):
                supporter += [{"role": "user", "content": seeker_lines[i]},
                              {"role": "assistant", "content": supporter_lines[i]}]
            supporter.append({"role": "user", "content": seeker_lines[k]})
            assert _dump(supporter) in by_model["sup-a"], (d.card_id, k)
        # The judge sees the transcript as upstream stored it: prefixed lines, greeting first.
        lines = [(prefix["supporter"] if i % 2 == 0 else prefix["seeker"]) + t for i, t in enumerate(texts)]
        for i, dim in enumerate(ref["dimensions"]):
            prompt = rec.judge_prompt(lang["judge_rubrics"][i], dim["name_in_judge_prompt"], lines)
            target = dim["rank_adapter"] + lang["rank_adapter_suffix"] if adapters else "judge"
            expected_judge.setdefault(target, []).append(_dump([{"role": "user", "content": prompt}]))
    for target, prompts in expected_judge.items():
        assert sorted(prompts) == sorted(by_model[target])  # exactly these, each once
    assert len(by_model["seeker"]) == len(by_model["sup-a"]) == 4 * 5
    if adapters:
        assert set(expected_judge) == {
            f"{k}{s}" for k in ("fluency", "diversity", "empathic", "suggestion", "human", "tech", "overall")
            for s in ("", "_en")
        }
    scores = read_records(out / "scores.jsonl", ScoreRecord)
    assert len(scores) == 4 * 7 and all(s.score is not None for s in scores)
