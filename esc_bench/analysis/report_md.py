"""The report as markdown: leaderboard tables per task, then the breakdowns."""

from __future__ import annotations

from esc_bench.analysis.markdown import md_code, md_text
from esc_bench.analysis.protocol_section import sections_markdown
from esc_bench.analysis.report import Report
from esc_bench.analysis.tables import breakdown_markdown, leaderboard_markdown


def report_markdown(report: Report, scale: str = "4") -> str:
    runs = ", ".join(md_code(r.run_id) for r in report.runs)
    lines = [
        "# esc-bench report",
        "",
        f"Runs: {runs}. Generated {report.generated}. Bootstrap 95% CIs over dialogues (seed {report.seed}).",
        "",
    ]
    lines += [f"> {md_text(note)}" for note in report.notes]
    if report.notes:
        lines.append("")
    lines += ["## Leaderboard", "", leaderboard_markdown(report.board, scale)]
    lines += [sections_markdown(report.board)]
    if report.breakdowns:
        lines += ["## Breakdowns", ""]
        for facet, rows in report.breakdowns.items():
            lines += [breakdown_markdown(facet, rows, scale, spec=report.breakdown_spec)]
    return "\n".join(lines).rstrip() + "\n"
