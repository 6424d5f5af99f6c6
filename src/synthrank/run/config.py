"""The ``synthrank run`` configuration: one YAML file with a section per stage.

Example (``configs/scifact-synthetic-multilevel.yaml`` is a complete one)::

    name: my-retriever
    run_dir: runs/my-retriever          # default: runs/<name>
    generate:                           # options of `synthrank generate` (see GenerateJob)
      queries: data/my-queries.tsv
      model: qwen-coder-1.5b
      diagnose: [bm25, dense]
    mine:                               # options of `synthrank mine` (see MineJob)
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

Stages run in the order generate, mine, train, evaluate; ``stages:`` (or ``--stages``) picks a
subset. ``@generate`` and ``@mine`` refer to the outputs of those stages in this run folder.
Relative paths are resolved against the YAML file's folder when they exist there, else
against the current folder; ``run_dir`` against the current folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthrank.data.errors import DataFormatError
from synthrank.generate.job import GenerateJob
from synthrank.train.config import apply_overrides, read_yaml_mapping, validation_error

STAGES = ("generate", "mine", "train", "evaluate")
GENERATE_REF, MINE_REF = "@generate", "@mine"


class MineJob(BaseModel):
    """Options of ``synthrank mine`` (see :func:`synthrank.mine.mine_hard_negatives`)."""

    def select(self, queries: dict) -> dict:
        """The ``limit`` queries from ``offset`` on, in file order."""
        items = list(queries.items())[self.offset:]
        return dict(items[: self.limit] if self.limit else items)

    model_config = ConfigDict(extra="forbid")

    queries: Path
    split: str = "train"
    offset: int = Field(0, ge=0, description="Skip the first N queries (file order) first.")
    limit: int | None = Field(None, ge=1, description="Mine for the first N queries only (after `offset`): e.g. the "
                                                      "claims a synthetic set was generated for, keeping the rest held out.")
    corpus: Path | None = None
    known: list[Path] = Field(default_factory=list, description="More qrels whose positives are never mined.")
    positive_level: int = 1
    method: Literal["bm25", "dense"] = "bm25"
    model: str = "all-MiniLM-L6-v2"
    rank_range: str = "10:100"
    count: int = Field(10, ge=1)
    sample: Literal["random", "top"] = "random"
    seed: int = 0
    level: int = Field(0, ge=0)
    bm25_fields: Literal["multifield", "flat"] = "multifield"

    @field_validator("rank_range")
    @classmethod
    def _rank_range(cls, value: str) -> str:
        from synthrank.mine import parse_rank_range

        parse_rank_range(value)  # checked when the config is read, not after an hour of generation
        return value


class EvalDataset(BaseModel):
    """One BEIR split to evaluate on; ``data: embedded`` is the MEDLINE collection in the package."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    split: str = "test"
    relevance_level: int = 1
    allow_unknown_docs: bool = False
    offset: int = Field(0, ge=0, description="Skip the first N judged queries (file order) first: a held-out slice, "
                                             "e.g. training claims not used for generation as a development set.")
    max_queries: int | None = Field(None, ge=1, description="Only the first N judged queries (quick runs), after `offset`.")


