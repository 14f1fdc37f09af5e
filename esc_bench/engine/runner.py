"""Scheduling a run: bounded workers, resume from the run folder, progress, results."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shlex
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from esc_bench.engine.dialogue import run_dialogue
from esc_bench.engine.plan import RunPlan, TaskPlan
from esc_bench.engine.progress import ROLES, CountedSeat, RunProgress
from esc_bench.engine.run_manifest import build_manifest
from esc_bench.protocols.base import JudgeSeat
from esc_bench.records import Card, DialogueRecord
from esc_bench.store.manifest import finish_invocation, start_invocation

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class WorkItem:
    task: TaskPlan
    model: str
    card_index: int
    dialogue: DialogueRecord | None = None  # already finished: only scoring is left
    dimensions: tuple[str, ...] = ()  # the protocol's scores still to get (all, for a new dialogue)


@dataclass
class RunOutcome:
    dialogues_done: int = 0
    dialogues_failed: int = 0
    dialogues_skipped: int = 0  # finished in an earlier invocation
    scores_done: int = 0
    scores_missing: int = 0  # a reply with no score, after the re-asks
    judge_errors: int = 0  # a judge call that failed after its retries
    interrupted: bool = False
    stats: dict[str, Any] = field(default_factory=dict)  # per model: CallStats.as_dict()
    roles: dict[str, Any] = field(default_factory=dict)  # per role (seeker, supporter, judge): the same
    final: Any = None  # what `finish` returned (the leaderboard), when the run completed


def plan_work(plan: RunPlan) -> tuple[list[WorkItem], int]:
    """What is left to do, given what the run folder already holds."""
    done_dialogues = plan.run_dir.latest_dialogues(slim=True) if plan.resuming else {}
    done_scores = plan.run_dir.latest_scores(slim=True) if plan.resuming else {}
    opts = plan.options
    items: list[WorkItem] = []
    skipped = 0
    for tp in plan.tasks:
        for model in plan.supporters:
            for i, card in enumerate(tp.cards):
                prev = done_dialogues.get((tp.name, model, card.id))
                stale = prev is not None and prev.card_sha is not None and prev.card_sha != card_digest(card)
                if prev is None or prev.status != "ok" or stale:
                    if opts.mode != "score":
                        items.append(WorkItem(tp, model, i, dimensions=tp.protocol.score_names()))
                    continue
                todo = () if _skips_scoring(tp, opts.skip_judge) else _dimensions_to_score(done_scores, prev, tp)
                if not todo:
                    skipped += 1
                    continue
                items.append(WorkItem(tp, model, i, dialogue=prev, dimensions=todo))
    # Only the dialogues left to score are read whole (the judge reads their text).
    whole = plan.run_dir.dialogues_by_key({it.dialogue.key for it in items if it.dialogue is not None})
    for it in items:
        if it.dialogue is not None:
            it.dialogue = whole[it.dialogue.key]
    return items, skipped


def planned_calls(items: list[WorkItem], skip_judge: bool) -> int:
    """The calls `items` take, before retries and re-asks: what the progress's ETA counts down."""
    n = 0
    for it in items:
        budget = it.task.protocol.call_budget(it.task.rounds)
        if it.dialogue is None:
            n += budget.seeker + budget.supporter
        if not _skips_scoring(it.task, skip_judge):
            n += budget.judge * len(it.dimensions) // max(1, len(it.task.protocol.score_names()))
    return n


def _skips_scoring(tp: TaskPlan, skip_judge: bool) -> bool:
    """--skip-judge skips judge calls; a dialogue that scores itself is scored anyway (no call)."""
    return skip_judge and tp.protocol.spec.judged


def _dimensions_to_score(done: dict, d: DialogueRecord, tp: TaskPlan) -> tuple[str, ...]:
    """The protocol's scores with no record yet, or whose judge call failed."""
    return tuple(
        dim for dim in tp.protocol.score_names()
        if (rec := done.get((d.task, d.model, d.card_id, tp.judge, dim))) is None or rec.error is not None
    )


