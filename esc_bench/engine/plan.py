"""From command-line options to a checked plan: every input is validated before any call."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from esc_bench.config.loader import ModelRegistry, TaskRegistry
from esc_bench.config.schema import HFConfig, ModelConfig, TaskConfig
from esc_bench.errors import ConfigError, UserError
from esc_bench.protocols.base import SELF_JUDGE, ProtocolPlugin
from esc_bench.records import Card, RunOptions
from esc_bench.store.run_dir import RunDir, config_differences


@dataclass
class TaskPlan:
    config: TaskConfig
    protocol: ProtocolPlugin
    cards: list[Card]
    rounds: int
    simulator: str
    judge: str

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class RunPlan:
    run_id: str
    run_dir: RunDir
    options: RunOptions
    supporters: list[str]
    tasks: list[TaskPlan]
    models: dict[str, ModelConfig]  # every model the run calls, by name
    config_hashes: dict[str, str]
    resuming: bool = False
    failure_budget: FailureBudget = field(default_factory=lambda: FailureBudget("count", 0.0))

    def n_dialogues(self) -> int:
        return len(self.supporters) * sum(len(t.cards) for t in self.tasks)


def build_plan(opts: RunOptions) -> RunPlan:
    from esc_bench.backends.registry import check_credentials
    from esc_bench.data.cards import load_cards
    from esc_bench.protocols.registry import get_protocol

    if not opts.models:
        raise UserError("--models is empty: name at least one model (a config name or a litellm model string)")
    if not opts.tasks:
        raise UserError("--tasks is empty: name tasks or groups, or 'all'")
    if opts.limit is not None and opts.limit < 1:
        raise UserError("--limit must be at least 1")
    failure_budget = parse_max_failures(opts.max_failures)

    task_reg = TaskRegistry(opts.tasks_dirs)
    model_reg = ModelRegistry(opts.model_configs)
    task_cfgs = task_reg.resolve(opts.tasks)
    supporters = list(dict.fromkeys(opts.models))
    # Protocols first (a registered plugin is instant; esc-eval's strings may download).
    protocols = {cfg.name: get_protocol(cfg.protocol, base_dir=task_reg.files[cfg.name].parent) for cfg in task_cfgs}
    # Only the models this command may call: re-scoring needs no supporter and no seeker,
    # a protocol whose dialogues score themselves needs no judge.
    models: dict[str, ModelConfig] = {}
    for cfg in task_cfgs:
        names = [] if opts.mode == "score" else [*supporters, opts.simulator or cfg.simulator]
        if not opts.skip_judge and protocols[cfg.name].spec.judged:
            names.append(opts.judge or cfg.judge)
        for name in names:
            if name not in models:
                models[name] = model_reg.get(name)
    # Models and keys first (local, instant), then card files.
    for mcfg in models.values():
        check_credentials(mcfg)

    plans: list[TaskPlan] = []
    for cfg in task_cfgs:
        protocol = protocols[cfg.name]
        simulator = opts.simulator or cfg.simulator
        judge = (opts.judge or cfg.judge) if protocol.spec.judged else SELF_JUDGE
        if cfg.language not in protocol.languages:
            raise ConfigError(f"task {cfg.name!r}: protocol {cfg.protocol!r} has no {cfg.language!r} strings")
        cards = load_cards(cfg.cards, cfg.language, base_dir=task_reg.files[cfg.name].parent)
        if opts.limit is not None:
            cards = cards[: opts.limit]
        plans.append(
            TaskPlan(cfg, protocol, cards, cfg.rounds or protocol.default_rounds, simulator, judge)
        )

    if not opts.skip_judge:
        _check_judge_adapters(plans, models)

    hashes = {f"task:{p.name}": _task_hash(p) for p in plans}
    hashes.update({f"model:{n}": c.config_hash() for n, c in models.items()})

    fresh_id = new_run_id(hashes)
    run_dir = RunDir(opts.output if opts.output else Path("results") / fresh_id)
    run_dir.check_writable()
    # The folder is locked before it is read, and stays locked until the command releases it:
    # a second process started at the same moment is refused instead of redoing the same work.
    run_dir.acquire()
    try:
        run_id, resuming = _read_run_folder(run_dir, hashes, fresh_id)
    except BaseException:
        run_dir.release()
        raise
    return RunPlan(run_id, run_dir, opts, supporters, plans, models, hashes, resuming, failure_budget)


def _read_run_folder(run_dir: RunDir, hashes: dict[str, str], fresh_id: str) -> tuple[str, bool]:
    """(run id, resuming): an existing run folder is resumed if its configs still match."""
    if not run_dir.exists():
        run_dir.refuse_orphan_results()
        return fresh_id, False
    manifest = run_dir.read_manifest()
    changed = config_differences(manifest.config_hashes, hashes)
    if changed:
        raise UserError(
            f"{run_dir.path} was run with a different config for {', '.join(changed)}; "
            "use a new --output folder (or restore the old config) to keep results comparable"
        )
    return manifest.run_id, True


def _check_judge_adapters(plans: list[TaskPlan], models: dict[str, ModelConfig]) -> None:
    """A local judge with one adapter per dimension must have every adapter its tasks need."""
    for tp in plans:
        cfg = models.get(tp.judge)
        if not isinstance(cfg, HFConfig) or not cfg.dimension_adapters:
            continue
        need = tp.protocol.judge_adapters(cfg, tp.config.language)
        missing = [a for a in need if a not in cfg.adapters]
        if missing:
            raise ConfigError(
                f"judge {tp.judge!r} (task {tp.name!r}, {tp.config.language}) has no adapter "
                f"{', '.join(missing)}; its adapters: {', '.join(sorted(cfg.adapters)) or 'none'}"
            )


def _task_hash(plan: TaskPlan) -> str:
    """The task's config plus what it resolved to (protocol text, rounds, seeker).

    Card ids are left out on purpose: a rerun with a larger --limit extends a run.
    """
    h = hashlib.sha256()
    h.update(plan.config.model_copy(update={"judge": ""}).config_hash().encode())
    h.update(plan.protocol.fingerprint().encode())
    h.update(f"{plan.rounds}|{plan.simulator}".encode())  # judges sit side by side: not hashed
    return h.hexdigest()[:16]


def new_run_id(hashes: dict[str, str]) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(repr(sorted(hashes.items())).encode()).hexdigest()[:6]
    return f"{stamp}-{digest}"


class FailureBudget(NamedTuple):
    """How many planned dialogues may fail before a run's exit code is 1: a count or a fraction."""

    kind: str  # "count" | "fraction"
    limit: float

    def allowed(self, planned: int) -> float:
        return self.limit if self.kind == "count" else self.limit * max(1, planned)


def parse_max_failures(value: str) -> FailureBudget:
    """'3' -> at most 3 failed dialogues; '0.05' or '5%' -> at most that fraction."""
    v = str(value).strip()
    try:
        if v.endswith("%"):
            frac = float(v[:-1]) / 100
            if not 0 <= frac <= 1:
                raise ValueError
            return FailureBudget("fraction", frac)
        if "." in v:
            frac = float(v)
            if not 0 <= frac <= 1:
                raise ValueError
            return FailureBudget("fraction", frac)
        n = int(v)
        if n < 0:
            raise ValueError
        return FailureBudget("count", float(n))
    except ValueError:
        raise UserError(f"--max-failures {value!r}: give a count (3), a fraction (0.05) or a percentage (5%)") from None
