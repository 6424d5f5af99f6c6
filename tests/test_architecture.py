"""The architecture's contracts: one options model per stage behind CLI, YAML and Python; registries
whose every member is checked here (a new loss, backend or stage needs no edit to this file); the
import graph without cycles or upward imports."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from pydantic_core import PydanticUndefined

from synthrank.cli import app
from synthrank.cli.options import NESTED, field_default, shown_default
from synthrank.evaluate.options import EvaluateOptions
from synthrank.generate.backends import BackendOptions, backend_names, get_backend_class
from synthrank.generate.job import EXECUTION_FIELDS, GenerateJob
from synthrank.mine import MineOptions
from synthrank.run.config import RunConfig
from synthrank.run.stages import STAGES
from synthrank.train.config import LossConfig, TrainConfig
from synthrank.train.losses import ListwiseLoss, LossOptions, available_losses, get_loss_class

REPO = Path(__file__).resolve().parents[1]


def _command(*path: str):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _cli_fields(command) -> dict:
    return {p.name.replace(NESTED, "."): p for p in command.params if p.param_type_name == "option"}


def _model_fields(model, prefix: str = "") -> dict[str, object]:
    """Dotted field name -> default, nested models expanded (what a flag can carry)."""
    from synthrank.cli.options import _cli_type, _unwrap_optional
    from pydantic import BaseModel

    out = {}
    for name, info in model.model_fields.items():
        inner = _unwrap_optional(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            out.update(_model_fields(inner, f"{prefix}{name}."))
        elif _cli_type(info.annotation) is not None or (isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("cli") == "str"):
            out[prefix + name] = field_default(info)
    return out


@pytest.mark.parametrize("command, model, section", [
    (("generate",), GenerateJob, "generate"),
    (("mine",), MineOptions, "mine"),
    (("train",), TrainConfig, "train"),
    (("evaluate",), EvaluateOptions, "evaluate"),
])
def test_cli_options_are_the_stage_model_fields_with_the_same_names_and_defaults(command, model, section) -> None:
    options = _cli_fields(_command(*command))
    fields = _model_fields(model)
    assert fields, model
    for name, default in fields.items():
        assert name in options, f"{name} of {model.__name__} is not an option of synthrank {' '.join(command)}"
        option = options[name]
        flag = "--" + name.replace("_", "-").replace(".", ".")
        assert any(o == flag or o.startswith(flag) for o in option.opts), (name, option.opts)
        assert option.show_default == shown_default(default if default is not PydanticUndefined else PydanticUndefined), name
        assert option.default is None  # not given = the model's default applies


def test_run_config_sections_are_the_stage_models() -> None:
    """A run config's section is the same model the CLI is built from (so the same names and defaults)."""
    sections = {name: RunConfig.model_fields[name].annotation for name in STAGES}
    assert GenerateJob in sections["generate"].__args__ and MineOptions in sections["mine"].__args__
    assert any(issubclass(a, TrainConfig) for a in sections["train"].__args__ if isinstance(a, type))
    evaluate_section = next(a for a in sections["evaluate"].__args__ if isinstance(a, type))
    shared = set(evaluate_section.model_fields) & set(EvaluateOptions.model_fields)
    assert {"metrics", "top_k", "precision", "max_seq_length", "batch_size", "similarity"} <= shared
    for name in shared:  # one default per option, whether `synthrank evaluate` or a run section
        assert field_default(evaluate_section.model_fields[name]) == field_default(EvaluateOptions.model_fields[name]), name


def test_a_list_option_takes_commas_or_repeats(tmp_path: Path) -> None:
    from synthrank.cli.options import given_values

    assert given_values(GenerateJob, {"levels": ["3,2", "1"], "base_url": None}) == {"levels": ["3", "2", "1"]}
    assert GenerateJob(queries=tmp_path, levels=["3", "2", "1"]).levels == [3, 2, 1]
    assert given_values(TrainConfig, {"training__max_steps": 3}) == {"training": {"max_steps": 3}}


@pytest.mark.parametrize("name", backend_names())
def test_every_backend_declares_options_that_generate_accepts(name: str) -> None:
    cls = get_backend_class(name)
    assert issubclass(cls.options_model, BackendOptions) and cls.options_model is not BackendOptions
    assert "from_options" in cls.__dict__, f"{name} must build itself from its options"
    assert set(cls.options_model.model_fields) <= set(GenerateJob.model_fields), "GenerateJob must accept the backend's options"
    job = GenerateJob(queries=Path("q.tsv"), backend=name, model="m")
    assert isinstance(job.backend_options(), cls.options_model)


def test_execution_fields_are_the_ones_that_leave_generated_rows_unchanged() -> None:
    assert EXECUTION_FIELDS == {"store", "export", "export_every", "base_url", "api_key_env", "concurrency", "timeout",
                                "max_retries", "threads", "n_parallel"}


@pytest.mark.parametrize("name", sorted(set(available_losses()) | {c.__name__ for c in ListwiseLoss._registry.values()}))
def test_every_loss_declares_its_options_and_yaml_validates_them(name: str) -> None:
    cls = get_loss_class(name)
    assert issubclass(cls.options_model, LossOptions)
    signature = inspect.signature(cls.__init__).parameters
    for field, info in cls.options_model.model_fields.items():
        assert field in signature, f"{name}: option {field} is not a constructor keyword"
        assert signature[field].default == info.default, f"{name}: default of {field} differs from the constructor's"
    config = LossConfig(name=name)
    assert config.temperature == cls.options_model.model_fields["temperature"].default  # the loss's own default
    with pytest.raises(ValueError, match=f"options of loss '{name}'"):
        LossConfig(name=name, no_such_option=1)


def test_approx_ndcg_options_work_from_yaml() -> None:
    config = LossConfig.model_validate({"name": "approx_ndcg", "gain": "exponential", "in_batch_negatives": False})
    assert config.loss_options() == {"temperature": 0.1, "similarity": "dot", "gain": "exponential", "in_batch_negatives": False}
    with pytest.raises(ValueError, match="gain"):
        LossConfig.model_validate({"name": "approx_ndcg", "gain": "exp2"})


@pytest.mark.parametrize("name", list(STAGES))
def test_every_stage_is_a_section_with_an_output_and_a_report(name: str, tmp_path: Path) -> None:
    stage = STAGES[name]
    assert stage.name == name and name in RunConfig.model_fields
    assert stage.output(tmp_path).is_relative_to(tmp_path / name)
    assert isinstance(stage.report({"config": {}, "summary": {}, "outputs": {}}, tmp_path), list)
    for key in stage.later_fields:
        head = key.split(".")[0]
        assert head in stage.section.model_fields, f"{name}: later field {key} is not a field of its section"


def test_no_import_cycle_and_no_upward_import() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "check_imports.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_library_modules_do_not_import_typer() -> None:
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "src" / "synthrank").rglob("*.py")
                 if "cli" not in p.relative_to(REPO / "src" / "synthrank").parts and "import typer" in p.read_text()]
    assert not offenders
