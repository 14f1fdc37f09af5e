"""The sentient-agent protocol's own report block: per task and model, the final emotion's mean
with its 95% CI, success and failure counts, n, and the mean emotion trajectory per turn.

Read from dialogue records alone (each seeker turn's recorded emotion), so it works the same for
runs made here and for SAGE's published results imported with `esc-bench import-sage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from esc_bench.protocols import sage_mechanics as rules
from esc_bench.protocols.sage import NAME, final_emotion, trajectory
from esc_bench.records import DialogueRecord

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.analysis.report import Report


@dataclass(frozen=True)
class SageRow:
    task: str
    model: str
    summary: rules.SageSummary
    failed: int  # dialogues that failed (no final emotion)


def report_protocols(report: Report) -> dict[str, str]:
    """task -> protocol name, over a report's runs."""
    return {t: p for r in report.runs for t, p in r.manifest.protocols.items()}


def sage_rows(dialogues: list[DialogueRecord], protocols: dict[str, str], *, seed: int = 0) -> list[SageRow]:
    """One row per (task, model) of the tasks whose protocol is sage (`protocols`: task -> name)."""
    groups: dict[tuple[str, str], list[DialogueRecord]] = {}
    for d in dialogues:
        if protocols.get(d.task) == NAME:
            groups.setdefault((d.task, d.model), []).append(d)
    rows = []
    for (task, model), ds in groups.items():
        ok = [d for d in ds if d.status == "ok" and final_emotion(d) is not None]
        finals = [float(final_emotion(d)) for d in ok]  # type: ignore[arg-type]
        summary = rules.summarize(finals, [trajectory(d) for d in ok], seed=seed)
        rows.append(SageRow(task, model, summary, failed=len(ds) - len(ok)))
    rows.sort(key=lambda r: (r.task, -(r.summary.mean if r.summary.mean is not None else -1), r.model))
    return rows


def _mean(s: rules.SageSummary) -> str:
    if s.mean is None:
        return "–"
    if s.ci95 is None:
        return f"{s.mean:.1f}"
    return f"{s.mean:.1f} [{s.ci95[0]:.1f}, {s.ci95[1]:.1f}]"


def _trajectory(s: rules.SageSummary) -> str:
    return " ".join(f"{v:.0f}" for v in s.trajectory)


HEADER = ["task", "model", "final emotion [95% CI]", "success", "failure", "n", "failed", "mean trajectory per turn"]


def row_cells(r: SageRow) -> list[str]:
    s = r.summary
    return [r.task, r.model, _mean(s), str(s.success), str(s.failure), str(s.n), str(r.failed), _trajectory(s)]


def sage_markdown(rows: list[SageRow], *, heading: str = "##") -> str:
    from esc_bench.analysis.tables import markdown_table

    if not rows:
        return ""
    note = (f"Final emotion 0–100 (start {rules.START_EMOTION}); success: final ≥ {rules.SUCCESS_AT}, "
            f"failure: final < {rules.FAILURE_BELOW}; trajectory: mean emotion at each seeker turn, "
            "a dialogue that ended keeps its final emotion.")
    table = markdown_table(HEADER, [row_cells(r) for r in rows], ["l", "l", "r", "r", "r", "r", "r", "l"])
    return f"{heading} Sentient agent (SAGE)\n\n{note}\n\n{table}\n"


def render_sage(rows: list[SageRow], console: Console) -> None:
    from rich.table import Table

    if not rows:
        return
    table = Table(title="sentient agent (SAGE): final emotion 0–100", title_justify="left")
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="right" if 2 <= i <= 6 else "left")
    for r in rows:
        table.add_row(*row_cells(r))
    console.print(table)
