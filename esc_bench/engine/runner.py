"""Scheduling a run: bounded workers, resume from the run folder, progress, results."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from typing import Any

from esc_bench.engine.dialogue import run_dialogue
from esc_bench.engine.judge import judge_dialogue
from esc_bench.engine.plan import RunPlan, TaskPlan
from esc_bench.engine.progress import RunProgress
from esc_bench.records import DialogueRecord, ScoreRecord
from esc_bench.store.manifest import build_manifest, finish_invocation, start_invocation


@dataclass
class WorkItem:
    task: TaskPlan
    model: str
    card_index: int
    dialogue: DialogueRecord | None = None  # already finished: only scoring is left


@dataclass
class RunOutcome:
    dialogues_done: int = 0
    dialogues_failed: int = 0
    dialogues_skipped: int = 0  # finished in an earlier invocation
    scores_done: int = 0
    scores_missing: int = 0
    interrupted: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # model -> failed dialogues (all invocations)
    stats: dict[str, Any] = field(default_factory=dict)


def plan_work(plan: RunPlan) -> tuple[list[WorkItem], int]:
    """What is left to do, given what the run folder already holds."""
    done_dialogues = plan.run_dir.latest_dialogues() if plan.resuming else {}
    done_scores = plan.run_dir.latest_scores() if plan.resuming else {}
    items: list[WorkItem] = []
    skipped = 0
    for tp in plan.tasks:
        for model in plan.supporters:
            for i, card in enumerate(tp.cards):
                prev = done_dialogues.get((tp.name, model, card.id))
                if prev is None or prev.status != "ok":
                    if not plan.options.score_only:
                        items.append(WorkItem(tp, model, i))
                    continue
                if plan.options.skip_judge or _scores_complete(done_scores, prev, tp.judge):
                    skipped += 1
                    continue
                items.append(WorkItem(tp, model, i, dialogue=prev))
    return items, skipped


def _scores_complete(done: dict, d: DialogueRecord, judge: str) -> bool:
    from esc_bench.dimensions import DIMENSION_NAMES

    for dim in DIMENSION_NAMES:
        rec = done.get((d.task, d.model, d.card_id, judge, dim))
        if rec is None or rec.error is not None:
            return False
    return True


async def execute(plan: RunPlan, console) -> RunOutcome:
    """Run every work item with bounded concurrency; write each result as it lands."""
    from esc_bench.backends.cache import CACHE_FILE, ResponseCache, default_cache_path
    from esc_bench.backends.managed import CallStats, ManagedBackend
    from esc_bench.backends.registry import make_backend

    opts = plan.options
    items, skipped = plan_work(plan)
    outcome = RunOutcome(dialogues_skipped=skipped)

    run_dir = plan.run_dir
    manifest = build_manifest(plan)
    start_invocation(manifest, opts.argv)
    run_dir.write_manifest(manifest)

    cache = None
    if opts.use_cache:
        cache = ResponseCache(opts.cache_dir / CACHE_FILE if opts.cache_dir else default_cache_path())
    stats = {name: CallStats() for name in plan.models}
    backoff_base = float(os.environ.get("ESC_BENCH_BACKOFF_BASE", "1.0"))
    backends = {
        name: ManagedBackend(
            make_backend(cfg), cache=cache, stats=stats[name], backoff_base=backoff_base, seed=opts.seed
        )
        for name, cfg in plan.models.items()
    }
    dialogue_out = run_dir.dialogue_writer()
    score_out = run_dir.score_writer()
    progress = RunProgress(console, stats, total_dialogues=len(items), skipped=skipped)

    # One queue per supporter; its workers are bounded by that model's max_concurrency.
    queues: dict[str, asyncio.Queue[WorkItem]] = {m: asyncio.Queue() for m in plan.supporters}
    for it in items:
        queues[it.model].put_nowait(it)

    async def worker(q: asyncio.Queue[WorkItem]) -> None:
        while True:
            try:
                it = q.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _process(it)

    async def _process(it: WorkItem) -> None:
        tp = it.task
        card = tp.cards[it.card_index]
        d = it.dialogue
        if d is None:
            d = await run_dialogue(
                task=tp.name, model=it.model, card=card, language=tp.config.language,
                protocol=tp.protocol, rounds=tp.rounds,
                seeker=backends[tp.simulator], supporter=backends[it.model],
            )
            dialogue_out.write(d)
            if d.status == "ok":
                outcome.dialogues_done += 1
            else:
                outcome.dialogues_failed += 1
        progress.dialogue_done(ok=d.status == "ok")
        if d.status != "ok" or opts.skip_judge:
            progress.judged()
            return
        scores = await judge_dialogue(
            d, protocol=tp.protocol, judge=backends[tp.judge], judge_name=tp.judge,
            judge_config=plan.models[tp.judge], retries=tp.config.judge_retries,
        )
        score_out.write_many(scores)
        outcome.scores_done += len(scores)
        outcome.scores_missing += sum(1 for s in scores if s.score is None)
        progress.judged()

    # Local models load here, before any call's timeout starts; a model that cannot load is
    # reported once instead of failing every dialogue.
    from esc_bench.backends.base import BackendError
    from esc_bench.errors import UserError

    try:
        await asyncio.gather(*(b.start() for b in backends.values()))
    except BackendError as exc:
        dialogue_out.close()
        score_out.close()
        await asyncio.gather(*(b.aclose() for b in backends.values()), return_exceptions=True)
        finish_invocation(manifest, "failed", {})
        run_dir.write_manifest(manifest)
        raise UserError(f"a model could not start: {exc.message}") from None

    tasks: list[asyncio.Task[None]] = []
    for model, q in queues.items():
        n = min(plan.models[model].max_concurrency, q.qsize())
        tasks.extend(asyncio.create_task(worker(q)) for _ in range(n))

    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()

    def _on_signal() -> None:
        interrupted.set()
        for t in tasks:
            t.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    try:
        with progress:
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
        dialogue_out.close()
        score_out.close()
        await asyncio.gather(*(b.aclose() for b in backends.values()), return_exceptions=True)
        if cache is not None:
            cache.close()
        outcome.interrupted = interrupted.is_set()
        outcome.stats = {name: s.as_dict() for name, s in stats.items()}
        finish_invocation(
            manifest, "interrupted" if outcome.interrupted else "completed", outcome.stats
        )
        run_dir.write_manifest(manifest)
    return outcome
