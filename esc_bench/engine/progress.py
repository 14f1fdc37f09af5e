"""A rich progress display: dialogues and judging, ETA, calls, tokens, cost, cache hits."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def usage_line(stats: dict[str, Any]) -> str:
    calls = sum(getattr(s, "calls", 0) for s in stats.values())
    hits = sum(getattr(s, "cache_hits", 0) for s in stats.values())
    retries = sum(getattr(s, "retries", 0) for s in stats.values())
    tokens = sum(getattr(s, "prompt_tokens", 0) + getattr(s, "completion_tokens", 0) for s in stats.values())
    costs = [getattr(s, "cost", None) for s in stats.values()]
    known = [c for c in costs if c]
    cost = f" · ${sum(known):.4f}" if known else " · cost unknown"
    return f"calls {calls} · cached {hits} · retries {retries} · tokens {tokens:,}{cost}"


class RunProgress:
    def __init__(self, console: Console, stats: dict[str, Any], *, total_dialogues: int, skipped: int) -> None:
        self.stats = stats
        self.failed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=not console.is_terminal,
            refresh_per_second=4,
        )
        self._dialogues = self._progress.add_task("dialogues", total=total_dialogues, info="")
        self._judging = self._progress.add_task("judging  ", total=total_dialogues, info="")
        self.skipped = skipped

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
        failed = f"[red]{self.failed} failed[/] · " if self.failed else ""
        self._progress.update(self._dialogues, advance=1, info=failed + usage_line(self.stats))

    def judged(self) -> None:
        self._progress.update(self._judging, advance=1)
