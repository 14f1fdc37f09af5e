"""A protocol's own report section, for specs with a `title` (the sentient agent's, say): per task
and model, each metric's mean with its 95% CI, the outcome counts, n (dialogues with a score),
failed (those without), and the mean per seeker turn of the spec's trajectory value; in HTML,
one trajectory chart per task (each model's mean with a 95% band, every dialogue's curve).

Everything comes from the leaderboard (entries and `specs`) and, for the charts and the dialogue
browser, the dialogues' per-turn state: no protocol is known here by name.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from esc_bench.analysis.markdown import markdown_table, md_text
from esc_bench.analysis.tables import by_task, native_digits
from esc_bench.records import Leaderboard, LeaderboardEntry, MetricSpec, ProtocolSpec, Turn

if TYPE_CHECKING:
    from rich.console import Console

    from esc_bench.analysis.report import Report


def sections(board: Leaderboard) -> list[tuple[ProtocolSpec, list[LeaderboardEntry]]]:
    """(spec, entries) per section title, in board order; tasks whose spec has no title have none."""
    out: dict[str, tuple[ProtocolSpec, list[LeaderboardEntry]]] = {}
    for task, entries in by_task(board).items():
        spec = board.spec(task)
        if spec.title:
            out.setdefault(spec.title, (spec, []))[1].extend(entries)
    return list(out.values())


def header(spec: ProtocolSpec) -> list[str]:
    return ["task", "model", *(f"{m.display} [95% CI]" for m in spec.metrics), *spec.outcomes, "n", "failed",
            *(["mean trajectory per turn"] if spec.trajectory else [])]


def _mean(entry: LeaderboardEntry, metric: MetricSpec) -> str:
    ds = entry.scores.get(metric.name)
    if ds is None or ds.mean is None:
        return "–"
    k = native_digits(metric)
    if ds.ci95 is None:
        return f"{ds.mean:.{k}f}"
    return f"{ds.mean:.{k}f} [{ds.ci95[0]:.{k}f}, {ds.ci95[1]:.{k}f}]"


def row_cells(entry: LeaderboardEntry, spec: ProtocolSpec) -> list[str]:
    first = entry.scores.get(spec.metrics[0].name)
    n = first.n if first is not None else 0
    cells = [entry.task, entry.model, *(_mean(entry, m) for m in spec.metrics),
             *(str(entry.outcomes.get(o, 0)) for o in spec.outcomes), str(n), str(entry.n_dialogues - n)]
    if spec.trajectory:
        k = 2 if spec.trajectory.high - spec.trajectory.low <= 10 else 0
        cells.append(" ".join(f"{v:.{k}f}" for v in entry.trajectory))
    return cells


def _aligns(spec: ProtocolSpec) -> list[str]:
    return ["l", "l", *["r"] * (len(spec.metrics) + len(spec.outcomes) + 2), *(["l"] if spec.trajectory else [])]


def sections_markdown(board: Leaderboard, *, heading: str = "##") -> str:
    parts = []
    for spec, entries in sections(board):
        table = markdown_table(header(spec), [row_cells(e, spec) for e in entries], _aligns(spec))
        note = f"{md_text(spec.note)}\n\n" if spec.note else ""
        parts.append(f"{heading} {md_text(spec.title or '')}\n\n{note}{table}\n")
    return "\n".join(parts)


def render_sections(board: Leaderboard, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    for spec, entries in sections(board):
        title = spec.title or ""
        m = spec.metrics[0]
        table = Table(title=Text(f"{title[:1].lower()}{title[1:]}: {m.display} {m.low:g}–{m.high:g}"),
                      title_justify="left")
        for h, a in zip(header(spec), _aligns(spec)):
            table.add_column(Text(h), justify="right" if a == "r" else "left")
        for e in entries:
            table.add_row(*(Text(c) for c in row_cells(e, spec)))  # names are shown as written, never as markup
        console.print(table)


def turn_state_html(turn: Turn, spec: ProtocolSpec) -> str:
    """A seeker turn's recorded state beside its line in the dialogue browser: the spec's trajectory
    value, its change and its note (empty without a trajectory or state)."""
    traj, st = spec.trajectory, turn.state
    if traj is None or not st or st.get(traj.key) is None:
        return ""
    change = st.get(traj.change) if traj.change else None
    moved = f" ({change:+g})" if isinstance(change, (int, float)) else ""
    text = st.get(traj.note) if traj.note else None
    note = f" — {escape(str(text))}" if text else ""
    return f'<div class="meta">{escape(traj.key)} {escape(str(st[traj.key]))}{moved}{note}</div>'


def trajectory_svg(
    task: str, spec: ProtocolSpec, curves: dict[str, list[list[float]]], models: list[str] | None = None
) -> str:
    """The trajectory value per seeker turn for one task: each model's mean (a dialogue that ended
    keeps its last value) with a 95% band (mean ± 1.96 standard errors), and every dialogue's curve.
    Models in the report's order `models`, each in its colour of every other chart."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from esc_bench.analysis.charts import _inline_svg, _label, _rc, model_colors

    traj = spec.trajectory
    assert traj is not None
    with _rc():
        fig, ax = plt.subplots(figsize=(7.0, 3.6))
        order = list(dict.fromkeys([*(m for m in models or [] if m in curves), *sorted(curves)]))
        colors = model_colors(list(dict.fromkeys([*(models or []), *order])))
        for model in order:
            trajs, color = curves[model], colors[model]
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
        for j, (label, y) in enumerate(traj.marks.items()):
            ax.axhline(y, color=("#2a7", "#c33", "#888")[min(j, 2)], linestyle=":", linewidth=1)
            ax.annotate(_label(label), (1.0, y), xycoords=("axes fraction", "data"), fontsize=7, color="#5a6270",
                        xytext=(2, 0), textcoords="offset points", va="center")
        pad = (traj.high - traj.low) * 0.02
        ax.set_ylim(traj.low - pad, traj.high + pad)
        ax.set_xlabel("seeker turn (0 = the first)")
        ax.set_ylabel(_label(traj.key))
        ax.set_title(_label(f"{task}: {traj.key} trajectories"))
        ax.legend(loc="lower left", fontsize=8)
        svg = _inline_svg(fig)
        plt.close(fig)
    return svg


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "protocol"


def sections_html(report: Report) -> str:
    """The report page's protocol sections: the table, then one trajectory chart per task."""
    from esc_bench.analysis.leaderboard import state_trajectory

    parts = []
    for spec, entries in sections(report.board):
        anchor = _slug(entries[0].protocol or spec.title or "")
        head = "".join(f"<th>{escape(h)}</th>" for h in header(spec))
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row_cells(e, spec)) + "</tr>"
                       for e in entries)
        parts += [f'<h2 id="{escape(anchor)}">{escape(spec.title or "")}</h2>',
                  *([f'<p class="meta">{escape(spec.note)}</p>'] if spec.note else []),
                  f'<table class="board"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
        if spec.trajectory is None:
            continue
        tasks = set(e.task for e in entries)
        by_task_curves: dict[str, dict[str, list[list[float]]]] = {}
        for d in report.dialogues:
            if d.task in tasks and d.status == "ok":
                curve = state_trajectory(d, spec.trajectory.key)
                by_task_curves.setdefault(d.task, {}).setdefault(d.model, []).append(curve)
        for task, curves in by_task_curves.items():
            parts.append(f'<figure class="chart">{trajectory_svg(task, spec, curves, report.models)}</figure>')
    return "\n".join(parts)

