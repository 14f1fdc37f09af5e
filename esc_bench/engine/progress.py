"""A rich progress display: dialogues and judging, ETA, calls, tokens, cost, cache hits."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from esc_bench.backends.base import BackendError, ChatRequest, ChatResult

ROLES = ("seeker", "supporter", "judge")


def usage_line(stats: dict[str, Any]) -> str:
    calls = sum(getattr(s, "calls", 0) for s in stats.values())
    hits = sum(getattr(s, "cache_hits", 0) for s in stats.values())
    retries = sum(getattr(s, "retries", 0) for s in stats.values())
    tokens = sum(getattr(s, "prompt_tokens", 0) + getattr(s, "completion_tokens", 0) for s in stats.values())
    return f"calls {calls} · cached {hits} · retries {retries} · tokens {tokens:,}{_cost(stats)}"


def _cost(stats: dict[str, Any]) -> str:
    known = [c for s in stats.values() if (c := getattr(s, "cost", None))]
    return f" · ${sum(known):.4f}" if known else " · cost unknown"


def totals_line(wall_s: float, roles: dict[str, dict[str, Any]], models: dict[str, dict[str, Any]]) -> str:
    """The last line of a run's summary: wall time, calls by role, tokens, cost (from the
    `as_dict()` counters of each role and each model)."""
    calls = sum(int(s.get("calls", 0)) for s in roles.values())
    by_role = ", ".join(f"{r} {roles[r]['calls']}" for r in ROLES if roles.get(r, {}).get("calls"))
    hits = sum(int(s.get("cache_hits", 0)) for s in roles.values())
    retries = sum(int(s.get("retries", 0)) for s in models.values())
    tokens = sum(int(s.get("prompt_tokens", 0)) + int(s.get("completion_tokens", 0)) for s in roles.values())
    known = [float(c) for s in roles.values() if (c := s.get("cost"))]
    cost = f" · ${sum(known):.4f}" if known else " · cost unknown"
    minutes, seconds = divmod(wall_s, 60)
    wall = f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.1f}s"
    return (f"wall {wall} · calls {calls}" + (f" ({by_role})" if by_role else "")
            + f" · cached {hits} · retries {retries} · tokens {tokens:,}{cost}")


class CountedSeat:
    """A managed model as one role sees it: each call it makes moves that role's counters (and
    so the progress display) the moment it returns, not when its dialogue ends."""

    def __init__(self, backend: Any, stats: Any) -> None:
        self.backend = backend
        self.stats = stats

    async def chat(self, request: ChatRequest) -> ChatResult:
        try:
            res: ChatResult = await self.backend.chat(request)
        except BackendError as exc:
            self.stats.add_error(exc.kind, final=True)
            raise
        self.stats.add_result(res)
        return res


class _CallsEta(TimeRemainingColumn):
    """The ETA, shown on the calls row only: it comes from the calls left, not dialogues done."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("eta") else Text("")


class RunProgress:
    """Dialogues and judging done, and calls made of those planned (with the ETA and the usage
    line, which move with every call)."""

    def __init__(
        self, console: Console, stats: dict[str, Any], *, total_dialogues: int, skipped: int,
        planned_calls: int = 0, roles: dict[str, Any] | None = None,
    ) -> None:
        self.stats = stats
        self.roles = roles or {}
        self.failed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _CallsEta(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not console.is_terminal,
            refresh_per_second=4,
        )
        self._dialogues = self._progress.add_task("dialogues", total=total_dialogues, info="")
        self._judging = self._progress.add_task("judging  ", total=total_dialogues, info="")
        self._calls = self._progress.add_task("calls    ", total=max(planned_calls, 1), info="", eta=True)
        self.planned_calls = planned_calls
        self.skipped = skipped
        for s in (*self.stats.values(), *self.roles.values()):
            s.on_change = self._changed

    def _changed(self, _stats: object) -> None:
        done = sum(s.calls for s in self.roles.values())
        total = max(self.planned_calls, done, 1)  # re-asks and retries may pass the plan
        self._progress.update(self._calls, completed=done, total=total, info=usage_line(self.stats))

    @property
    def calls_done(self) -> int:
        return int(self._progress.tasks[self._calls].completed)

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def dialogue_done(self, *, ok: bool) -> None:
        if not ok:
            self.failed += 1
        self._progress.update(self._dialogues, advance=1, info=f"[red]{self.failed} failed[/]" if self.failed else "")

    def judged(self) -> None:
        self._progress.update(self._judging, advance=1)
