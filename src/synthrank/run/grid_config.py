"""The grid YAML of ``synthrank grid``: its schema and :func:`load_grid_config`.

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
    comparisons: [[synthetic-ws2, bm25]]  # extra paired tests [system, against], a table of their own
    runs:
      - {name: synthetic-ws2, label: "synthetic multi-level (ws2)", config: configs/scifact-synthetic-multilevel.yaml}
      - {name: synthetic-kl, config: configs/scifact-synthetic-multilevel.yaml, set: [train.loss.name=kl],
         share_stages_from: synthetic-ws2}
    ablations:                            # same mechanics, shown per group
      - {group: data-size, name: ws2-n100, config: ..., set: [generate.limit=100]}

Contract: :func:`load_grid_config` only reads and validates (nothing runs, no run config is
loaded). Unknown keys are errors; run names are unique, not ``baselines``, and match
``NAME_PATTERN``; labels (and baseline systems) are unique; every ablation has a ``group``;
``reference`` names a run; ``comparisons`` pair two different runs or baseline systems;
``share_stages_from`` names a run listed before. A bad file raises
:class:`~synthrank.data.errors.DataFormatError`. Relative ``config`` paths are taken next to the
YAML when they exist there, else as given; ``out`` (default ``runs/grids/<name>``) is relative
to the current folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthrank.config_io import read_yaml_mapping, validation_error
from synthrank.systems import BASE, BM25

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BASELINES = "baselines"


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
    systems: list[str] = Field(default_factory=lambda: [BASE, BM25], min_length=1)
    overrides: list[str] = Field(default_factory=list, alias="set")


class GridConfig(BaseModel):
    """A grid YAML (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    out: Path | None = None
    data_root: Path | None = Field(None, description="Where the cells' relative data set paths are looked up (as --data-root; "
                                                     "the command line's --data-root wins). Relative: next to the grid file "
                                                     "if it exists there, else from the current folder.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: list[str] = Field(default_factory=list, alias="set")
    metric: str = "ndcg@10"
    baselines: GridBaselines | None = None
    reference: str | None = None
    runs: list[GridRun] = Field(min_length=1)
    ablations: list[GridRun] = Field(default_factory=list)
    comparisons: list[tuple[str, str]] = Field(
        default_factory=list,
        description="Extra paired tests [system, against] (run names or baseline systems), shown in their own table.")

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
        systems = names + list(self.baselines.systems if self.baselines else [])
        for pair in self.comparisons:
            if any(n not in systems for n in pair) or pair[0] == pair[1]:
                raise ValueError(f"comparison {list(pair)}: name two different systems of the grid ({', '.join(systems)})")
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
    raw = read_yaml_mapping(path, "grid")
    try:
        return GridConfig.model_validate(raw), path.resolve().parent
    except ValidationError as err:
        raise validation_error(path, err) from None
