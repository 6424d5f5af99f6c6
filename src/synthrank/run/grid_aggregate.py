"""Aggregation of a grid: the ``grid.json`` object, read from the cells' run folders on disk.

Contract: :func:`aggregate` reads only what is on disk (so ``--only`` reruns a subset and the page
still has every number) and runs nothing. A cell counts once its evaluate manifest is ``done``.
Per system and dataset: mean and sample std over seeds of every metric (std None below 2 seeds),
the per-seed values, and the significance of the seed-averaged per-query scores (paired t-test and
randomization test, both p < 0.05, via :func:`~synthrank.evaluate.compare.compare_results`)
against the reference run and against ``base``. Baselines are one cell without seeds. Wall time
is the sum of the stage manifests' seconds of each folder.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from synthrank.data.errors import DataFormatError
from synthrank.run.stages import STAGES
from synthrank.systems import BASE, TRAINED
from synthrank.run.grid_config import BASELINES, GridConfig, GridRun
from synthrank.run.manifest import cpu_model, now_iso, read_manifest
from synthrank.config_io import apply_overrides, resolve_path

if TYPE_CHECKING:
    from synthrank.run.grid import CellResult


def _in_cell(path: Path, run_dir: Path) -> Path:
    """A results file the evaluate manifest names, read from the cell itself,
    ``<run_dir>/evaluate/<dataset>/<system>/<file>``, when it is there: the manifest records absolute paths,
    and a cell folder moved or copied since (e.g. committed cells restored on another machine) still renders."""
    if len(path.parts) < 3:
        return path
    own = run_dir / "evaluate" / Path(*path.parts[-3:])
    return own if own.is_file() else path


def _machine_label(manifest: dict) -> str | None:
    """The GPU's name, else the CPU's, from an evaluate manifest's ``machine`` (None: not recorded, as before
    session 17, or not the object synthrank writes)."""
    machine = manifest.get("machine")
    if not isinstance(machine, dict):
        return None
    label = machine.get("gpu") or machine.get("cpu")
    return label if isinstance(label, str) else None


def _read_cell(run_dir: Path, systems: list[str] | None) -> tuple[dict, float, str | None]:
    """``({system: {dataset: result dict}}, wall seconds, machine label)`` of a finished run folder ({} if unfinished).

    Raises :class:`DataFormatError` naming the file when a finished cell's results file is missing or
    unreadable: leaving it out would render the cell's other seeds as if it had never run.
    """
    from synthrank.evaluate.results_files import load_results

    seconds = sum(float((read_manifest(run_dir / s) or {}).get("seconds") or 0.0) for s in STAGES)
    manifest = read_manifest(run_dir / "evaluate") or {}
    found: dict[str, dict] = {}
    if manifest.get("status") != "done":
        return found, seconds, None
    for path in manifest.get("outputs", {}).get("results", []):
        try:
            result = load_results([_in_cell(Path(path), run_dir)])[0]
        except DataFormatError as err:
            raise DataFormatError(err.path, err.line, err.field, f"{err.message} (a results file of the finished cell "
                                  f"{run_dir}: restore it, or delete the cell's evaluate/ folder to rerun it)") from None
        if systems is None or result["model"] in systems:
            found.setdefault(result["model"], {})[Path(path).parent.parent.name] = result
    return found, seconds, _machine_label(manifest)


def _mean_result(label: str, dataset: str, seeds: list[dict]) -> dict:
    """A results dict whose metrics and per-query scores are means over the seeds' results."""
    queries = sorted(set.intersection(*(set(r["per_query"]) for r in seeds)))
    per_query = {}
    for q in queries:
        names = [m for m in seeds[0]["per_query"][q] if all(m in r["per_query"][q] for r in seeds)]
        per_query[q] = {m: float(np.mean([r["per_query"][q][m] for r in seeds])) for m in names}
    metrics = {m: float(np.mean([r["metrics"][m] for r in seeds])) for m in seeds[0]["metrics"] if all(m in r["metrics"] for r in seeds)}
    return {"model": label, "dataset": dataset, "split": seeds[0]["split"], "metrics": metrics, "per_query": per_query}


def _generate_limit(run: GridRun, grid: GridConfig, base_dir: Path):
    try:
        raw = yaml.safe_load(resolve_path(run.config, base_dir).read_text()) or {}
        return (apply_overrides(raw, [*grid.overrides, *run.overrides]).get("generate") or {}).get("limit")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None


