"""``synthrank grid``: one command regenerates every number of a results page.

The grid is split over four modules, read in this order:

- :mod:`synthrank.run.grid_config` — the grid YAML (schema with an example) and :func:`load_grid_config`;
- this module — planning and running the cells, :func:`run_grid` (the CLI is ``synthrank.cli.run``);
- :mod:`synthrank.run.grid_aggregate` — :func:`aggregate`, the ``grid.json`` numbers read from disk;
- :mod:`synthrank.run.grid_render` — :func:`render_page` and :func:`write_section`, the Markdown page.

Everything public is importable from here.

Contracts:

- A *cell* is a run and a seed: ``load_run_config(config, overrides)`` with overrides = grid
  ``set`` + run ``set``, then the cell's own fields set as objects (:func:`~synthrank.run.config.with_updates`:
  ``run_dir=<out>/<run>/seed-<seed>``, ``train.training.seed=<seed>``, ``evaluate.systems=[trained]``),
  then :func:`~synthrank.run.run_pipeline`; so every cell is an
  ordinary run folder, resumed when killed and skipped when unchanged. The baselines are one
  more cell, ``<out>/baselines``, stage evaluate only, ``evaluate.systems`` = ``baselines.systems``.
- Shared stages: generate and mine do not depend on the training seed, so they run only in the
  run's first-seed folder; the other seeds train on that folder's outputs (``@generate`` /
  ``@mine`` replaced by its paths). ``share_stages_from: OTHER`` (a run listed earlier) takes
  them from OTHER's first-seed folder instead; both runs' generate and mine sections must be equal.
- A failing cell (bad override, failed stage) is recorded, the other cells go on; the page lists
  the failures and ``synthrank grid`` exits with status 1.
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
import time
from dataclasses import dataclass, field
from pathlib import Path

from synthrank.data.errors import DataFormatError
from synthrank.data.jsonl import atomic_write
from synthrank.run.config import load_run_config, with_updates
from synthrank.run.grid_aggregate import aggregate
from synthrank.run.grid_config import BASELINES, GridConfig, GridRun, load_grid_config
from synthrank.run.grid_render import render_page, write_section
from synthrank.run.manifest import read_manifest
from synthrank.run.stages import STAGES
from synthrank.run.stages.train import stage_outputs, with_stage_outputs
from synthrank.systems import TRAINED
from synthrank.config_io import resolve_path



# --- cells -------------------------------------------------------------------------------------


@dataclass
class GridCell:
    """One ``synthrank run`` of the grid; ``provider`` is the cell whose generate/mine outputs it uses."""

    run: str
    seed: int | None
    config: Path
    overrides: list[str]  # the grid's and the run's ``set`` strings, as the user wrote them
    run_dir: Path
    stages: list[str] | None = None
    provider: GridCell | None = None
    updates: dict = field(default_factory=dict)  # the cell's own fields, set as objects after loading

    @property
    def key(self) -> str:
        return self.run if self.seed is None else f"{self.run}/seed-{self.seed}"

    def load(self):
        """The cell's run config and base folder: the config file, the overrides, then the updates."""
        config, base_dir = load_run_config(self.config, self.overrides)
        return with_updates(config, self.updates), base_dir


