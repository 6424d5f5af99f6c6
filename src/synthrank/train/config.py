"""The training configuration: one YAML file, every field overridable from the command line.

Example (``synthrank train configs/scifact-ws2.yaml --set training.max_steps=20``)::

    base_model: all-MiniLM-L6-v2
    output_dir: runs/scifact-ws2
    sources:
      - {name: synthetic, data: data/synthetic/scifact-train}
    context: {group_size: 4, selection: random}
    loss: {name: ws2, temperature: 1.0, similarity: dot}
    training: {epochs: 1, batch_size: 32, learning_rate: 1.0e-5, warmup_ratio: 0.05}
    dev: {data: ../shared/data/scifact, split: test, max_queries: 100}

Relative paths in ``sources`` and ``dev`` follow the one path rule of :mod:`synthrank.config_io`.
A ``synthrank run`` config's ``train:`` section is this model minus ``output_dir``
(:class:`synthrank.run.config.RunConfig`); ``synthrank train RUN.yaml`` trains it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthrank.data.errors import DataFormatError
from synthrank.config_io import apply_overrides, drop_at_default, read_yaml_mapping, set_dotted, validation_error
from synthrank.evaluate.options import EvalDataset
from synthrank.train.contexts import ContextConfig
from synthrank.train.sources import SourceConfig


class LossConfig(BaseModel):
    """Which registered loss (``ws2``, ``infonce``, ``kl``, ``approx_ndcg``, ...) and its options.

    Besides the fields below, a loss's own options may be given (``{name: approx_ndcg, gain:
    exponential}``); they are validated against the loss's ``options_model``, and a temperature
    left out is the loss's own default (1.0 for ws2, infonce and kl; 0.1 for approx_ndcg)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field("ws2", description="A registered loss: ws2, infonce, kl, approx_ndcg (or a class name).")
    temperature: float | None = Field(None, gt=0, description="Scores are divided by it before the softmax "
                                                              "(default: the loss's own).")
    similarity: Literal["dot", "cosine"] = Field("dot", description="dot (the reference) or cosine.")
    cached: bool = Field(False, description="GradCache: full-batch loss with mini-batch memory.")
    mini_batch_size: int = Field(32, ge=1, description="GradCache: queries per forward/backward chunk.")

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        from synthrank.train.losses import get_loss_class

        get_loss_class(value)  # ValueError naming the registered losses
        return value

    @model_validator(mode="after")
    def _validated_against_the_loss(self) -> "LossConfig":
        options = self.loss_options()  # raises for an option the loss does not take
        self.temperature = options["temperature"]
        return self

    def loss_options(self) -> dict[str, Any]:
        """The keyword options of the loss's constructor (its ``options_model``, validated)."""
        from synthrank.train.losses import get_loss_class

        options_model = get_loss_class(self.name).options_model
        given = {**(self.model_extra or {}), "similarity": self.similarity}
        if self.temperature is not None:
            given["temperature"] = self.temperature
        try:
            return options_model.model_validate(given).model_dump()
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: {first['msg']} (options of loss {self.name!r}: "
                             f"{', '.join(options_model.model_fields)})") from None


