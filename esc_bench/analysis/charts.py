"""matplotlib charts rendered to inline SVG (text stays text; ids made unique per chart)."""

from __future__ import annotations

import io
import itertools
import re
from typing import TYPE_CHECKING, cast

from esc_bench.analysis.tables import column_score
from esc_bench.dimensions import SCALE_100
from esc_bench.records import ESC_EVAL_SPEC, LeaderboardEntry, ProtocolSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.projections.polar import PolarAxes

_counter = itertools.count(1)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _label(text: str) -> str:
    """A label matplotlib shows literally (no mathtext)."""
    return text.replace("$", r"\$")


def _inline_svg(fig: Figure) -> str:
    """The figure as an <svg> element for inlining: no XML prolog, ids prefixed to stay unique."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    svg = _METADATA.sub("", svg)
    prefix = f"c{next(_counter)}-"
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
    return svg


def _rc():
    import matplotlib

    return matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "esc-bench", "font.size": 9})


def _values(e: LeaderboardEntry, cols: list[str], factor: float) -> tuple[list[float], list[float], list[float]]:
    means, lo, hi = [], [], []
    for col in cols:
        ds = column_score(e, col)
        m = ds.mean if ds is not None and ds.mean is not None else float("nan")
        means.append(m * factor)
        if ds is not None and ds.ci95 is not None and ds.mean is not None:
            lo.append(max(0.0, (ds.mean - ds.ci95[0]) * factor))
            hi.append(max(0.0, (ds.ci95[1] - ds.mean) * factor))
        else:
            lo.append(0.0)
            hi.append(0.0)
    return means, lo, hi


LEGEND_FONT = 9.5  # points: the legend must read at the size the page shows the chart
LEGEND_CHARS = 40  # a longer model name is shortened in the middle (its start and its version end stay)


def model_colors(models: list[str]) -> dict[str, str]:
    """One colour per model, by its place in the report's model order: the same in every chart."""
    palette = "tab10" if len(models) <= 10 else "tab20"
    import matplotlib

    cmap = matplotlib.colormaps[palette]
    return {m: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, m in enumerate(models)}


