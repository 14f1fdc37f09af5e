"""The manifest of a planned run: resolved configs, cards, protocols, versions; merged into the
folder's old manifest when resuming."""

from __future__ import annotations

import os
from pathlib import Path

from esc_bench import __version__
from esc_bench.engine.plan import RunPlan
from esc_bench.records import Manifest
from esc_bench.store.manifest import git_commit, now_iso, package_versions


def build_manifest(plan: RunPlan) -> Manifest:
    """A fresh manifest for this invocation, merged into the folder's old one when resuming."""
    old = plan.run_dir.read_manifest() if plan.resuming else None
    if plan.options.mode == "score" and old is not None:
        # Re-scoring keeps the run's own judge; the new one is recorded beside it.
        extra = list(dict.fromkeys([*old.extra_judges, *(tp.judge for tp in plan.tasks)]))
        m = old.model_copy(deep=True)
        m.extra_judges = [j for j in extra if j not in {t.get("judge") for t in old.tasks.values()}]
        m.models.update({n: c.public_dict() for n, c in plan.models.items()})
        m.config_hashes.update(plan.config_hashes)
        return m
    tasks = {
        tp.name: {
            **tp.config.model_dump(mode="json"),
            "simulator": tp.simulator,
            "judge": tp.judge,
            "rounds": tp.rounds,
        }
        for tp in plan.tasks
    }
    models = {name: cfg.public_dict() for name, cfg in plan.models.items()}
    cards = {tp.name: [c.id for c in tp.cards] for tp in plan.tasks}
    protocols = {tp.name: tp.protocol.name for tp in plan.tasks}
    specs = {tp.name: tp.protocol.spec for tp in plan.tasks}
    m = Manifest(
        run_id=plan.run_id,
        created=old.created if old else now_iso(),
        command=old.command if old else list(plan.options.argv),
        cwd=old.cwd if old else os.getcwd(),
        seed=plan.options.seed,
        esc_bench_version=__version__,
        packages=package_versions(),
        git_commit=git_commit(),
        supporters=list(dict.fromkeys([*(old.supporters if old else []), *plan.supporters])),
        tasks={**(old.tasks if old else {}), **tasks},
        models={**(old.models if old else {}), **models},
        config_hashes={**(old.config_hashes if old else {}), **plan.config_hashes},
        protocols={**(old.protocols if old else {}), **protocols},
        specs={**(old.specs if old else {}), **specs},
        cards=_merge_cards(old.cards if old else {}, cards),
        cache={"enabled": plan.options.use_cache},
        invocations=list(old.invocations) if old else [],
        extra_judges=list(old.extra_judges) if old else [],
        options=plan.options.resolved(Path.cwd()),
    )
    return m


def _merge_cards(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in old.items()}
    for task, ids in new.items():
        merged = out.setdefault(task, [])
        seen = set(merged)
        merged.extend(i for i in ids if i not in seen)
    return out