def hardware() -> dict:
    """Where the page was rendered: platform, CPU model, CPU count, torch intra-op threads."""
    import torch

    return {"platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def _baseline_systems(grid: GridConfig, out: Path, systems: dict, averaged: dict) -> None:
    """Add the baselines cell's systems (one evaluation each, no seeds)."""
    found, seconds, machine = _read_cell(out / BASELINES, grid.baselines.systems)
    for name in grid.baselines.systems:
        per_ds = found.get(name, {})
        systems[name] = {"label": name, "kind": "baseline", "group": None, "wall_seconds": {"-": seconds},
                         "machines": {"-": machine} if per_ds else {},
                         "datasets": {ds: {"n_seeds": 1, "split": r["split"], "mean": r["metrics"], "std": None,
                                           "per_seed": {"-": r["metrics"]}} for ds, r in per_ds.items()}}
        averaged[name] = {ds: {**r, "model": name, "dataset": ds} for ds, r in per_ds.items()}


def _run_system(grid: GridConfig, run: GridRun, out: Path, base_dir: Path, systems: dict, averaged: dict) -> None:
    """Add one run's trained system: per dataset, mean / sample std / per-seed metrics and the seed-averaged results."""
    per_seed: dict[str, dict[str, dict]] = {}
    walls, machines = {}, {}
    for seed in grid.seeds:
        found, walls[str(seed)], machine = _read_cell(out / run.name / f"seed-{seed}", [TRAINED])
        for ds, result in found.get(TRAINED, {}).items():
            per_seed.setdefault(ds, {})[str(seed)] = result
        if found.get(TRAINED):
            machines[str(seed)] = machine
    datasets = {}
    for ds, by_seed in per_seed.items():
        names = [m for m in next(iter(by_seed.values()))["metrics"] if all(m in r["metrics"] for r in by_seed.values())]
        values = {m: [r["metrics"][m] for r in by_seed.values()] for m in names}
        datasets[ds] = {"n_seeds": len(by_seed), "split": next(iter(by_seed.values()))["split"],
                        "mean": {m: float(np.mean(v)) for m, v in values.items()},
                        "std": {m: float(np.std(v, ddof=1)) for m, v in values.items()} if len(by_seed) > 1 else None,
                        "per_seed": {s: r["metrics"] for s, r in by_seed.items()}}
    systems[run.name] = {"label": run.display, "kind": "run", "group": run.group, "config": str(run.config),
                         "set": run.overrides, "generate_limit": _generate_limit(run, grid, base_dir),
                         "wall_seconds": walls, "machines": machines, "datasets": datasets}
    averaged[run.name] = {ds: _mean_result(run.display, ds, list(s.values())) for ds, s in per_seed.items()}


def _compare_cells(results: list[dict], metric: str, baseline: str) -> Callable[[dict], dict | None]:
    """``cell(result)``: the compare cell of a result against ``baseline`` among ``results`` (None when no test applies)."""
    from synthrank.evaluate.compare import ComparisonError, compare_results, dataset_split_of

    try:
        table = compare_results(results, metric=metric, baseline=baseline)
    except ComparisonError:
        return lambda result: None

    def cell(result: dict) -> dict | None:
        found = table.cells.get((result["model"], dataset_split_of(result)))
        return None if found is None else {k: v for k, v in found.to_dict().items() if k != "results_path"}

    return cell


def _significance(grid: GridConfig, systems: dict, averaged: dict, datasets: list[str], metrics: list[str]) -> None:
    """Every system against the reference run and against the base model, per dataset and metric."""
    for ds in datasets:
        for metric in metrics:
            pool = {name: r[ds] for name, r in averaged.items() if ds in r and metric in r[ds]["metrics"]}
            for kind, ref in {"reference": grid.reference, BASE: BASE}.items():
                if ref not in pool or len(pool) < 2:
                    continue
                cell = _compare_cells(list(pool.values()), metric, pool[ref]["model"])
                for name, result in pool.items():
                    entry = cell(result) if name != ref else None
                    if entry is not None:
                        systems[name]["datasets"][ds].setdefault("significance", {}).setdefault(metric, {})[kind] = entry


def _pair_comparisons(grid: GridConfig, systems: dict, averaged: dict, datasets: list[str]) -> list[dict]:
    """The grid's ``comparisons`` pairs on the primary metric, per dataset."""
    comparisons = []
    for system, against in grid.comparisons:
        for ds in datasets:
            pair = [averaged.get(system, {}).get(ds), averaged.get(against, {}).get(ds)]
            if any(r is None or grid.metric not in r["metrics"] for r in pair):
                continue
            pair = [{**r, "model": systems[n]["label"]} for r, n in zip(pair, (system, against))]
            entry = _compare_cells(pair, grid.metric, pair[1]["model"])(pair[0])
            if entry is not None:
                comparisons.append({"system": system, "against": against, "dataset": ds, **entry})
    return comparisons


def aggregate(grid: GridConfig, base_dir: Path, cells: list[CellResult] | None = None) -> dict:
    """Everything the page shows, read from the run folders: the ``grid.json`` object.

    ``systems``: baselines then runs, each with ``label``, ``kind``, ``group``, per dataset
    ``n_seeds``, ``mean`` / ``std`` (sample, None below 2 seeds) / ``per_seed`` metric values and
    ``significance[metric][reference|base]`` (the compare cell: mean difference, p-values, verdict),
    ``machines`` ({seed or "-": the evaluating machine's GPU or CPU name, None if not recorded});
    ``comparisons``: one entry per grid ``comparisons`` pair and dataset on the primary metric
    (``system``, ``against``, ``dataset`` and the compare cell's fields).
    """
    out = grid.folder()
    systems: dict[str, dict] = {}
    averaged: dict[str, dict[str, dict]] = {}  # system -> dataset -> seed-averaged results dict
    if grid.baselines is not None:
        _baseline_systems(grid, out, systems, averaged)
    for run in grid.all_runs():
        _run_system(grid, run, out, base_dir, systems, averaged)
    datasets = list(dict.fromkeys(ds for s in systems.values() for ds in s["datasets"]))
    metrics = list(dict.fromkeys(m for s in systems.values() for d in s["datasets"].values() for m in d["mean"]))
    _significance(grid, systems, averaged, datasets, metrics)
    comparisons = _pair_comparisons(grid, systems, averaged, datasets)
    return {"name": grid.name, "description": grid.description, "out": str(out), "seeds": grid.seeds, "metric": grid.metric,
            "reference": grid.reference, "reference_label": systems[grid.reference]["label"] if grid.reference else None,
            "datasets": datasets, "metrics": metrics, "systems": systems, "comparisons": comparisons,
            "cells": [c.__dict__ for c in cells or []], "hardware": hardware(), "written": now_iso()}
