"""Building and updating manifest.json (resolved configs, versions, invocations)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esc_bench import __version__
from esc_bench.store.run_dir import Invocation, Manifest

if TYPE_CHECKING:
    from esc_bench.engine.plan import RunPlan

_PACKAGES = (
    "pydantic", "aiohttp", "aiolimiter", "litellm", "rich", "numpy", "scipy",
    "torch", "transformers", "peft", "accelerate", "vllm",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The esc-bench checkout's commit, when it runs from one."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        res = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def build_manifest(plan: RunPlan) -> Manifest:
    """A fresh manifest for this invocation, merged into the folder's old one when resuming."""
    old = plan.run_dir.read_manifest() if plan.resuming else None
    if plan.options.score_only and old is not None:
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
    )
    return m


def _merge_cards(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in old.items()}
    for task, ids in new.items():
        merged = out.setdefault(task, [])
        seen = set(merged)
        merged.extend(i for i in ids if i not in seen)
    return out


def start_invocation(manifest: Manifest, argv: list[str]) -> None:
    manifest.invocations.append(Invocation(argv=list(argv), started=now_iso()))


def finish_invocation(manifest: Manifest, status: str, stats: dict[str, dict[str, Any]]) -> None:
    inv = manifest.invocations[-1]
    inv.finished = now_iso()
    inv.status = status
    inv.calls = sum(int(s.get("calls", 0)) for s in stats.values())
    inv.cache_hits = sum(int(s.get("cache_hits", 0)) for s in stats.values())
    manifest.cache["hits_total"] = sum(i.cache_hits for i in manifest.invocations)
    manifest.cache["last_stats"] = stats
