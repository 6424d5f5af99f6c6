"""``synthrank grid``: one command regenerates every number of a results page.

A grid names ``synthrank run`` configs, seeds and overrides::

    name: scifact-static
    description: optional text shown under the heading
    out: runs/grids/scifact-static        # default runs/grids/<name>, relative to the current folder
    seeds: [1, 2, 3]
    set: [train.base_model=models/minilm-static-256]     # overrides of every run (and of the baselines)
    metric: ndcg@10                       # the primary metric (default ndcg@10)
    baselines:                            # evaluated once, without seeds
      config: configs/scifact-synthetic-multilevel.yaml  # its evaluate datasets (and base_model) are used
      systems: [base, bm25]
    reference: synthetic-binary           # marks compare every system with this run and with `base`
    runs:
      - {name: synthetic-ws2, label: "synthetic multi-level (ws2)", config: configs/scifact-synthetic-multilevel.yaml}
      - {name: synthetic-kl, config: configs/scifact-synthetic-multilevel.yaml, set: [train.loss.name=kl],
         share_stages_from: synthetic-ws2}
    ablations:                            # same mechanics, shown per group
      - {group: data-size, name: ws2-n100, config: ..., set: [generate.limit=100]}

Contracts:

- A *cell* is a run and a seed: ``load_run_config(config, overrides)`` with overrides = grid
  ``set`` + run ``set`` + ``run_dir=<out>/<run>/seed-<seed>``, ``train.training.seed=<seed>``,
  ``evaluate.systems=[trained]``, then :func:`~synthrank.run.run_pipeline`; so every cell is an
  ordinary run folder, resumed when killed and skipped when unchanged. The baselines are one
  more cell, ``<out>/baselines``, stage evaluate only, ``evaluate.systems`` = ``baselines.systems``.
- Shared stages: generate and mine do not depend on the training seed, so they run only in the
  run's first-seed folder; the other seeds train on that folder's outputs (``@generate`` /
  ``@mine`` replaced by its paths). ``share_stages_from: OTHER`` (a run listed earlier) takes
  them from OTHER's first-seed folder instead; both runs' generate and mine sections must be equal.
- A failing cell (bad override, failed stage) is recorded, the other cells go on; the page lists
  the failures and ``grid_command`` exits with status 1.
- Aggregation reads the run folders on disk (so ``--only`` reruns a subset and the page still has
  every number): per system and dataset, mean and sample std over seeds of every metric, and
  significance of the seed-averaged per-query scores (paired t-test and randomization test, both
  p < 0.05) against the reference run and against ``base``. ``<out>/grid.json`` holds all numbers
  (per seed too); ``<out>/results.md`` the page section, with plots in ``<out>/results/``.
- ``report=PATH`` also writes the section into PATH between ``<!-- grid:NAME:start -->`` and
  ``<!-- grid:NAME:end -->`` (created if missing, appended if absent, replaced if present, the
  rest of the file untouched), plots in ``<PATH's folder>/results/<name>-*.png``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthrank.data.errors import DataFormatError
from synthrank.data.jsonl import atomic_write
from synthrank.run.config import (
    GENERATE_REF,
    MINE_REF,
    STAGES,
    _error,
    load_run_config,
    stage_output,
)
from synthrank.run.manifest import now_iso, read_manifest
from synthrank.train.config import apply_overrides, resolve_path

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BASELINES = "baselines"
UPSTREAM = ("generate", "mine")
MARKS = {"reference": ("▲", "▼"), "base": ("△", "▽")}
GRID_EPILOG = """Examples:

  synthrank grid configs/grids/scifact-static.yaml --dry-run

  synthrank grid configs/grids/scifact-static.yaml --report docs/results.md

  synthrank grid configs/grids/scifact-static.yaml --only synthetic-kl,baselines --report docs/results.md
"""


class GridRun(BaseModel):
    """One run of the grid: a run config plus overrides, trained once per seed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    label: str = ""
    config: Path
    overrides: list[str] = Field(default_factory=list, alias="set")
    group: str | None = Field(None, description="Ablations: the heading the run is shown under.")
    share_stages_from: str | None = None

    @property
    def display(self) -> str:
        return self.label or self.name


