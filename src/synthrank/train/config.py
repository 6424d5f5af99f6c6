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

Relative paths in ``sources`` and ``dev`` are resolved against the YAML file's folder first,
then the current folder. A ``synthrank run`` config (with a ``train:`` section) is accepted
too: its train section is used, with ``output_dir`` = ``<run_dir>/train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthrank.data.errors import DataFormatError
from synthrank.train.contexts import ContextConfig
from synthrank.train.sources import SourceConfig


class LossConfig(BaseModel):
    """Which registered loss (``ws2``, ``infonce``, ``kl``, ``approx_ndcg``, ...) and its settings."""

    model_config = ConfigDict(extra="forbid")

    name: str = "ws2"

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        from synthrank.train.losses import get_loss_class

        get_loss_class(value)  # ValueError naming the registered losses
        return value

    temperature: float = Field(1.0, gt=0)
    similarity: Literal["dot", "cosine"] = "dot"
    cached: bool = Field(False, description="GradCache: full-batch loss with mini-batch memory.")
    mini_batch_size: int = Field(32, ge=1)


class TrainingConfig(BaseModel):
    """Optimisation and bookkeeping; defaults follow the reference recipe where it applies."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(1, ge=1)
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    batch_size: int = Field(32, ge=2, description="Queries per device per step (each brings G passages).")
    learning_rate: float = Field(1e-5, gt=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = 0.0
    max_seq_length: int = Field(256, ge=8, description="Tokens per query and per passage.")
    seed: int = 42
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps (resume point after a kill).")
    save_total_limit: int = Field(2, ge=1)
    logging_steps: int = Field(1, ge=1)
    eval_steps: int = Field(0, ge=0, description="Evaluate on the dev set every N steps (0: only at the end).")
    bf16: bool = Field(False, description="bfloat16 autocast where the hardware runs it natively (a CUDA GPU with bf16, "
                                          "a CPU with AVX512-BF16 or AMX); elsewhere a warning and fp32.")
    log_batches: bool = Field(False, description="Write the query of every row each process trained on to "
                                                 "output_dir/batches/rank-R.jsonl (one line per step): an audit of the "
                                                 "data order under torchrun and across resumes.")


#: Fields that change how a run is watched or saved, not which weights it produces: a run resumed
#: with other values of these continues the same training (see ``training_fingerprint``).
BOOKKEEPING_FIELDS = {"output_dir": None, "dev": None,
                      "training": {"save_steps", "save_total_limit", "logging_steps", "eval_steps", "log_batches"}}


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


class DevConfig(BaseModel):
    """A BEIR split evaluated during and after training."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    split: str = "test"
    metric: str = "ndcg@10"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        from synthrank.evaluate.metrics import parse_metric

        parse_metric(value)
        return value.strip().lower()

    relevance_level: int = 1
    max_queries: int | None = Field(None, description="Evaluate on the first N judged queries (speed).")


class TrainConfig(BaseModel):
    """The whole ``synthrank train`` configuration."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "all-MiniLM-L6-v2"
    output_dir: Path
    sources: list[SourceConfig]
    context: ContextConfig
    loss: LossConfig = LossConfig()
    training: TrainingConfig = TrainingConfig()
    dev: DevConfig | None = None


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError as err:
        raise ValueError(f"the value {text!r} is not valid YAML ({getattr(err, 'problem', None) or 'syntax error'}); "
                         "quote it to pass a string") from None


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a raw config dict.

    List items are addressed by index: ``sources.0.data=path``.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        try:
            node: Any = raw
            for part in parts[:-1]:
                if isinstance(node, list):
                    node = node[int(part)]
                else:
                    if not isinstance(node.get(part), (dict, list)):
                        node[part] = {}
                    node = node[part]
            if isinstance(node, list):
                node[int(parts[-1])] = _parse_value(value)
            else:
                node[parts[-1]] = _parse_value(value)
        except ValueError as err:
            if "not valid YAML" in str(err):
                raise ValueError(f"override {item!r}: {err}") from None
            raise ValueError(f"cannot apply override {item!r}: no such place in the config") from None
        except (IndexError, TypeError, AttributeError):
            raise ValueError(f"cannot apply override {item!r}: no such place in the config") from None
    return raw


def read_yaml_mapping(path: Path, what: str = "config") -> dict:
    """The YAML mapping in ``path``; DataFormatError (file, line, what is wrong) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, 0, "-", f"{what} file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", -1) + 1
        raise DataFormatError(path, line, "-", f"invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise DataFormatError(path, 1, "-", f"the {what} must be a YAML mapping")
    return raw


def yaml_line(path: Path | str, keys: list) -> int:
    """1-based line of the deepest node of ``keys`` (mapping keys / list indices) in the YAML file, 0 if unknown."""
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError):
        return 0
    line = 0
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def validation_error(path: Path | str, err: ValidationError, prefix: str = "") -> DataFormatError:
    """The first pydantic error as ``file:line: dotted.field: message`` (``prefix`` names the section);
    the line is the field's (or its nearest parent's) in the YAML file, 0 when there is no file."""
    first = err.errors()[0]
    field = prefix + ".".join(str(p) for p in first["loc"]) or "-"
    keys = [k for k in prefix.split(".") if k] + list(first["loc"])
    line = yaml_line(path, keys) if Path(str(path)).is_file() else 0
    return DataFormatError(path, line, field, first["msg"].removeprefix("Value error, "))


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
    if isinstance(raw.get("train"), dict) and "sources" not in raw:  # a `synthrank run` config: use its train section
        from synthrank.run.config import train_raw_from_run

        folder = Path(raw.get("run_dir") or Path("runs") / str(raw.get("name") or (path.stem if path else "run")))
        raw = train_raw_from_run(raw["train"], folder)
    raw = apply_overrides(raw, overrides or [])
    for key, value in (literal or {}).items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    try:
        return TrainConfig.model_validate(raw), base_dir
    except ValidationError as err:
        raise validation_error(path or "<overrides>", err) from None


def resolve_path(path: Path, base_dir: Path) -> Path:
    """``path`` itself if absolute; else next to the config if it exists there; else as given."""
    path = Path(path)
    if path.is_absolute():
        return path
    candidate = base_dir / path
    return candidate if candidate.exists() else path