def needed_models(plan: RunPlan, items: list[WorkItem]) -> list[str]:
    """Only the models this invocation will call: a resume with nothing left to simulate
    never loads the simulator, re-scoring never needs the supporters."""
    names: dict[str, None] = {}
    for it in items:
        if it.dialogue is None:
            names[it.model] = names[it.task.simulator] = None
        if not plan.options.skip_judge and it.task.protocol.spec.judged:
            names[it.task.judge] = None
    return list(names)


async def execute(plan: RunPlan, console: Console, *, finish: Callable[[], Any] | None = None) -> RunOutcome:
    """Run every work item with bounded concurrency; write each result as it lands.

    `finish` (the leaderboard) runs once the work is done and before the manifest says
    `completed`, still under the signal handlers: a SIGTERM then marks the run interrupted.
    A full disk stops the run with one line (UserError), the folder resumable once space is freed.
    """
    from esc_bench.errors import UserError

    try:
        return await _session(plan, console, finish)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        raise UserError(
            f"disk full{where}; finished work is saved: free some space, then resume with: "
            f"esc-bench resume {shlex.quote(str(plan.run_dir.path))}"
        ) from None


async def _session(plan: RunPlan, console: Console, finish: Callable[[], Any] | None) -> RunOutcome:
    """The backends, the cache and the folder's lock around the work, released whatever happens."""
    from esc_bench.backends.cache import CACHE_FILE, ResponseCache, default_cache_path
    from esc_bench.backends.managed import CallStats
    from esc_bench.backends.registry import make_client

    opts = plan.options
    items, skipped = plan_work(plan)
    outcome = RunOutcome(dialogues_skipped=skipped)
    run_dir = plan.run_dir

    # Everything that can fail on bad input happens before the manifest is written.
    cache = None
    if opts.use_cache:
        cache = ResponseCache(opts.cache_dir / CACHE_FILE if opts.cache_dir else default_cache_path())
    names = needed_models(plan, items)
    stats = {name: CallStats() for name in names}
    backoff_base = float(os.environ.get("ESC_BENCH_BACKOFF_BASE", "1.0"))
    backends = {
        name: make_client(
            plan.models[name], cache=cache, stats=stats[name],
            backoff_base=backoff_base, seed=opts.seed,
        )
        for name in names
    }
    async with contextlib.AsyncExitStack() as cleanup:  # backends and cache closed whatever happens
        cleanup.push_async_callback(_close, backends, cache)
        if opts.preflight and os.environ.get("ESC_BENCH_PREFLIGHT", "1") != "0":
            await _preflight(plan, backends, names)
        run_dir.acquire()  # already held when a command built the plan: re-entrant
        cleanup.callback(run_dir.release)
        return await _work(plan, console, finish, items, outcome, backends, stats)
    raise AssertionError("unreachable")  # pragma: no cover


async def _close(backends: dict[str, Any], cache: Any) -> None:
    await asyncio.gather(*(b.aclose() for b in backends.values()), return_exceptions=True)
    if cache is not None:
        cache.close()