def plan_cells(grid: GridConfig, base_dir: Path, only: list[str] | None = None,
               seeds: list[int] | None = None) -> list[GridCell]:
    """The cells to run, baselines first, then every run's seeds in the grid's order.

    ``only`` keeps cells of these run names (``baselines`` for the baselines); ``seeds`` keeps
    cells of these seeds (a first pass over every run with one seed gives a whole, if noisy,
    table early); an unknown name or seed is a ValueError.
    """
    out = grid.folder()
    known = [BASELINES] * bool(grid.baselines) + [r.name for r in grid.all_runs()]
    unknown = [n for n in only or [] if n not in known]
    if unknown:
        raise ValueError(f"--only: unknown run(s) {', '.join(unknown)}; the grid has {', '.join(known)}")
    unknown_seeds = [s for s in seeds or [] if s not in grid.seeds]
    if unknown_seeds:
        raise ValueError(f"--seeds: {unknown_seeds} not in the grid's seeds {grid.seeds}")
    wanted = lambda name: not only or name in only
    cells: list[GridCell] = []
    if grid.baselines is not None and wanted(BASELINES):
        b = grid.baselines
        cells.append(GridCell(BASELINES, None, resolve_path(b.config, base_dir), [*grid.overrides, *b.overrides],
                              out / BASELINES, ["evaluate"], updates={"run_dir": out / BASELINES, "evaluate.systems": list(b.systems)}))
    firsts: dict[str, GridCell] = {}
    for run in grid.all_runs():
        for seed in grid.seeds:
            run_dir = out / run.name / f"seed-{seed}"
            cell = GridCell(run.name, seed, resolve_path(run.config, base_dir), [*grid.overrides, *run.overrides], run_dir,
                            updates={"run_dir": run_dir, "train.training.seed": seed, "evaluate.systems": [TRAINED]})
            provider = firsts.get(run.share_stages_from or run.name)
            cell.provider = provider
            firsts.setdefault(run.name, cell)
            if wanted(run.name) and (not seeds or seed in seeds):
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
            cell.load()
        except (DataFormatError, ValueError) as err:
            lines.append(f"    config error: {err}")
        if cell.stages:
            lines.append(f"    stages: {','.join(cell.stages)}")
        if cell.provider is not None:
            lines.append(f"    generate/mine (if configured) from {cell.provider.key}")
        lines += [f"    --set {o}" for o in cell.overrides]
        lines += [f"    --set {key}={json.dumps(str(v)) if isinstance(v, Path) else json.dumps(v)}" for key, v in cell.updates.items()]
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
    upstream = [s for s in stages if STAGES[s].ref]  # stages whose outputs the train section may refer to
    if cell.provider is None or not upstream:
        return config, cell.stages
    provided = ensure(cell.provider, upstream)
    for stage in upstream:
        if getattr(config, stage).model_dump(mode="json") != getattr(provided, stage).model_dump(mode="json"):
            raise ValueError(f"share_stages_from {cell.provider.run}: its {stage} section differs from this run's")
    if config.train is not None:
        train = with_stage_outputs(config.train, stage_outputs(provided.folder()))
        config = config.model_copy(update={"train": train})
    return config, [s for s in stages if s not in upstream]


def run_cells(cells: list[GridCell], progress: bool = True, log=None, echo=print) -> list[CellResult]:
    """Run every cell (see the module docstring), one ``echo`` line per cell; never raises for a cell."""
    from synthrank.run.pipeline import run_pipeline

    ensured: dict[str, object] = {}  # provider key -> its loaded config, or the exception it raised

    def ensure(provider: GridCell, upstream: list[str]):
        if provider.key not in ensured:
            try:
                config, base = provider.load()
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
            config, base = cell.load()
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


def use_data_root(grid: GridConfig, base_dir: Path, data_root: Path | None = None) -> None:
    """Set the data root of the cells: ``data_root`` (the command line's), else the grid's ``data_root``."""
    from synthrank.data.named import set_data_root

    if data_root is not None:
        set_data_root(data_root)
    elif grid.data_root is not None:
        set_data_root(resolve_path(grid.data_root, base_dir))


def run_grid(path: Path, only: list[str] | None = None, report: Path | None = None, progress: bool = True,
             log=None, echo=print, command: str | None = None, seeds: list[int] | None = None,
             render_only: bool = False, data_root: Path | None = None) -> GridOutcome:
    """Run the grid's cells (all, or ``only`` these runs), aggregate every cell on disk, write
    ``<out>/grid.json`` and ``<out>/results.md`` (and the section of ``report``). Cell failures are
    in ``outcome.failures``; a bad grid file raises DataFormatError / ValueError before anything runs.
    ``render_only``: run no cell, not even to check it is current; only aggregate and write."""
    grid, base_dir = load_grid_config(path)
    use_data_root(grid, base_dir, data_root)
    cells = plan_cells(grid, base_dir, only, seeds)
    outcome = GridOutcome(grid.folder(), [] if render_only else run_cells(cells, progress=progress, log=log, echo=echo))
    outcome.summary = aggregate(grid, base_dir, outcome.cells)
    with atomic_write(outcome.out / "grid.json") as handle:
        json.dump(outcome.summary, handle, indent=1, ensure_ascii=False)
    command = command or f"synthrank grid {path}" + (f" --report {report}" if report else "")
    outcome.page = write_section(outcome.out / "results.md", grid.name, render_page(outcome.summary, outcome.out, command))
    if report is not None:
        outcome.report = write_section(Path(report), grid.name, render_page(outcome.summary, Path(report).resolve().parent, command))
    return outcome


__all__ = ["GridCell", "GridConfig", "GridOutcome", "GridRun", "aggregate", "describe_cells",
           "load_grid_config", "plan_cells", "render_page", "run_cells", "run_grid", "write_section"]
