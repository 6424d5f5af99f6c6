"""PNG figures for comparisons: per-query differences against a baseline, and metric bars.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas, so nothing
here touches pyplot's global state or needs a display. Every function writes one PNG (creating
its folder) and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from synthrank.evaluate.compare import (
    ComparisonTable,
    column_labels,
    compare_results,
    dataset_split_of,
    metric_value,
    normalize_metric_name,
    system_names,
)

WIN_COLOR = "#2e7d32"
LOSS_COLOR = "#c62828"
DEFAULT_METRIC = "ndcg@10"

#: Absolute per-query difference at or below which a query counts as a tie.
TIE_TOLERANCE = 1e-9

#: Above this many queries a subplot draws filled steps instead of one bar per query (same look,
#: much faster for thousands of queries).
MAX_SEPARATE_BARS = 100

DPI = 100


def count_wins_losses_ties(differences: np.ndarray, tolerance: float = TIE_TOLERANCE) -> tuple[int, int, int]:
    """``(wins, losses, ties)`` of per-query differences ``system - baseline``, ``[Q]``."""
    differences = np.asarray(differences, dtype=np.float64)
    wins = int(np.count_nonzero(differences > tolerance))
    losses = int(np.count_nonzero(differences < -tolerance))
    return wins, losses, differences.size - wins - losses


def plot_per_query_differences(
    source: ComparisonTable | Sequence[dict],
    baseline: str | None,
    metric: str | None,
    out_png: str | Path,
) -> Path:
    """Draw sorted per-query differences (system − baseline) for every (dataset, system) pair.

    ``source`` is a :class:`ComparisonTable` or a list of results dicts. ``baseline`` and
    ``metric`` default (None) to the table's, or to the first result's system and ``ndcg@10``;
    when they differ from a table's, the pairing is recomputed from ``table.results``.

    The grid has one row per dataset split the baseline was evaluated on and one column per
    other system; each subplot shows that system's differences sorted from best to worst
    (wins green, losses red) and its title counts wins, losses and ties. Raises ``ValueError``
    when there is nothing to plot (no system besides the baseline shares a dataset with it).
    """
    table = _table_for(source, baseline, metric)
    systems = [s for s in table.systems if s != table.baseline]
    columns = [c for c in table.columns if any(_paired(table, s, c) is not None for s in systems)]
    if not columns:
        raise ValueError(f"nothing to plot: no system shares a dataset with the baseline {table.baseline!r}")
    labels = column_labels(table.columns)

    figure = Figure(figsize=(4.8 * len(systems), 3.4 * len(columns)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(columns), len(systems), squeeze=False)
    for row, column in enumerate(columns):
        for col, system in enumerate(systems):
            ax = axes[row][col]
            paired = _paired(table, system, column)
            if paired is None:
                ax.set_axis_off()
                ax.set_title(f"{labels[column]}: no result for {system}", fontsize=9)
                continue
            _draw_sorted_differences(ax, paired.differences)
            wins, losses, ties = count_wins_losses_ties(paired.differences)
            ax.set_title(
                f"{labels[column]}: {system} − {table.baseline}\n"
                f"{wins} wins / {losses} losses / {ties} ties (mean Δ {paired.differences.mean():+.3f})",
                fontsize=9,
            )
            ax.set_xlabel(f"queries, sorted (n={len(paired.query_ids)})", fontsize=8)
            ax.set_ylabel(f"Δ {table.metric}", fontsize=8)
    return _save(figure, out_png)


def plot_metric_bars(source: ComparisonTable | Sequence[dict], metric: str | None, out_png: str | Path) -> Path:
    """Grouped bar chart of ``metric``: one group per dataset split, one bar per system.

    ``source`` is a :class:`ComparisonTable` (its metric by default) or a list of results dicts
    (``ndcg@10`` by default). Values are the reported aggregate scores (see
    :func:`~synthrank.evaluate.compare.metric_value`); a system without a result for a dataset
    has no bar there. No significance testing is done, so any set of results can be drawn.
    """
    if isinstance(source, ComparisonTable):
        results, metric = source.results, metric or source.metric
    else:
        results, metric = list(source), metric or DEFAULT_METRIC
    metric = normalize_metric_name(metric)
    names = system_names(results)
    systems = list(dict.fromkeys(source.systems if isinstance(source, ComparisonTable) else names))
    columns = list(dict.fromkeys(dataset_split_of(r) for r in results))
    values = {(name, dataset_split_of(r)): metric_value(r, metric) for name, r in zip(names, results, strict=True)}
    labels = column_labels(columns)

    figure = Figure(figsize=(max(5.0, 1.2 + len(columns) * (0.5 + 0.35 * len(systems))), 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    width = 0.8 / len(systems)
    positions = np.arange(len(columns), dtype=np.float64)
    show_values = len(columns) * len(systems) <= 40
    for index, system in enumerate(systems):
        offset = (index - (len(systems) - 1) / 2) * width
        present = [i for i, c in enumerate(columns) if (system, c) in values]
        xs = [positions[i] + offset for i in present]
        ys = [values[(system, columns[i])] for i in present]
        bars = ax.bar(xs, ys, width=width, label=system)
        if show_values:
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    crowded = len(columns) > 4
    tick_labels = [labels[c] for c in columns]
    ax.set_xticks(positions, tick_labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per dataset")
    ax.legend(fontsize=8)
    ax.margins(y=0.12)
    return _save(figure, out_png)


def _table_for(source: ComparisonTable | Sequence[dict], baseline: str | None, metric: str | None) -> ComparisonTable:
    """The given table when it already matches ``baseline``/``metric``, else a fresh pairing."""
    if isinstance(source, ComparisonTable):
        same_metric = metric is None or normalize_metric_name(metric) == source.metric
        same_baseline = baseline is None or baseline == source.baseline
        if same_metric and same_baseline:
            return source
        return compare_results(source.results, metric=metric or source.metric, baseline=baseline, test="t")
    return compare_results(list(source), metric=metric or DEFAULT_METRIC, baseline=baseline, test="t")


def _paired(table: ComparisonTable, system: str, column):
    cell = table.cells.get((system, column))
    return None if cell is None else cell.paired


def _draw_sorted_differences(ax, differences: np.ndarray) -> None:
    """Bars of ``differences`` sorted descending, wins green and losses red, on a zero line."""
    ordered = np.sort(differences)[::-1]
    gains = np.clip(ordered, 0.0, None)
    drops = np.clip(ordered, None, 0.0)
    if ordered.size <= MAX_SEPARATE_BARS:
        xs = np.arange(ordered.size)
        ax.bar(xs, gains, width=0.8, color=WIN_COLOR, linewidth=0)
        ax.bar(xs, drops, width=0.8, color=LOSS_COLOR, linewidth=0)
        ax.set_xlim(-0.5, ordered.size - 0.5)
    else:
        edges = np.arange(ordered.size + 1) - 0.5
        ax.stairs(gains, edges, fill=True, color=WIN_COLOR, baseline=0.0)
        ax.stairs(drops, edges, fill=True, color=LOSS_COLOR, baseline=0.0)
        ax.set_xlim(edges[0], edges[-1])
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.tick_params(labelsize=7)


def _save(figure: Figure, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=DPI, format="png")
    return out_png