async def _work(
    plan: RunPlan, console: Console, finish: Callable[[], Any] | None, items: list[WorkItem],
    outcome: RunOutcome, backends: dict[str, Any], stats: dict[str, Any],
) -> RunOutcome:
    """The manifest's invocation, the workers, the end of the run (`finish`), the final status."""
    from esc_bench.backends.base import BackendError
    from esc_bench.backends.managed import CallStats
    from esc_bench.errors import UserError

    opts = plan.options
    run_dir = plan.run_dir
    manifest = build_manifest(plan)
    start_invocation(manifest, opts.argv)
    run_dir.write_manifest(manifest)
    dialogue_out = run_dir.dialogue_writer()
    score_out = run_dir.score_writer()
    roles = {role: CallStats() for role in ROLES}
    progress = RunProgress(console, stats, total_dialogues=len(items), skipped=outcome.dialogues_skipped,
                           planned_calls=planned_calls(items, opts.skip_judge), roles=roles)

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
                seeker=CountedSeat(backends[tp.simulator], roles["seeker"]),
                supporter=CountedSeat(backends[it.model], roles["supporter"]),
            )
            d.card_sha = card_digest(card)
            d.card = card
            dialogue_out.write(d)
            if d.status == "ok":
                outcome.dialogues_done += 1
            else:
                outcome.dialogues_failed += 1
        progress.dialogue_done(ok=d.status == "ok")
        if d.status != "ok" or _skips_scoring(tp, opts.skip_judge):
            progress.judged()
            return
        judge = None
        if tp.protocol.spec.judged:
            seat = CountedSeat(backends[tp.judge], roles["judge"])
            judge = JudgeSeat(seat, tp.judge, plan.models[tp.judge], tp.config.judge_retries)
        scores = await tp.protocol.score(d, judge, it.dimensions)
        score_out.write_many(scores)
        outcome.scores_done += len(scores)
        outcome.scores_missing += sum(1 for s in scores if s.score is None and s.error is None)
        outcome.judge_errors += sum(1 for s in scores if s.error is not None)
        progress.judged()

    # One queue per supporter; its workers are bounded by the max_concurrency of the model
    # that limits it (the supporter when simulating, else the judge).
    queues: dict[str, asyncio.Queue[WorkItem]] = {m: asyncio.Queue() for m in plan.supporters}
    for it in items:
        queues[it.model].put_nowait(it)

    def width(model: str, q: asyncio.Queue[WorkItem]) -> int:
        if model in backends:
            return min(plan.models[model].max_concurrency, q.qsize())
        judges = [plan.models[t.judge].max_concurrency for t in plan.tasks if t.judge in backends]
        return min(max(judges, default=1), q.qsize())

    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    interrupted = asyncio.Event()

    def _on_signal() -> None:
        if not interrupted.is_set():
            interrupted.set()
            if main_task is not None:
                main_task.cancel()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-Unix
            loop.add_signal_handler(sig, _on_signal)
    status = "failed"
    workers: list[asyncio.Task[None]] = []
    try:
        # Local models load here, before any call's timeout starts; a model that cannot
        # load is reported once instead of failing every dialogue.
        try:
            await asyncio.gather(*(b.start() for b in backends.values()))
        except BackendError as exc:
            raise UserError(f"a model could not start: {exc.message}") from None
        for model, q in queues.items():
            workers.extend(asyncio.create_task(worker(q)) for _ in range(width(model, q)))
        with progress:
            await asyncio.gather(*workers)
        dialogue_out.close()  # flushed and synced before `finish` reads them
        score_out.close()
        if finish is not None:
            outcome.final = await asyncio.to_thread(finish)
        status = "completed"
    except asyncio.CancelledError:
        if not interrupted.is_set():
            raise
        status = "interrupted"
    finally:
        for t in workers:
            t.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for sig, handler in previous.items():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
                if handler is not None:
                    signal.signal(sig, handler)  # not SIG_DFL: the command still handles it
        for out in (dialogue_out, score_out):
            with contextlib.suppress(OSError):  # closed in the run already, unless it failed
                out.close()
        outcome.interrupted = status == "interrupted"
        outcome.stats = {name: s.as_dict() for name, s in stats.items()}
        outcome.roles = {role: s.as_dict() for role, s in roles.items()}
        finish_invocation(manifest, status, outcome.stats)
        try:
            run_dir.write_manifest(manifest)
        except OSError:
            if status != "failed":
                raise
            # The disk that failed the run may not take the manifest either: the folder keeps
            # the one that says `running`, which resumes just as well.
    return outcome


async def _preflight(plan: RunPlan, backends: dict[str, Any], names: list[str]) -> None:
    """One tiny call per endpoint before anything is written; UserError naming what failed."""
    from esc_bench.backends.preflight import Probe, preflight
    from esc_bench.errors import UserError

    probes: list[Probe] = []
    for name in names:
        adapters = {
            next(iter(tp.protocol.judge_adapters(plan.models[name], tp.config.language)), None)
            for tp in plan.tasks if tp.judge == name
        } or {None}
        probes += [Probe(name, backends[name].inner, a) for a in sorted(adapters, key=str)]
    failed = await preflight(probes)
    if failed:
        raise UserError(
            f"preflight: {'; '.join(failed)} (nothing was run; --no-preflight skips this check)"
        )


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """For a whole command: SIGTERM ends it as Ctrl-C does (KeyboardInterrupt), also outside
    the run loop (planning, the summary), instead of killing the process with -15."""

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def card_digest(card: Card) -> str:
    """What the seeker saw of a card: a changed card text means its dialogue is redone."""
    return hashlib.sha256(card.base.encode("utf-8")).hexdigest()[:16]
