"""The digest chart: flagged items per day, stacked by severity, as PNG bytes.

Matplotlib's object API on the Agg canvas (no pyplot): no global figure state, safe to call from
a worker thread. Colours are from the Okabe-Ito palette, which stays distinguishable with the
common colour-vision deficiencies; hatching tells the severities apart in greyscale too.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.core.digest.format import fmt_int, fmt_short_day, severity_label
from bot.core.i18n import t

# Okabe-Ito: sky blue, orange, vermillion; darker = more severe.
STYLE = {
    "REVIEW": ("#56B4E9", ""),
    "QUARANTINE": ("#E69F00", "//"),
    "CRITICAL": ("#D55E00", "xx"),
}
INK = "#222222"


def render_chart(
    daily: Sequence[tuple[date, Mapping[str, int]]],
    locale: str,
    timezone: str,
    *,
    day_start: str = "00:00",
    current_bars: int = 1,
) -> bytes:
    """A PNG (1000×500 px) of `daily` = [(local day, {severity: count})], oldest first, with
    localised title, axis labels, day names and a legend; totals are written above the bars.
    Days run from `day_start` local time; the last `current_bars` (the digest's own period)
    have bold labels, the others are there for context."""
    figure = Figure(figsize=(10, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(daily)))
    bottoms = [0] * len(daily)
    for severity, (colour, hatch) in STYLE.items():
        heights = [counts.get(severity, 0) for _day, counts in daily]
        axes.bar(
            positions,
            heights,
            bottom=bottoms,
            color=colour,
            hatch=hatch,
            edgecolor="white",
            linewidth=0.8,
            width=0.7,
            label=severity_label(severity, locale),
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]

    top = max(bottoms, default=0)
    for x, total in zip(positions, bottoms, strict=True):
        if total:
            axes.annotate(
                fmt_int(total, locale),
                (x, total),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=10,
                color=INK,
            )
    if not top:
        axes.text(
            0.5,
            0.5,
            t("digest.chart.empty", locale),
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=13,
            color="#666666",
        )

    axes.set_xticks(positions, [fmt_short_day(day, locale) for day, _c in daily])
    for label in axes.get_xticklabels()[len(daily) - current_bars :]:
        label.set_fontweight("bold")
    axes.set_ylim(0, max(top * 1.15, 4))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(t("digest.chart.title", locale), fontsize=14, color=INK, loc="left")
    axes.set_ylabel(t("digest.chart.y_label", locale), fontsize=11, color=INK)
    axes.set_xlabel(
        t("digest.chart.x_label", locale, tz=timezone, start=day_start), fontsize=11, color=INK
    )
    axes.tick_params(colors=INK, labelsize=10)
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.legend(loc="outside upper right", frameon=False, ncols=3, fontsize=10)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    return buffer.getvalue()