class TrainingConfig(BaseModel):
    """Optimisation and bookkeeping; defaults follow the reference recipe where it applies."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(1, ge=1, description="Passes over the ranking contexts (a fresh draw of groups each epoch).")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    batch_size: int = Field(32, ge=2, description="Queries per device per step (each brings G passages).")
    learning_rate: float = Field(1e-5, gt=0, description="Peak learning rate (AdamW, linear decay).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of the steps with a linear warmup.")
    weight_decay: float = Field(0.0, description="AdamW weight decay.")
    max_seq_length: int = Field(256, ge=8, description="Tokens per query and per passage.")
    seed: int = Field(42, description="Seed of the model initialisation, the data order and dropout.")
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps (resume point after a kill).")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(1, ge=1, description="Log the loss every N steps.")
    eval_steps: int = Field(0, ge=0, description="Evaluate on the dev set every N steps (0: only at the end).")
    bf16: bool = Field(False, description="bfloat16 autocast where the hardware runs it natively (a CUDA GPU with bf16, "
                                          "a CPU with AVX512-BF16 or AMX); elsewhere a warning and fp32.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Optimizer step every N batches (a larger effective batch "
                                                                  "for the gradient, NOT more in-batch negatives: each "
                                                                  "batch's loss still sees only its own batch_size queries; "
                                                                  "for a large list-wise batch use loss.cached, GradCache).")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"] = Field(
        "linear", description="Learning-rate schedule after the warmup (transformers' lr_scheduler_type).")
    report_to: list[str] = Field(default_factory=list, description="Where to log the training curves: tensorboard "
                                                                   "(output_dir/logs), wandb, ... (default: nowhere but "
                                                                   "log_history.json and loss_curve.png).")
    log_batches: bool = Field(False, description="Write the query of every row each process trained on to "
                                                 "output_dir/batches/rank-R.jsonl (one line per step): an audit of the "
                                                 "data order under torchrun and across resumes.")


#: Fields that change how a run is watched or saved, not which weights it produces: a run resumed
#: with other values of these continues the same training (see ``training_fingerprint``).
BOOKKEEPING_FIELDS = {"output_dir": None, "dev": None,
                      "training": {"save_steps", "save_total_limit", "logging_steps", "eval_steps", "log_batches", "report_to"}}

#: Fields added after training runs existed, with the value that means "as before": at that value they are
#: left out of the fingerprints (training_fingerprint, the run's train stage), so earlier runs stay current.
LATER_TRAIN_FIELDS = {"training.gradient_accumulation_steps": 1, "training.lr_scheduler": "linear", "prompts": None,
                      "sources.*.scores": "levels", "sources.*.rank_level": 0, "sources.*.max_rank": None}


def training_fingerprint(config: "TrainConfig", world_size: int = 1) -> dict:
    """What decides the trained weights: the config without bookkeeping fields, plus the world size
    (the global batch is ``batch_size * world_size``). Two runs with equal fingerprints may share
    checkpoints; a different one must never resume another's."""
    import json

    raw = json.loads(config.model_dump_json())
    for key, sub in BOOKKEEPING_FIELDS.items():
        if sub is None:
            raw.pop(key, None)
        else:
            for name in sub:
                raw.get(key, {}).pop(name, None)
    for key, default in LATER_TRAIN_FIELDS.items():  # added later: at their default, as before
        drop_at_default(raw, key, default)
    raw["world_size"] = world_size
    return raw


def fingerprint_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two fingerprints (sorted)."""
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += fingerprint_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


class DevConfig(EvalDataset):
    """A BEIR split (or a slice of it) evaluated during and after training, with the metric tracked."""

    metric: str = Field("ndcg@10", description="The metric tracked on the dev split.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from synthrank.evaluate.metrics import parse_metric

        parse_metric(value)
        return value.strip().lower()


class PromptsConfig(BaseModel):
    """Prefixes for query and document texts (E5: ``"query: "`` / ``"passage: "``; BGE: an instruction for
    queries only). Applied identically in training, mining and evaluation: they are saved in the model
    (``prompts``), so ``encode_query`` / ``encode_document`` use them."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field("", description="Prepended to every query.")
    document: str = Field("", description="Prepended to every passage.")


class TrainConfig(BaseModel):
    """The whole ``synthrank train`` configuration."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field("all-MiniLM-L6-v2", description="sentence-transformers folder or hub id to start from.")
    output_dir: Path = Field(description="Where the checkpoints and the trained model go.")
    sources: list[SourceConfig]
    context: ContextConfig
    loss: LossConfig = LossConfig()
    training: TrainingConfig = TrainingConfig()
    prompts: PromptsConfig | None = Field(None, description="Query / document prefixes, saved in the model.")
    dev: DevConfig | None = None


def load_train_config(path: Path | None, overrides: list[str] | None = None, literal: dict[str, Any] | None = None) -> tuple[TrainConfig, Path]:
    """Read a YAML config, apply overrides, validate. Returns the config and its base folder.

    ``overrides`` are ``dotted.key=value`` strings whose values are parsed as YAML;
    ``literal`` maps dotted keys to values used as they are (paths, names).
    """
    raw: dict = {}
    base_dir = Path.cwd()
    if path is not None:
        path = Path(path)
        raw = read_yaml_mapping(path)
        base_dir = path.resolve().parent
    if isinstance(raw.get("train"), dict) and "sources" not in raw:
        raise DataFormatError(path, 1, "train", "this is a `synthrank run` config: load it with synthrank.run.load_run_config "
                                                "(the CLI `synthrank train` accepts it)")
    raw = apply_overrides(raw, overrides or [])
    for key, value in (literal or {}).items():
        set_dotted(raw, key, value)
    try:
        return TrainConfig.model_validate(raw), base_dir
    except ValidationError as err:
        raise validation_error(path or "<overrides>", err) from None
