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
from esc_bench.records import DialogueRecord, Turn

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.analysis.report import Report


@dataclass(frozen=True)
class SageRow:
    task: str
    model: str
    summary: rules.SageSummary
    failed: int  # dialogues that failed (no final emotion)


def turn_state_html(turn: Turn) -> str:
    """A seeker turn's recorded state beside its line in the dialogue browser: emotion, its change
    and the inner thoughts (empty for turns without state)."""
    from html import escape

    st = turn.state
    if not st or "emotion" not in st:
        return ""
    change = st.get("change")
    moved = "" if change is None else f" ({change:+d})"
    thoughts = f" — {escape(str(st['thoughts']))}" if st.get("thoughts") else ""
    return f'<div class="meta">emotion {escape(str(st["emotion"]))}{moved}{thoughts}</div>'


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
    from esc_bench.analysis.markdown import markdown_table

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


def trajectory_svg(task: str, curves: dict[str, list[list[int]]]) -> str:
    """Emotion per seeker turn for one task: each model's mean (a dialogue that ended keeps its
    final emotion) with a 95% band (mean ± 1.96 standard errors), and every dialogue's own curve."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from esc_bench.analysis.charts import _inline_svg, _label, _rc

    with _rc():
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (model, trajs) in enumerate(sorted(curves.items())):
            color = colors[i % len(colors)]
            rows = [t for t in trajs if t]
            if not rows:
                continue
            for t in rows:
                ax.plot(range(len(t)), t, color=color, alpha=0.15, linewidth=0.8)
            length = max(len(t) for t in rows)
            filled = [[t[j] if j < len(t) else t[-1] for j in range(length)] for t in rows]
            means = [sum(col) / len(col) for col in zip(*filled)]
            half = []
            for j, col in enumerate(zip(*filled)):
                n = len(col)
                var = sum((v - means[j]) ** 2 for v in col) / (n - 1) if n > 1 else 0.0
                half.append(1.96 * math.sqrt(var / n) if n > 1 else 0.0)
            xs = list(range(length))
            ax.fill_between(xs, [m - h for m, h in zip(means, half)], [m + h for m, h in zip(means, half)],
                            color=color, alpha=0.2, linewidth=0)
            ax.plot(xs, means, color=color, linewidth=2, label=_label(f"{model} (n={len(rows)})"))
        ax.axhline(rules.SUCCESS_AT, color="#2a7", linestyle=":", linewidth=1)
        ax.axhline(rules.FAILURE_BELOW, color="#c33", linestyle=":", linewidth=1)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("seeker turn (0 = opening line)")
        ax.set_ylabel("emotion")
        ax.set_title(_label(f"{task}: emotion trajectories"))
        ax.legend(loc="lower left", fontsize=8)
        svg = _inline_svg(fig)
        plt.close(fig)
    return svg


def sage_html(report: Report) -> str:
    """The report page's sentient-agent section: the table, then one trajectory chart per task."""
    from html import escape

    protocols = report_protocols(report)
    rows = sage_rows(report.dialogues, protocols, seed=report.seed)
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row_cells(r)) + "</tr>" for r in rows)
    parts = ['<h2 id="sage">Sentient agent (SAGE)</h2>',
             f'<table class="board"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
    by_task: dict[str, dict[str, list[list[int]]]] = {}
    for d in report.dialogues:
        if protocols.get(d.task) == NAME and d.status == "ok":
            by_task.setdefault(d.task, {}).setdefault(d.model, []).append(trajectory(d))
    for task, curves in by_task.items():
        parts.append(f'<figure class="chart">{trajectory_svg(task, curves)}</figure>')
    return "\n".join(parts)