def _styles(entries: list[LeaderboardEntry], models: list[str] | None) -> dict[str, tuple[str, str]]:
    """model -> (colour, line style): past 20 models colours repeat, so the line style changes."""
    order = list(dict.fromkeys([*(models or []), *(e.model for e in entries)]))
    colors = model_colors(order)
    dashes = ["-", "--", ":", "-."]
    return {m: (colors[m], dashes[(i // 20) % len(dashes)]) for i, m in enumerate(order)}


def legend_label(name: str) -> str:
    """A model's name for a legend: at most LEGEND_CHARS characters, cut in the middle."""
    if len(name) > LEGEND_CHARS:
        half = (LEGEND_CHARS - 1) // 2
        name = f"{name[:half]}…{name[-half:]}"
    return _label(name)


def _legend_below(fig: Figure, ax: Axes, names: list[str]) -> None:
    """The legend under the axes and everything drawn around them (tick labels), in as many
    columns as the figure's width holds at LEGEND_FONT; never on top of the chart."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    longest = max(len(legend_label(n)) for n in names)
    per_col = longest * LEGEND_FONT * 0.6 + 2.6 * LEGEND_FONT  # text + handle and spacing, in points
    ncol = max(1, min(len(handles), int(fig.get_figwidth() * 72 // per_col)))
    around = ax.get_tightbbox()
    below = 0.0 if around is None else fig.transFigure.inverted().transform_bbox(around).y0
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, below - 0.02), ncol=ncol,
               fontsize=LEGEND_FONT, frameon=False, handlelength=1.8, columnspacing=1.4)


def radar_figure(entries: list[LeaderboardEntry], title: str, scale: str = "4",
                 models: list[str] | None = None, spec: ProtocolSpec = ESC_EVAL_SPEC) -> Figure:
    """The spec's metrics (ESC-Eval's 7 dimensions) on a radar, one polygon per model (colours by
    place in `models`), the legend below it."""
    import math

    from matplotlib.figure import Figure

    from esc_bench.analysis.tables import scale_factor

    factor, _ = scale_factor(spec.metrics[0], scale)
    top = spec.metrics[0].high * factor
    dims = spec.metric_names
    angles = [2 * math.pi * i / len(dims) for i in range(len(dims))]
    styles = _styles(entries, models)
    fig = Figure(figsize=(5.6, 4.6))
    ax = cast("PolarAxes", fig.add_subplot(projection="polar"))
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    ax.set_xticks(angles)
    ax.set_xticklabels(dims)
    ax.set_ylim(0, top)
    ax.set_yticks([top * k / 4 for k in range(1, 5)])
    for e in entries:
        means, _, _ = _values(e, dims, factor)
        vals = [0.0 if v != v else v for v in means]
        color, dash = styles[e.model]
        ax.plot([*angles, angles[0]], [*vals, vals[0]], linewidth=1.6, linestyle=dash, color=color,
                label=legend_label(e.model))
        ax.fill([*angles, angles[0]], [*vals, vals[0]], alpha=0.06, color=color)
    ax.set_title(_label(title), pad=18)
    _legend_below(fig, ax, [e.model for e in entries])
    return fig


def radar_svg(entries: list[LeaderboardEntry], title: str, scale: str = "4", models: list[str] | None = None,
              spec: ProtocolSpec = ESC_EVAL_SPEC) -> str:
    """radar_figure as inline SVG."""
    with _rc():
        return _inline_svg(radar_figure(entries, title, scale, models, spec))


def bars_figure(entries: list[LeaderboardEntry], title: str, scale: str = "4",
                models: list[str] | None = None, spec: ProtocolSpec = ESC_EVAL_SPEC) -> Figure:
    """Grouped bars per metric (and the average), one bar per model, 95% CI whiskers (colours
    by place in `models`), the legend below."""
    from matplotlib.figure import Figure

    from esc_bench.analysis.tables import scale_factor

    factor, _ = scale_factor(spec.metrics[0], scale)
    top = spec.metrics[0].high * factor
    cols = spec.columns
    k = max(1, len(entries))
    width = 0.8 / k
    styles = _styles(entries, models)
    fig = Figure(figsize=(max(7.0, 1.0 + 0.9 * len(cols) * min(k, 4) / 2), 3.6))
    ax = fig.add_subplot()
    for i, e in enumerate(entries):
        means, lo, hi = _values(e, cols, factor)
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(cols))]
        color, dash = styles[e.model]
        ax.bar(xs, [0.0 if v != v else v for v in means], width=width * 0.95, label=legend_label(e.model),
               color=color, linestyle=dash, edgecolor=color if dash == "-" else "#1d2330",
               yerr=[lo, hi], capsize=2, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=20)
    ax.set_ylim(0, top)
    ax.set_ylabel(f"mean (0–{top:g})")
    ax.set_title(_label(title))
    ax.spines[["top", "right"]].set_visible(False)
    _legend_below(fig, ax, [e.model for e in entries])
    return fig


def bars_svg(entries: list[LeaderboardEntry], title: str, scale: str = "4", models: list[str] | None = None,
             spec: ProtocolSpec = ESC_EVAL_SPEC) -> str:
    """bars_figure as inline SVG."""
    with _rc():
        return _inline_svg(bars_figure(entries, title, scale, models, spec))


def diff_ci_svg(rows: list, title: str, label_a: str, label_b: str, scale: str = "4") -> str:
    """A forest plot of B − A per dimension (rows: DimComparison): the mean difference with its
    95% CI, a line at 0; green where B is higher, red where A is, grey where the CI spans 0."""
    from matplotlib.figure import Figure

    factor = 1.0 if scale == "4" else float(SCALE_100)
    shown = [r for r in rows if r.diff is not None]
    with _rc():
        fig = Figure(figsize=(6.4, 0.42 * max(1, len(shown)) + 1.2))
        ax = fig.add_subplot()
        for y, r in enumerate(reversed(shown)):
            d = r.diff * factor
            lo, hi = (r.ci95[0] * factor, r.ci95[1] * factor) if r.ci95 is not None else (d, d)
            color = "#8a919c"
            if r.ci95 is not None and lo > 0:
                color = "#0a7a32"
            elif r.ci95 is not None and hi < 0:
                color = "#b3261e"
            ax.errorbar([d], [y], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=3,
                        markersize=5, linewidth=1.4)
        ax.axvline(0.0, color="#1d2330", linewidth=0.8)
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([r.dimension for r in reversed(shown)])
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.set_xlabel(_label(f"B − A ({label_b} − {label_a}), 95% CI; right of 0: B higher"))
        ax.set_title(_label(title))
        ax.spines[["top", "right"]].set_visible(False)
        return _inline_svg(fig)