class EvaluateConfig(BaseModel):
    """Which systems on which data. ``systems``: ``trained`` (this run's model), ``base`` (the
    train stage's base model), ``bm25``, or any sentence-transformers folder / hub id."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[EvalDataset] = Field(min_length=1)
    systems: list[str] = Field(default_factory=lambda: ["base", "bm25", "trained"])
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "map", "recall@100", "mrr@10"])
    metric: str = Field("ndcg@10", description="The metric of the report's significance tables.")
    base_model: str | None = Field(None, description="Default: the train section's base_model.")
    max_seq_length: int | None = None
    batch_size: int = 64
    top_k: int = Field(1000, ge=1)
    precision: Literal["fp32", "bf16"] = Field("fp32", description="Dense encoding precision (bf16: autocast, ~2x faster on AVX512-BF16 CPUs).")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        from synthrank.evaluate.metrics import parse_metric

        for name in value:
            parse_metric(name)
        return value


class RunConfig(BaseModel):
    """The whole ``synthrank run`` configuration (the ``train`` section is a TrainConfig minus output_dir)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="The run's folder name under runs/ (letters, digits, '.', '_', '-'; no path).")
    description: str = ""
    run_dir: Path | None = None
    stages: list[Literal["generate", "mine", "train", "evaluate"]] | None = None
    generate: GenerateJob | None = None
    mine: MineJob | None = None
    train: dict[str, Any] | None = None
    evaluate: EvaluateConfig | None = None
    allow_evaluation_queries_in_training: bool = Field(
        False, description="Run even when training queries are also evaluated (refused by default; see run/leakage.py).")

    def folder(self) -> Path:
        """The run folder, absolute (relative ``run_dir`` is taken from the current folder)."""
        return Path(self.run_dir or Path("runs") / self.name).resolve()

    def selected_stages(self, requested: list[str] | None = None) -> list[str]:
        """Stages to run, in pipeline order: ``requested``, else ``stages``, else every configured one."""
        wanted = requested or self.stages or [s for s in STAGES if getattr(self, s) is not None]
        unknown = [s for s in wanted if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
        missing = [s for s in wanted if getattr(self, s) is None]
        if missing:
            raise ValueError(f"stage(s) {', '.join(missing)} requested but the config has no such section")
        return [s for s in STAGES if s in wanted]


def load_run_config(path: Path, overrides: list[str] | None = None) -> tuple[RunConfig, Path]:
    """Read and validate a run config; returns it with the folder relative paths resolve against.

    ``overrides`` are ``dotted.key=value`` strings (values parsed as YAML), e.g.
    ``train.training.max_steps=10``. The ``train`` section is validated here too.
    """
    path = Path(path)
    raw = read_yaml_mapping(path)
    raw.setdefault("name", path.stem)
    raw = apply_overrides(raw, overrides or [])
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise validation_error(path, err) from None
    if config.train is not None:
        train_config(config, path.resolve().parent, path)  # validate now, not after an hour of generation
    return config, path.resolve().parent


def _stage_outputs(folder: Path) -> dict[str, Path]:
    return {"generate": folder / "generate" / "export", "mine": folder / "mine" / "negatives.qrels.tsv", "train": folder / "train"}


def stage_output(config: RunConfig, stage: str) -> Path:
    """Where a stage writes its main output (what ``@generate`` / ``@mine`` refer to)."""
    return _stage_outputs(config.folder())[stage]


def train_raw_from_run(train: dict, folder: Path) -> dict:
    """A run config's ``train`` section as a raw ``synthrank train`` config: ``@generate`` /
    ``@mine`` replaced by the run's stage outputs, ``output_dir`` = ``<folder>/train``."""
    outputs = _stage_outputs(Path(folder).resolve())
    refs = {GENERATE_REF: str(outputs["generate"]), MINE_REF: str(outputs["mine"])}
    raw = dict(train)
    raw["sources"] = [{k: refs.get(v, v) if isinstance(v, str) else v for k, v in s.items()} if isinstance(s, dict) else s
                      for s in raw.get("sources") or []]
    raw.setdefault("output_dir", str(outputs["train"]))
    return raw


def train_config(config: RunConfig, base_dir: Path, path: Path | None = None):
    """The ``train`` section as a validated TrainConfig (see :func:`train_raw_from_run`)."""
    from synthrank.train.config import TrainConfig

    if "output_dir" in (config.train or {}):
        raise DataFormatError(path or "<config>", 0, "train.output_dir", "set by synthrank run (<run_dir>/train); remove it")
    try:
        return TrainConfig.model_validate(train_raw_from_run(config.train or {}, config.folder()))
    except ValidationError as err:
        raise validation_error(path or "<config>", err, "train.") from None


def uses_stage_output(config: RunConfig, stage: str) -> bool:
    """Whether the train section reads ``@generate`` / ``@mine``."""
    ref = {"generate": GENERATE_REF, "mine": MINE_REF}[stage]
    return any(isinstance(s, dict) and ref in s.values() for s in (config.train or {}).get("sources") or [])