class GridBaselines(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    config: Path
    systems: list[str] = Field(default_factory=lambda: ["base", "bm25"], min_length=1)
    overrides: list[str] = Field(default_factory=list, alias="set")


class GridConfig(BaseModel):
    """A grid YAML (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    out: Path | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: list[str] = Field(default_factory=list, alias="set")
    metric: str = "ndcg@10"
    baselines: GridBaselines | None = None
    reference: str | None = None
    runs: list[GridRun] = Field(min_length=1)
    ablations: list[GridRun] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> GridConfig:
        runs = self.all_runs()
        names = [r.name for r in runs]
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        if len(set(names)) != len(names) or BASELINES in names:
            raise ValueError(f"run names must be unique and not {BASELINES!r}: {names}")
        labels = [r.display for r in runs] + list(self.baselines.systems if self.baselines else [])
        if len(set(labels)) != len(labels):
            raise ValueError(f"run labels (and baseline systems) must be unique: {labels}")
        if any(not r.group for r in self.ablations):
            raise ValueError("every ablation needs a group")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not a run of the grid ({', '.join(names)})")
        for index, run in enumerate(runs):
            if run.share_stages_from is not None and run.share_stages_from not in names[:index]:
                raise ValueError(f"run {run.name}: share_stages_from {run.share_stages_from!r} must name a run listed before it")
        return self

    def all_runs(self) -> list[GridRun]:
        return [*self.runs, *self.ablations]

    def folder(self) -> Path:
        return Path(self.out or Path("runs") / "grids" / self.name).resolve()


def load_grid_config(path: Path) -> tuple[GridConfig, Path]:
    """Read and validate a grid YAML; returns it and the folder its relative config paths resolve
    against (the YAML's folder when the path exists there, else the current folder)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, 0, "-", "grid file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataFormatError(path, 0, "-", f"invalid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise DataFormatError(path, 1, "-", "the grid must be a YAML mapping")
    try:
        return GridConfig.model_validate(raw), path.resolve().parent
    except ValidationError as err:
        raise _error(path, err) from None


# --- cells -------------------------------------------------------------------------------------


@dataclass
class GridCell:
    """One ``synthrank run`` of the grid; ``provider`` is the cell whose generate/mine outputs it uses."""

    run: str
    seed: int | None
    config: Path
    overrides: list[str]
    run_dir: Path
    stages: list[str] | None = None
    provider: GridCell | None = None

    @property
    def key(self) -> str:
        return self.run if self.seed is None else f"{self.run}/seed-{self.seed}"


def _quoted(path: Path) -> str:
    return json.dumps(str(path))  # a JSON string is YAML: paths with ':' or spaces survive the override parser


def plan_cells(grid: GridConfig, base_dir: Path, only: list[str] | None = None) -> list[GridCell]:
    """The cells to run, baselines first, then every run's seeds in the grid's order.

    ``only`` keeps cells of these run names (``baselines`` for the baselines); an unknown name is a ValueError.
    """
    out = grid.folder()
    known = [BASELINES] * bool(grid.baselines) + [r.name for r in grid.all_runs()]
    unknown = [n for n in only or [] if n not in known]
    if unknown:
        raise ValueError(f"--only: unknown run(s) {', '.join(unknown)}; the grid has {', '.join(known)}")
    wanted = lambda name: not only or name in only
    cells: list[GridCell] = []
    if grid.baselines is not None and wanted(BASELINES):
        b = grid.baselines
        cells.append(GridCell(BASELINES, None, resolve_path(b.config, base_dir),
                              [*grid.overrides, *b.overrides, f"run_dir={_quoted(out / BASELINES)}", f"evaluate.systems={json.dumps(b.systems)}"],
                              out / BASELINES, ["evaluate"]))
    firsts: dict[str, GridCell] = {}
    for run in grid.all_runs():
        for seed in grid.seeds:
            run_dir = out / run.name / f"seed-{seed}"
            cell = GridCell(run.name, seed, resolve_path(run.config, base_dir),
                            [*grid.overrides, *run.overrides, f"run_dir={_quoted(run_dir)}", f"train.training.seed={seed}",
                             "evaluate.systems=[trained]"], run_dir)
            provider = firsts.get(run.share_stages_from or run.name)
            cell.provider = provider
            firsts.setdefault(run.name, cell)
            if wanted(run.name):
                cells.append(cell)
    return cells


def describe_cells(cells: list[GridCell]) -> str:
    """What ``--dry-run`` prints: every cell with its config, stages, shared stages and overrides, and
    the config error a cell would fail with (each cell's config is loaded and validated, nothing runs)."""
    lines = []
    for cell in cells:
        evaluate = read_manifest(cell.run_dir / "evaluate") or {}
        lines.append(f"{cell.key}: {cell.config} -> {cell.run_dir} (evaluate: {evaluate.get('status', 'not run')})")
        try:
            load_run_config(cell.config, cell.overrides)
        except (DataFormatError, ValueError) as err:
            lines.append(f"    config error: {err}")
        if cell.stages:
            lines.append(f"    stages: {','.join(cell.stages)}")
        if cell.provider is not None:
            lines.append(f"    generate/mine (if configured) from {cell.provider.key}")
        lines += [f"    --set {o}" for o in cell.overrides]
    return "\n".join(lines)


@dataclass
class CellResult:
    key: str
    run: str
    seed: int | None
    status: str  # "done" | "failed"
    action: str  # "skipped" | "ran train,evaluate" | "failed"
    seconds: float
    error: str | None = None


def _with_shared_stages(config, cell: GridCell, ensure) -> tuple[object, list[str] | None]:
    """Point ``@generate``/``@mine`` at the provider's outputs and drop those stages from this cell."""
    stages = config.selected_stages(cell.stages)
    upstream = [s for s in UPSTREAM if s in stages]
    if cell.provider is None or not upstream:
        return config, cell.stages
    provided = ensure(cell.provider, upstream)
    for stage in upstream:
        if getattr(config, stage).model_dump(mode="json") != getattr(provided, stage).model_dump(mode="json"):
            raise ValueError(f"share_stages_from {cell.provider.run}: its {stage} section differs from this run's")
    refs = {GENERATE_REF: str(stage_output(provided, "generate")), MINE_REF: str(stage_output(provided, "mine"))}
    train = dict(config.train or {})
    train["sources"] = [{k: refs.get(v, v) if isinstance(v, str) else v for k, v in s.items()} if isinstance(s, dict) else s
                        for s in train.get("sources") or []]
    return config.model_copy(update={"train": train}), [s for s in stages if s not in UPSTREAM]


def run_cells(cells: list[GridCell], progress: bool = True, log=None, echo=print) -> list[CellResult]:
    """Run every cell (see the module docstring), one ``echo`` line per cell; never raises for a cell."""
    from synthrank.run.pipeline import run_pipeline

    ensured: dict[str, object] = {}  # provider key -> its loaded config, or the exception it raised

    def ensure(provider: GridCell, upstream: list[str]):
        if provider.key not in ensured:
            try:
                config, base = load_run_config(provider.config, provider.overrides)
                run_pipeline(config, base, stages=upstream, progress=progress, log=log)
                ensured[provider.key] = config
            except Exception as err:  # noqa: BLE001 - recorded per dependent cell
                ensured[provider.key] = err
        if isinstance(ensured[provider.key], Exception):
            err = ensured[provider.key]
            raise RuntimeError(f"shared stages of {provider.key} failed: {type(err).__name__}: {err}")
        return ensured[provider.key]

    results = []
    for cell in cells:
        started = time.perf_counter()
        try:
            config, base = load_run_config(cell.config, cell.overrides)
            config, stages = _with_shared_stages(config, cell, ensure)
            outcome = run_pipeline(config, base, stages=stages, progress=progress, log=log)
            ran = [s.stage for s in outcome.stages if s.action != "skipped"]
            result = CellResult(cell.key, cell.run, cell.seed, "done", f"ran {','.join(ran)}" if ran else "skipped", 0.0)
        except Exception as err:  # noqa: BLE001 - a failed cell must not stop the grid
            result = CellResult(cell.key, cell.run, cell.seed, "failed", "failed", 0.0, f"{type(err).__name__}: {err}")
        result.seconds = round(time.perf_counter() - started, 1)
        results.append(result)
        echo(f"{cell.run:<24} seed {'-' if cell.seed is None else cell.seed:<4} {result.action:<28} {result.seconds:8.1f} s"
             + (f"  {result.error}" if result.error else ""))
    return results


# --- aggregation ---------------------------------------------------------------------------------


def _read_cell(run_dir: Path, systems: list[str] | None) -> tuple[dict, float]:
    """``({system: {dataset: result dict}}, wall seconds)`` of a finished run folder ({} if unfinished)."""
    from synthrank.evaluate.results_files import load_results

    seconds = sum(float((read_manifest(run_dir / s) or {}).get("seconds") or 0.0) for s in STAGES)
    manifest = read_manifest(run_dir / "evaluate") or {}
    found: dict[str, dict] = {}
    if manifest.get("status") != "done":
        return found, seconds
    for path in manifest.get("outputs", {}).get("results", []):
        try:
            result = load_results([path])[0]
        except (DataFormatError, ValueError):
            continue
        if systems is None or result["model"] in systems:
            found.setdefault(result["model"], {})[Path(path).parent.parent.name] = result
    return found, seconds


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

    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def aggregate(grid: GridConfig, base_dir: Path, cells: list[CellResult] | None = None) -> dict:
    """Everything the page shows, read from the run folders: the ``grid.json`` object.

    ``systems``: baselines then runs, each with ``label``, ``kind``, ``group``, per dataset
    ``n_seeds``, ``mean`` / ``std`` (sample, None below 2 seeds) / ``per_seed`` metric values and
    ``significance[metric][reference|base]`` (the compare cell: mean difference, p-values, verdict).
    """
    from synthrank.evaluate.compare import (
        ComparisonError,
        compare_results,
        dataset_split_of,
    )

    out = grid.folder()
    systems: dict[str, dict] = {}
    averaged: dict[str, dict[str, dict]] = {}  # system -> dataset -> seed-averaged results dict
    if grid.baselines is not None:
        found, seconds = _read_cell(out / BASELINES, grid.baselines.systems)
        for name in grid.baselines.systems:
            per_ds = found.get(name, {})
            systems[name] = {"label": name, "kind": "baseline", "group": None, "wall_seconds": {"-": seconds},
                             "datasets": {ds: {"n_seeds": 1, "split": r["split"], "mean": r["metrics"], "std": None,
                                               "per_seed": {"-": r["metrics"]}} for ds, r in per_ds.items()}}
            averaged[name] = {ds: {**r, "model": name, "dataset": ds} for ds, r in per_ds.items()}
    for run in grid.all_runs():
        per_seed: dict[str, dict[str, dict]] = {}
        walls = {}
        for seed in grid.seeds:
            found, walls[str(seed)] = _read_cell(out / run.name / f"seed-{seed}", ["trained"])
            for ds, result in found.get("trained", {}).items():
                per_seed.setdefault(ds, {})[str(seed)] = result
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
                             "wall_seconds": walls, "datasets": datasets}
        averaged[run.name] = {ds: _mean_result(run.display, ds, list(s.values())) for ds, s in per_seed.items()}
    datasets = list(dict.fromkeys(ds for s in systems.values() for ds in s["datasets"]))
    metrics = list(dict.fromkeys(m for s in systems.values() for d in s["datasets"].values() for m in d["mean"]))
    baselines = {"reference": grid.reference, "base": "base"}
    for ds in datasets:
        for metric in metrics:
            pool = {name: r[ds] for name, r in averaged.items() if ds in r and metric in r[ds]["metrics"]}
            for kind, ref in baselines.items():
                if ref not in pool or len(pool) < 2:
                    continue
                try:
                    table = compare_results(list(pool.values()), metric=metric, baseline=pool[ref]["model"])
                except ComparisonError:
                    continue
                for name, result in pool.items():
                    cell = table.cells.get((result["model"], dataset_split_of(result)))
                    if name != ref and cell is not None:
                        entry = {k: v for k, v in cell.to_dict().items() if k != "results_path"}
                        systems[name]["datasets"][ds].setdefault("significance", {}).setdefault(metric, {})[kind] = entry
    return {"name": grid.name, "description": grid.description, "out": str(out), "seeds": grid.seeds, "metric": grid.metric,
            "reference": grid.reference, "reference_label": systems[grid.reference]["label"] if grid.reference else None,
            "datasets": datasets, "metrics": metrics, "systems": systems,
            "cells": [c.__dict__ for c in cells or []], "hardware": hardware(), "written": now_iso()}


# --- the page ------------------------------------------------------------------------------------


def _cell_text(summary: dict, name: str, ds: str, metric: str) -> str:
    entry = summary["systems"][name]["datasets"].get(ds)
    if entry is None or metric not in entry["mean"]:
        return "–"
    text = f"{entry['mean'][metric]:.3f}"
    if entry["std"] is not None:
        text += f" ± {entry['std'][metric]:.3f}"
    marks = ""
    for kind, (up, down) in MARKS.items():
        verdict = (entry.get("significance", {}).get(metric, {}).get(kind) or {}).get("verdict")
        marks += {"better": up, "worse": down}.get(verdict, "")
    text += f" {marks}" if marks else ""
    if summary["systems"][name]["kind"] == "run" and entry["n_seeds"] < len(summary["seeds"]):
        text += f" (n={entry['n_seeds']})"
    return text


def _row_label(summary: dict, name: str) -> str:
    label = summary["systems"][name]["label"].replace("|", "\\|")
    return f"{label} (reference)" if name == summary["reference"] else label


def _table(summary: dict, names: list[str], columns: list[str], cell) -> list[str]:
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    return lines + [f"| {_row_label(summary, n)} | " + " | ".join(cell(n, c) for c in columns) + " |" for n in names]


def _legend(summary: dict) -> str:
    parts = []
    if summary["reference"]:
        parts.append(f"▲/▼ significantly better/worse than the reference {summary['reference_label']!r}")
    if "base" in summary["systems"]:
        parts.append("△/▽ significantly better/worse than the base model `base`")
    seeds = ", ".join(map(str, summary["seeds"]))
    return (f"Mean ± sample standard deviation over seeds {seeds} (baselines have no seed). "
            + ("; ".join(parts) + ": " if parts else "")
            + "p < 0.05 in both a paired t-test and a paired randomization test (10000 resamples) on the per-query "
            "scores averaged over seeds, no correction for multiple comparisons. (n=k): only k seeds finished.")


def _bars(path: Path, title: str, metric: str, panels: list[tuple[str, list[tuple[str, float, float | None, str]]]]) -> Path:
    """Horizontal bars (label, mean, std, colour) with std error bars, one panel per dataset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from synthrank.evaluate.plots import _save

    rows = max(len(bars) for _, bars in panels)
    figure = Figure(figsize=(6.4 * len(panels), 1.0 + 0.38 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (panel, bars) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        ys = np.arange(len(bars))[::-1]
        means = [b[1] for b in bars]
        ax.barh(ys, means, xerr=[b[2] or 0.0 for b in bars], color=[b[3] for b in bars], capsize=3)
        ax.set_yticks(ys, [b[0] for b in bars], fontsize=8)
        for y, (_, mean, std, _) in zip(ys, bars):
            ax.text(mean + (std or 0.0), y, f" {mean:.3f}", va="center", fontsize=7)
        ax.set_xlabel(metric)
        ax.set_title(f"{title}: {panel}", fontsize=9)
        ax.margins(x=0.15)
    return _save(figure, path)


def _colour(system: dict) -> str:
    return "#9e9e9e" if system["kind"] == "baseline" else "#4c72b0"


def _learning_curve(path: Path, summary: dict, names: list[str], metric: str) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from synthrank.evaluate.plots import _save

    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    drawn = False
    for ds in summary["datasets"]:
        points = sorted(((s["generate_limit"], s["datasets"][ds]) for n in names if (s := summary["systems"][n])["generate_limit"]
                         and ds in s["datasets"] and metric in s["datasets"][ds]["mean"]), key=lambda p: p[0])
        if points:
            drawn = True
            ax.errorbar([p[0] for p in points], [p[1]["mean"][metric] for p in points], capsize=3, marker="o", label=ds,
                        yerr=[(p[1]["std"] or {}).get(metric, 0.0) for p in points])
        for name, style in (("base", ":"), ("bm25", "--")):
            base = summary["systems"].get(name, {}).get("datasets", {}).get(ds)
            if points and base and metric in base["mean"]:
                ax.axhline(base["mean"][metric], linestyle=style, color="gray", linewidth=1, label=f"{name} ({ds})")
    if not drawn:
        return None
    ax.set_xlabel("generated queries (generate.limit)")
    ax.set_ylabel(metric)
    ax.set_title(f"{summary['name']}: {metric} vs training-set size")
    ax.legend(fontsize=8)
    return _save(figure, path)


def render_page(summary: dict, page_dir: Path, command: str | None = None) -> str:
    """The Markdown section of a grid; writes its plots to ``<page_dir>/results/<name>-*.png``."""
    metric, name, systems = summary["metric"], summary["name"], summary["systems"]
    plots = Path(page_dir) / "results"
    rel = lambda p: Path(os.path.relpath(p, page_dir)).as_posix()
    baselines = [n for n, s in systems.items() if s["kind"] == "baseline"]
    main = baselines + [n for n, s in systems.items() if s["kind"] == "run" and not s["group"]]
    groups = list(dict.fromkeys(s["group"] for s in systems.values() if s["group"]))
    lines = [f"## Grid `{name}`", ""]
    if summary["description"]:
        lines += [summary["description"].strip(), ""]
    if command:
        lines += [f"Regenerate: `{command}`", ""]
    lines += [f"### {metric}", ""]
    lines += _table(summary, main, summary["datasets"], lambda n, ds: _cell_text(summary, n, ds, metric))
    lines += ["", _legend(summary), ""]
    for ds in summary["datasets"]:
        bars = [(systems[n]["label"], d["mean"][metric], (d["std"] or {}).get(metric), _colour(systems[n])) for n in main
                if (d := systems[n]["datasets"].get(ds)) and metric in d["mean"]]
        if bars:
            png = _bars(plots / f"{name}-{ds}.png", name, metric, [(ds, bars)])
            lines += [f"![{metric} on {ds}]({rel(png)})", ""]
    for ds in summary["datasets"]:
        names = [n for n in systems if ds in systems[n]["datasets"]]
        lines += [f"### All metrics: {ds}", ""]
        lines += _table(summary, names, summary["metrics"], lambda n, m, ds=ds: _cell_text(summary, n, ds, m)) + [""]
    for group in groups:
        members = [n for n, s in systems.items() if s["group"] == group]
        context = [n for n in [summary["reference"]] if n and n not in members]
        lines += [f"### Ablation: {group}", ""]
        lines += _table(summary, context + members, summary["datasets"], lambda n, ds: _cell_text(summary, n, ds, metric)) + [""]
        panels = [(ds, [(systems[n]["label"], d["mean"][metric], (d["std"] or {}).get(metric), _colour(systems[n])) for n in context + members
                        if (d := systems[n]["datasets"].get(ds)) and metric in d["mean"]]) for ds in summary["datasets"]]
        panels = [p for p in panels if p[1]]
        if panels:
            lines += [f"![{group}]({rel(_bars(plots / f'{name}-ablation-{group}.png', group, metric, panels))})", ""]
        if group == "data-size" and (png := _learning_curve(plots / f"{name}-learning-curve.png", summary, members, metric)):
            lines += [f"![learning curve]({rel(png)})", ""]
    lines += ["### Wall time", "", "| run | seeds done | mean s per seed | total s |", "|---|---:|---:|---:|"]
    for n, s in systems.items():
        if s["kind"] == "run":
            done = max((d["n_seeds"] for d in s["datasets"].values()), default=0)
            walls = list(s["wall_seconds"].values())
            lines.append(f"| {_row_label(summary, n)} | {done} | {np.mean(walls):.0f} | {sum(walls):.0f} |")
    if baselines:
        lines.append(f"| baselines ({', '.join(baselines)}) | – | – | {systems[baselines[0]]['wall_seconds']['-']:.0f} |")
    hw = summary["hardware"]
    lines += ["", ("Stage seconds from the run folders' manifests (the last execution of each stage; shared generate/mine "
                   "stages count in the folder that ran them). Page rendered "
                   f"{summary['written']} on {hw['platform']}, {hw['cpu']}, {hw['cpu_count']} CPUs, torch threads {hw['torch_threads']}."), ""]
    failures = [c for c in summary["cells"] if c["status"] == "failed"]
    if failures:
        lines += ["### Failures", ""] + [f"- `{c['key']}`: {c['error']}" for c in failures] + [""]
    return "\n".join(lines)


def write_section(path: Path, name: str, text: str) -> Path:
    """Put ``text`` between the grid's markers in ``path``: replace that section, or append it, or create the file."""
    start, end = f"<!-- grid:{name}:start -->", f"<!-- grid:{name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if old is None:
        new = block + "\n"
    elif start in old:
        i = old.index(start)
        j = old.find(end, i)
        if j < 0:
            raise ValueError(f"{path}: {start} has no matching {end}; fix the file by hand")
        new = old[:i] + block + old[j + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(new)
    return path


# --- entry points ----------------------------------------------------------------------------------


@dataclass
class GridOutcome:
    out: Path
    cells: list[CellResult] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    page: Path | None = None
    report: Path | None = None

    @property
    def failures(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "failed"]


def run_grid(path: Path, only: list[str] | None = None, report: Path | None = None, progress: bool = True,
             log=None, echo=print, command: str | None = None) -> GridOutcome:
    """Run the grid's cells (all, or ``only`` these runs), aggregate every cell on disk, write
    ``<out>/grid.json`` and ``<out>/results.md`` (and the section of ``report``). Cell failures are
    in ``outcome.failures``; a bad grid file raises DataFormatError / ValueError before anything runs."""
    grid, base_dir = load_grid_config(path)
    cells = plan_cells(grid, base_dir, only)
    outcome = GridOutcome(grid.folder(), run_cells(cells, progress=progress, log=log, echo=echo))
    outcome.summary = aggregate(grid, base_dir, outcome.cells)
    with atomic_write(outcome.out / "grid.json") as handle:
        json.dump(outcome.summary, handle, indent=1, ensure_ascii=False)
    command = command or f"synthrank grid {path}" + (f" --report {report}" if report else "")
    outcome.page = write_section(outcome.out / "results.md", grid.name, render_page(outcome.summary, outcome.out, command))
    if report is not None:
        outcome.report = write_section(Path(report), grid.name, render_page(outcome.summary, Path(report).resolve().parent, command))
    return outcome


def grid_command(
    grid: Path = typer.Argument(..., help="Grid YAML: runs (run configs + overrides) x seeds, baselines, reference."),
    report: Path | None = typer.Option(None, "--report", help="Markdown page to write the grid's section into, between the HTML comments grid:NAME:start and grid:NAME:end (the rest of the page is kept); plots go to the folder results/ next to it."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated run names (or `baselines`) to run; the page still shows every cell found on disk."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cells and their overrides; run nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the one-line-per-cell progress (no stage logs, no progress bars)."),
) -> None:
    """Run an experiment grid (run configs x seeds + baselines) and render its results page.

    Every cell is an ordinary `synthrank run` folder OUT/RUN/seed-SEED (resumable, skipped when
    unchanged); OUT/grid.json holds every number (mean, sample std and per-seed values of every
    metric, significance against the reference run and the base model), OUT/results.md the page.
    A failed cell is reported and the others go on; the exit status is then 1.
    """
    only_list = [s.strip() for s in only.split(",") if s.strip()] if only else None
    if dry_run:
        spec, base_dir = load_grid_config(grid)
        print(describe_cells(plan_cells(spec, base_dir, only_list)))
        return
    quiet_log = (lambda message: None) if quiet else None
    outcome = run_grid(grid, only=only_list, report=report, progress=not quiet, log=quiet_log,
                       echo=lambda line: print(line, flush=True))
    print(f"grid.json: {outcome.out / 'grid.json'}\npage: {outcome.page}" + (f"\nreport: {outcome.report}" if outcome.report else ""))
    if outcome.failures:
        print(f"{len(outcome.failures)} cell(s) failed: {', '.join(c.key for c in outcome.failures)}", file=sys.stderr)
        raise typer.Exit(1)


__all__ = ["GRID_EPILOG", "GridCell", "GridConfig", "GridOutcome", "GridRun", "aggregate", "describe_cells", "grid_command",
           "load_grid_config", "plan_cells", "render_page", "run_cells", "run_grid", "write_section"]
