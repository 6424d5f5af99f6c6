"""Compare systems across datasets from their ``results.json`` files, with paired significance.

A *result* is one parsed ``results.json`` (one system on one dataset split): aggregate
``metrics``, ``per_query`` scores, the system's display name ``model``, ``dataset`` and
``split``. :func:`compare_results` arranges results as a table of systems (rows) by dataset
splits (columns) and tests every system against a baseline system, per dataset, on the
queries both were evaluated on. ``synthrank compare`` (:mod:`synthrank.cli.evaluate`) runs it on results files.

Errors: a file that is not a results.json raises :class:`~synthrank.data.errors.DataFormatError`
(``file:line: field: what is wrong``); results that cannot be compared with each other (no
shared queries, unknown baseline, two systems that cannot be told apart, a missing metric)
raise :class:`ComparisonError`, whose message names the files involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from synthrank.evaluate.results_files import (  # noqa: F401 - re-exported for callers of compare
    REQUIRED_RESULT_KEYS,
    RESULTS_PATH_KEY,
    ComparisonError,
    PairedScores,
    describe_result,
    load_results,
    metric_value,
    normalize_metric_name,
    pair_per_query_scores,
    per_query_scores,
)
from synthrank.evaluate.significance import paired_t_test, randomization_test

TestChoice = Literal["both", "t", "randomization"]
TEST_CHOICES: tuple[str, ...] = ("both", "t", "randomization")
TEST_DESCRIPTIONS = {
    "t": "a paired t-test",
    "randomization": "a paired randomization test with {n_resamples} resamples",
    "both": "both a paired t-test and a paired randomization test with {n_resamples} resamples",
}
BETTER_MARK = "▲"
WORSE_MARK = "▼"
MISSING_CELL = "–"


# --------------------------------------------------------------------------------------------
# Systems and columns


@dataclass(frozen=True)
class DatasetSplit:
    """A table column: one dataset split."""

    dataset: str
    split: str


def dataset_split_of(result: dict) -> DatasetSplit:
    return DatasetSplit(result["dataset"], result["split"])


def column_labels(columns: Sequence[DatasetSplit]) -> dict[DatasetSplit, str]:
    """Display label per column: the dataset name, plus ``(split)`` when the columns mix splits."""
    mixed_splits = len({c.split for c in columns}) > 1
    return {c: f"{c.dataset} ({c.split})" if mixed_splits else c.dataset for c in columns}


def system_names(results: Sequence[dict]) -> list[str]:
    """The row name of each result: its ``model`` display name, made unique where needed.

    A display name is ambiguous when two results of the same dataset split carry it. All
    results with an ambiguous name get a label from their file path: the path components that
    differ among those results, leaving out the dataset's own folder name, e.g.
    ``runs/base/scifact/results.json`` and ``runs/tuned/scifact/results.json`` both named
    ``model`` become ``model (base)`` and ``model (tuned)`` on every dataset. With the common
    layout ``<system>/results.json`` the label is the parent folder name.

    Raises :class:`ComparisonError` naming the files when two results of one dataset split
    still share a name (e.g. results built in memory, without a file path).
    """
    names = [result["model"] for result in results]
    for name in _names_shared_within_a_split(results, names):
        indices = [i for i, candidate in enumerate(names) if candidate == name]
        labels = _path_labels([results[i] for i in indices])
        for i, label in zip(indices, labels, strict=True):
            names[i] = f"{name} ({label})" if label else name
    seen: dict[tuple[str, DatasetSplit], int] = {}
    for i, (name, result) in enumerate(zip(names, results, strict=True)):
        key = (name, dataset_split_of(result))
        if key in seen:
            first = results[seen[key]]
            raise ComparisonError(
                f"two results for {result['dataset']} ({result['split']}) are both system {name!r} and cannot "
                f"be told apart by their paths: {describe_result(first)} and {describe_result(result)}"
            )
        seen[key] = i
    return names


def _names_shared_within_a_split(results: Sequence[dict], names: Sequence[str]) -> list[str]:
    counts: dict[tuple[str, DatasetSplit], int] = {}
    for name, result in zip(names, results, strict=True):
        key = (name, dataset_split_of(result))
        counts[key] = counts.get(key, 0) + 1
    return list(dict.fromkeys(name for (name, _), count in counts.items() if count > 1))


def _path_labels(results: Sequence[dict]) -> list[str]:
    """Per result, the path components (file name without ``.json``) that are not common to all."""
    if any(not result.get(RESULTS_PATH_KEY) for result in results):
        return [""] * len(results)
    parts = [Path(result[RESULTS_PATH_KEY]).with_suffix("").parts for result in results]
    shortest = min(len(p) for p in parts)
    prefix = 0
    while prefix < shortest and len({p[prefix] for p in parts}) == 1:
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and len({p[len(p) - 1 - suffix] for p in parts}) == 1:
        suffix += 1
    labels = []
    for result, components in zip(results, parts, strict=True):
        middle = components[prefix : len(components) - suffix]
        labels.append("/".join(c for c in middle if c != result["dataset"]))
    return labels


def resolve_baseline(baseline: str | None, names: Sequence[str], results: Sequence[dict]) -> str:
    """The baseline's system name: the first result's when ``baseline`` is None.

    ``baseline`` may be a system name as shown in the table or a ``model`` display name that
    only one system has. Raises :class:`ComparisonError` listing the systems otherwise.
    """
    if baseline is None:
        return names[0]
    systems = list(dict.fromkeys(names))
    if baseline in systems:
        return baseline
    named_results = zip(names, results, strict=True)
    by_model = list(dict.fromkeys(name for name, result in named_results if result["model"] == baseline))
    if len(by_model) == 1:
        return by_model[0]
    if by_model:
        raise ComparisonError(f"baseline {baseline!r} is ambiguous: choose one of {', '.join(map(repr, by_model))}")
    raise ComparisonError(f"unknown baseline {baseline!r}: the systems are {', '.join(map(repr, systems))}")


# --------------------------------------------------------------------------------------------
# The comparison table


@dataclass
class Cell:
    """One system on one dataset split.

    ``value`` is the reported aggregate score (see :func:`metric_value`). The remaining fields
    describe the comparison with the baseline and are None for the baseline itself and for
    splits the baseline was not evaluated on: ``mean_difference`` is ``mean(system - baseline)``
    over the ``n_paired`` shared queries; ``p_t`` / ``p_randomization`` are the p-values of the
    tests that were run; ``verdict`` is ``"better"`` or ``"worse"`` when every test run gives
    p < alpha, else None.
    """

    value: float
    n_queries: int
    results_path: str | None
    n_paired: int | None = None
    mean_difference: float | None = None
    p_t: float | None = None
    p_randomization: float | None = None
    verdict: Literal["better", "worse"] | None = None
    paired: PairedScores | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready fields (without the per-query arrays)."""
        return {
            "value": self.value,
            "n_queries": self.n_queries,
            "n_paired": self.n_paired,
            "mean_difference": self.mean_difference,
            "p_t": self.p_t,
            "p_randomization": self.p_randomization,
            "verdict": self.verdict,
            "results_path": self.results_path,
        }


