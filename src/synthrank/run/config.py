"""The ``synthrank run`` configuration: one YAML file with a section per stage.

Example (``configs/scifact-synthetic-multilevel.yaml`` is a complete one)::

    name: my-retriever
    run_dir: runs/my-retriever          # default: runs/<name>
    generate:                           # options of `synthrank generate` (see GenerateJob)
      queries: data/my-queries.tsv
      model: qwen-coder-1.5b
      diagnose: [bm25, dense]
    mine:                               # options of `synthrank mine` (see MineOptions)
      queries: data/my-beir-folder
      rank_range: "10:100"
      count: 10
    train:                              # a `synthrank train` config without output_dir
      base_model: all-MiniLM-L6-v2
      sources:
        - {name: synthetic, data: "@generate"}     # the generate stage's export folder
        - {name: bm25, data: "@mine", corpus: data/my-beir-folder}   # the mined qrels
      context: {group_size: 4}
      loss: {name: ws2}
    evaluate:
      datasets:
        - {data: data/my-beir-folder, split: test}
        - {data: embedded}                        # the MEDLINE collection shipped in the package

Each section is its stage's options model (``GenerateJob``, ``MineOptions``, the train stage's
``TrainSection``, ``EvaluateConfig``): the same options, names and defaults as the stage's CLI
command. Stages run in the order they are registered (:mod:`synthrank.run.stages`); ``stages:``
(or ``--stages``) picks a subset. ``@generate`` and ``@mine`` refer to the outputs of those stages
in this run folder. Relative paths follow the one path rule of :mod:`synthrank.config_io`;
``run_dir`` is taken from the current folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from synthrank.config_io import apply_overrides, read_yaml_mapping, validation_error
from synthrank.evaluate.options import EvalDataset, EvaluateConfig
from synthrank.generate.job import GenerateJob
from synthrank.mine import MineOptions
from synthrank.run.stages import STAGE_NAMES, STAGES
from synthrank.run.stages.train import TrainSection, train_config


class RunSettings(BaseModel):
    """The fields of a run config besides its stage sections."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="The run's folder name under runs/ (letters, digits, '.', '_', '-'; no path).")
    description: str = ""
    run_dir: Path | None = None
    stages: list[str] | None = Field(None, description="The stages to run (default: every configured one), in pipeline order.")
    allow_evaluation_queries_in_training: bool = Field(
        False, description="Run even when training queries are also evaluated (refused by default; see run/leakage.py).")

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: list[str] | None) -> list[str] | None:
        unknown = [s for s in value or [] if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGE_NAMES)}")
        return value

    def folder(self) -> Path:
        """The run folder, absolute (relative ``run_dir`` is taken from the current folder)."""
        return Path(self.run_dir or Path("runs") / self.name).resolve()

    def selected_stages(self, requested: list[str] | None = None) -> list[str]:
        """Stages to run, in pipeline order: ``requested``, else ``stages``, else every configured one."""
        wanted = requested or self.stages or [s for s in STAGES if getattr(self, s) is not None]
        unknown = [s for s in wanted if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGE_NAMES)}")
        missing = [s for s in wanted if getattr(self, s) is None]
        if missing:
            raise ValueError(f"stage(s) {', '.join(missing)} requested but the config has no such section")
        return [s for s in STAGES if s in wanted]


#: The whole ``synthrank run`` configuration: :class:`RunSettings` plus one optional section per
#: registered stage, typed by the stage's options model (``generate: GenerateJob | None``, ...).
RunConfig = create_model(
    "RunConfig", __base__=RunSettings, __doc__="A `synthrank run` config: RunSettings plus one optional section per stage.",
    **{name: (stage.section | None, None) for name, stage in STAGES.items()},
)


def load_run_config(path: Path, overrides: list[str] | None = None) -> tuple[RunConfig, Path]:
    """Read and validate a run config; returns it with the folder relative paths resolve against.

    ``overrides`` are ``dotted.key=value`` strings (values parsed as YAML), e.g.
    ``train.training.max_steps=10``. Every section is validated here, before any stage runs.
    """
    path = Path(path)
    raw = read_yaml_mapping(path)
    raw.setdefault("name", path.stem)
    raw = apply_overrides(raw, overrides or [])
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise validation_error(path, err) from None
    return config, path.resolve().parent


def with_updates(config: RunConfig, updates: dict[str, Any]) -> RunConfig:
    """A validated copy of ``config`` with dotted fields set as objects (``{"train.training.seed": 2}``).

    A key inside a section the config does not have (``train.*`` without a train section) is skipped:
    there is nothing for it to change."""
    raw = config.model_dump()
    for key, value in updates.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node[last] = value
    return RunConfig.model_validate(raw)


def stage_output(config: RunConfig, stage: str) -> Path:
    """Where a stage writes its main output (what ``@generate`` / ``@mine`` refer to)."""
    return STAGES[stage].output(config.folder())


__all__ = ["EvalDataset", "EvaluateConfig", "GenerateJob", "MineOptions", "RunConfig", "RunSettings", "TrainSection",
           "load_run_config", "stage_output", "train_config", "with_updates"]
