"""matplotlib charts rendered to inline SVG (text stays text; ids made unique per chart)."""

from __future__ import annotations

import io
import itertools
import re
from typing import TYPE_CHECKING, cast

from esc_bench.analysis.tables import column_score
from esc_bench.dimensions import DIMENSION_NAMES, SCALE_100
from esc_bench.records import LeaderboardEntry

if TYPE_CHECKING:
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


def model_colors(models: list[str]) -> dict[str, str]:
    """One colour per model, by its place in the report's model order: the same in every chart."""
    palette = "tab10" if len(models) <= 10 else "tab20"
    import matplotlib

    cmap = matplotlib.colormaps[palette]
    return {m: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, m in enumerate(models)}


def _colors(entries: list[LeaderboardEntry], models: list[str] | None) -> dict[str, str]:
    return model_colors(list(dict.fromkeys([*(models or []), *(e.model for e in entries)])))


def radar_svg(entries: list[LeaderboardEntry], title: str, scale: str = "4", models: list[str] | None = None) -> str:
    """The 7 dimensions on a radar, one polygon per model (colours by place in `models`)."""
    import math

    from matplotlib.figure import Figure

    factor = 1.0 if scale == "4" else float(SCALE_100)
    top = 4 * factor
    dims = list(DIMENSION_NAMES)
    angles = [2 * math.pi * i / len(dims) for i in range(len(dims))]
    colors = _colors(entries, models)
    with _rc():
        fig = Figure(figsize=(4.6, 4.0))
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
            c = colors[e.model]
            ax.plot([*angles, angles[0]], [*vals, vals[0]], linewidth=1.5, label=_label(e.model), color=c)
            ax.fill([*angles, angles[0]], [*vals, vals[0]], alpha=0.08, color=c)
        ax.set_title(_label(title), pad=18)
        if entries:
            ax.legend(loc="upper left", bbox_to_anchor=(1.05, 1.0), fontsize=8, frameon=False)
        return _inline_svg(fig)


def bars_svg(entries: list[LeaderboardEntry], title: str, scale: str = "4", models: list[str] | None = None) -> str:
    """Grouped bars per dimension (and the average), one bar per model, 95% CI whiskers (colours
    by place in `models`)."""
    from matplotlib.figure import Figure

    factor = 1.0 if scale == "4" else float(SCALE_100)
    cols = [*DIMENSION_NAMES, "average"]
    k = max(1, len(entries))
    width = 0.8 / k
    colors = _colors(entries, models)
    with _rc():
        fig = Figure(figsize=(max(6.5, 1.0 + 0.9 * len(cols) * min(k, 4) / 2), 3.6))
        ax = fig.add_subplot()
        for i, e in enumerate(entries):
            means, lo, hi = _values(e, cols, factor)
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(cols))]
            ax.bar(xs, [0.0 if v != v else v for v in means], width=width * 0.95, label=_label(e.model),
                   color=colors[e.model], yerr=[lo, hi], capsize=2, error_kw={"elinewidth": 0.8})
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels(cols, rotation=20)
        ax.set_ylim(0, 4 * factor)
        ax.set_ylabel(f"mean (0–{4 * factor:g})")
        ax.set_title(_label(title))
        ax.spines[["top", "right"]].set_visible(False)
        if entries:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        return _inline_svg(fig)


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