@dataclass
class ComparisonTable:
    """Systems x dataset splits for one metric, tested against a baseline.

    ``systems`` lists row names (baseline first, then in the order results were given);
    ``columns`` lists dataset splits in the order first seen; ``cells[(system, column)]`` exists
    when that system has a result for that split; ``results`` are the inputs, ``notes`` are
    human-readable remarks (partial pairings, settings that differ within a column).
    """

    metric: str
    baseline: str
    alpha: float
    test: str
    n_resamples: int
    systems: list[str]
    columns: list[DatasetSplit]
    cells: dict[tuple[str, DatasetSplit], Cell]
    notes: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list, repr=False)

    def column_label(self, column: DatasetSplit) -> str:
        """The dataset name, plus the split when the table mixes splits."""
        return column_labels(self.columns)[column]

    def mean_value(self, system: str) -> float | None:
        """Mean of the system's values over all columns; None when it lacks a column."""
        values = [self.cells[(system, c)].value for c in self.columns if (system, c) in self.cells]
        if len(values) != len(self.columns):
            return None
        return float(np.mean(values))

    def legend(self) -> str:
        """One sentence saying what the markers mean, naming the test(s) and alpha."""
        tests = TEST_DESCRIPTIONS[self.test].format(n_resamples=self.n_resamples)
        return (
            f"{BETTER_MARK} / {WORSE_MARK}: significantly better / worse than the baseline {self.baseline!r} "
            f"(p < {self.alpha:g} in {tests}, on the queries both systems were evaluated on; "
            f"no correction for multiple comparisons)."
        )

    def render_markdown(self) -> str:
        """A Markdown table: systems as rows, datasets as columns plus ``mean``, values to 3 decimals.

        Cells significantly better/worse than the baseline end with ▲/▼; missing cells show ``–``;
        the mean is shown only for systems evaluated on every column. The legend and notes follow.
        """
        header = ["system", *(self.column_label(c) for c in self.columns), "mean"]
        lines = [
            f"**{self.metric}**",
            "",
            "| " + " | ".join(_escape_cell(h) for h in header) + " |",
            "|---|" + "---:|" * (len(header) - 1),
        ]
        for system in self.systems:
            row_name = f"{system} (baseline)" if system == self.baseline else system
            values = [self._render_cell(system, column) for column in self.columns]
            mean = self.mean_value(system)
            values.append(MISSING_CELL if mean is None else f"{mean:.3f}")
            lines.append("| " + " | ".join([_escape_cell(row_name), *values]) + " |")
        lines += ["", self.legend()]
        if self.notes:
            lines += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(lines) + "\n"

    def _render_cell(self, system: str, column: DatasetSplit) -> str:
        cell = self.cells.get((system, column))
        if cell is None:
            return MISSING_CELL
        mark = {"better": f" {BETTER_MARK}", "worse": f" {WORSE_MARK}"}.get(cell.verdict or "", "")
        return f"{cell.value:.3f}{mark}"

    def to_dict(self) -> dict:
        """JSON-ready form: settings, systems, columns, one entry per cell, means and notes."""
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "alpha": self.alpha,
            "test": self.test,
            "n_resamples": self.n_resamples,
            "systems": list(self.systems),
            "datasets": [
                {"dataset": c.dataset, "split": c.split, "label": self.column_label(c)} for c in self.columns
            ],
            "cells": [
                {"system": system, "dataset": column.dataset, "split": column.split, **cell.to_dict()}
                for (system, column), cell in self.cells.items()
            ],
            "mean": {system: self.mean_value(system) for system in self.systems},
            "legend": self.legend(),
            "notes": list(self.notes),
        }


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


def compare_results(
    results: Sequence[dict],
    metric: str = "ndcg@10",
    baseline: str | None = None,
    alpha: float = 0.05,
    test: TestChoice = "both",
    n_resamples: int = 10000,
    seed: int = 0,
) -> ComparisonTable:
    """Tabulate ``metric`` for every system and dataset split and test each system against a baseline.

    ``results`` are parsed results.json dicts (see :func:`load_results`). ``baseline`` names a
    system (see :func:`resolve_baseline`); None means the system of the first result. On each
    split the baseline was evaluated on, every other system is paired with it on their shared
    queries and tested with ``test``: ``"t"`` (:func:`paired_t_test`), ``"randomization"``
    (:func:`randomization_test` with ``n_resamples`` and ``seed``) or ``"both"``, in which case a
    cell is marked only when both tests give p < ``alpha``.

    Raises ``ValueError`` for a bad ``test``/``alpha``/empty input, and :class:`ComparisonError`
    (naming files) for an unknown baseline, a missing metric, indistinguishable systems or a
    system that shares no query with the baseline.
    """
    if test not in TEST_CHOICES:
        raise ValueError(f"unknown test {test!r}: choose one of {', '.join(TEST_CHOICES)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not results:
        raise ValueError("no results to compare")
    metric = normalize_metric_name(metric)
    names = system_names(results)
    baseline_name = resolve_baseline(baseline, names, results)

    systems = list(dict.fromkeys([baseline_name, *names]))
    columns = list(dict.fromkeys(dataset_split_of(r) for r in results))
    result_of = {(name, dataset_split_of(r)): r for name, r in zip(names, results, strict=True)}
    cells = {
        key: Cell(value=metric_value(r, metric), n_queries=len(r["per_query"]), results_path=r.get(RESULTS_PATH_KEY))
        for key, r in result_of.items()
    }

    notes: list[str] = []
    for column in columns:
        notes += _settings_notes(column, [(n, r) for (n, c), r in result_of.items() if c == column])
        baseline_result = result_of.get((baseline_name, column))
        if baseline_result is None:
            notes.append(f"{column.dataset} ({column.split}): the baseline has no result here; nothing tested.")
            continue
        pairing_notes = []
        for system in systems:
            if system == baseline_name or (system, column) not in result_of:
                continue
            cell = cells[(system, column)]
            paired = pair_per_query_scores(result_of[(system, column)], baseline_result, metric)
            _test_cell(cell, paired, test, alpha, n_resamples, seed)
            pairing_notes.append(_pairing_note(system, paired))
        if pairing_notes:
            paired_list = "; ".join(pairing_notes)
            notes.append(f"{column.dataset} ({column.split}): queries paired with the baseline: {paired_list}.")

    return ComparisonTable(
        metric=metric,
        baseline=baseline_name,
        alpha=alpha,
        test=test,
        n_resamples=n_resamples,
        systems=systems,
        columns=columns,
        cells=cells,
        notes=notes,
        results=list(results),
    )


def _test_cell(cell: Cell, paired: PairedScores, test: str, alpha: float, n_resamples: int, seed: int) -> None:
    """Fill ``cell``'s comparison fields from the paired scores."""
    cell.paired = paired
    cell.n_paired = len(paired.query_ids)
    cell.mean_difference = float(paired.differences.mean())
    p_values = []
    if test in ("t", "both"):
        cell.p_t = paired_t_test(paired.system, paired.baseline)
        p_values.append(cell.p_t)
    if test in ("randomization", "both"):
        cell.p_randomization = randomization_test(paired.system, paired.baseline, n_resamples=n_resamples, seed=seed)
        p_values.append(cell.p_randomization)
    if all(p < alpha for p in p_values) and cell.mean_difference != 0.0:
        cell.verdict = "better" if cell.mean_difference > 0 else "worse"


def _pairing_note(system: str, paired: PairedScores) -> str:
    note = f"{system} {len(paired.query_ids)}"
    if paired.only_in_system or paired.only_in_baseline:
        note += (
            f" (only these are tested: {paired.only_in_baseline} baseline queries missing from {system}, "
            f"{paired.only_in_system} of its queries missing from the baseline)"
        )
    return note


def _settings_notes(column: DatasetSplit, named_results: list[tuple[str, dict]]) -> list[str]:
    """Warn when results in one column were computed on different data or relevance levels."""
    notes = []
    for key in ("relevance_level", "data"):
        values = {name: r.get(key) for name, r in named_results if r.get(key) is not None}
        if len(set(map(str, values.values()))) > 1:
            listed = ", ".join(f"{name}={value}" for name, value in values.items())
            notes.append(f"{column.dataset} ({column.split}): warning: {key} differs between systems ({listed}).")
    return notes
