"""CLI options built from a stage's pydantic options model: one definition, three front ends.

A stage's options model (``GenerateJob``, ``MineOptions``, ``EvaluateOptions``, ``TrainConfig``)
is what its YAML section validates against and what its Python function takes. The command line
is derived from it here, field by field:

- the flag is ``--`` + the field name with ``_`` -> ``-`` (``per_level`` -> ``--per-level``);
  a nested model's fields get its name as prefix (``training.learning_rate`` ->
  ``--training.learning-rate``);
- the help text is the field's ``description``, the default shown is the model's default;
- a ``bool`` field is a flag pair ``--name/--no-name``; a field called ``use_<thing>`` is
  ``--use-<thing>/--no-<thing>`` (``use_cache`` -> ``--no-cache``);
- a list field is repeatable and each value may hold a comma-separated list
  (``--levels 3,2,1,0`` or ``--levels 3 --levels 2``);
- fields no flag can carry (mappings, lists of models, nested models with their own lists) are
  left to the YAML file.

Only the options a user gives reach the model (:func:`given_values`), so the model's defaults
and validation apply exactly as they do to a YAML section. A validation error names the flag.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Optional, Union

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

#: separates a nested model's name from its field in the Python parameter name (``training__seed``)
NESTED = "__"
_SCALARS = (bool, int, float, str, Path)


def _unwrap_optional(annotation):
    """``X | None`` -> ``X``; anything else unchanged."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _cli_type(annotation):
    """The type typer parses for a field, or None when a flag cannot carry it."""
    inner = _unwrap_optional(annotation)
    if typing.get_origin(inner) is Literal:
        return str
    if typing.get_origin(inner) is list:
        (item,) = typing.get_args(inner) or (str,)
        item = _unwrap_optional(item)
        return list[str] if item in _SCALARS or typing.get_origin(item) is Literal else None
    return inner if inner in _SCALARS else None


def _choices(annotation) -> list[str]:
    inner = _unwrap_optional(annotation)
    if typing.get_origin(inner) is list:
        inner = _unwrap_optional(typing.get_args(inner)[0])
    return [str(c) for c in typing.get_args(inner)] if typing.get_origin(inner) is Literal else []


def field_default(info: FieldInfo) -> Any:
    """A field's default value (calling its factory), or ``PydanticUndefined`` when it is required."""
    if info.default_factory is not None:
        return info.default_factory()
    return info.default


def shown_default(value: Any) -> str | bool:
    """How ``--help`` shows a default: lists comma-separated, None as nothing."""
    if value is PydanticUndefined:
        return False
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "[]"
    return str(value)


def flag_names(name: str, annotation, prefix: str = "") -> str:
    """The flag(s) of a field: ``--per-level``; bools ``--x/--no-x`` (``use_x`` -> ``--use-x/--no-x``)."""
    flag = name.replace("_", "-")
    if _unwrap_optional(annotation) is bool:
        negative = flag[4:] if name.startswith("use_") else flag
        return f"--{prefix}{flag}/--{prefix}no-{negative}"
    return f"--{prefix}{flag}"


def model_parameters(model: type[BaseModel], *, exclude: Iterable[str] = (), prefix: str = "",
                     short: dict[str, str] | None = None, help_overrides: dict[str, str] | None = None,
                     flag_prefix: str = "") -> list[inspect.Parameter]:
    """Keyword-only typer parameters for the CLI-able fields of ``model`` (nested models expanded).

    ``prefix`` is the dotted path of a nested model (``"training."``); ``short`` adds a short flag
    per field name (``{"model": "-m"}``); ``help_overrides`` replaces a field's help on this command;
    ``flag_prefix`` (``"llm-"``) prefixes every flag and parameter name, for a model whose options sit
    next to another's on one command (``--llm-model``; :func:`given_values` and :func:`build_options`
    take the same prefix). Every parameter defaults to None ("not given"), so the model's own default applies."""
    short, help_overrides, exclude = short or {}, help_overrides or {}, set(exclude)
    params = []
    for name, info in _fields_own_first(model):
        dotted = prefix + name
        if name in exclude or dotted in exclude:
            continue
        inner = _unwrap_optional(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            params += model_parameters(inner, exclude=exclude, prefix=dotted + ".", short=short, help_overrides=help_overrides,
                                       flag_prefix=flag_prefix)
            continue
        cli_type = str if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("cli") == "str" else _cli_type(info.annotation)
        if cli_type is None:
            continue
        text = help_overrides.get(dotted, info.description or "")
        choices = _choices(info.annotation)
        if choices and "one of" not in text:
            text = (text + " " if text else "") + f"One of: {', '.join(choices)}."
        if cli_type == list[str]:
            text += " Repeatable; each value may be comma-separated."
        default = field_default(info)
        declarations = [flag_names(name, info.annotation, flag_prefix + prefix)] + ([short[dotted]] if dotted in short else [])
        option = typer.Option(None, *declarations, help=text.strip(), show_default=shown_default(default))
        params.append(inspect.Parameter(_identifier(flag_prefix) + dotted.replace(".", NESTED), inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[cli_type]))
    return params


def _identifier(flag_prefix: str) -> str:
    """The parameter-name form of a flag prefix: ``"llm-"`` -> ``"llm_"``."""
    return flag_prefix.replace("-", "_")


def _fields_own_first(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    """The model's fields, those declared by the model itself first, then each base's (help reads top-down)."""
    order: list[str] = []
    for cls in model.__mro__:
        order += [n for n in getattr(cls, "__annotations__", {}) if n in model.model_fields and n not in order]
    order += [n for n in model.model_fields if n not in order]
    return [(n, model.model_fields[n]) for n in order]


def given_values(model: type[BaseModel], kwargs: dict[str, Any], flag_prefix: str = "") -> dict[str, Any]:
    """The options a user gave, as a nested dict for ``model`` (lists split on commas); None = not given.
    With ``flag_prefix``, only the parameters :func:`model_parameters` named with it count."""
    out: dict[str, Any] = {}
    own = _identifier(flag_prefix)
    for key, value in kwargs.items():
        if value is None or not key.startswith(own):
            continue
        key = key[len(own):]
        parts = key.split(NESTED)
        if not _has_field(model, parts):
            continue
        if isinstance(value, list):
            value = [item.strip() for text in value for item in str(text).split(",") if item.strip()]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def given_dotted(model: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`given_values` as ``{"training.max_steps": 3}`` (for ``load_train_config``'s ``literal``)."""
    def flatten(node: dict, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(value, dict):
                out.update(flatten(value, f"{prefix}{key}."))
            else:
                out[prefix + key] = value
        return out

    return flatten(given_values(model, kwargs), "")


def _has_field(model: type[BaseModel], parts: list[str]) -> bool:
    for part in parts:
        info = model.model_fields.get(part)
        if info is None:
            return False
        inner = _unwrap_optional(info.annotation)
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
        if model is None and part != parts[-1]:
            return False
    return True


def option_error(err: ValidationError, flag_prefix: str = "") -> str:
    """The first validation error as ``--flag: message`` (the flag named as the user typed it)."""
    import re

    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    message = first["msg"].removeprefix("Value error, ")
    named = re.match(r"^([a-z][a-z0-9_]*): (.*)$", message, re.S)
    if not loc and named:  # a model-level check names its field first ("per_level: ...")
        loc, message = [named.group(1)], named.group(2)
    flag = "--" + flag_prefix + ".".join(p.replace("_", "-") for p in loc) if loc else "option"
    return f"{flag}: {message}"


def build_options(model: type[BaseModel], kwargs: dict[str, Any], base: dict[str, Any] | None = None,
                  flag_prefix: str = "") -> BaseModel:
    """Validate ``base`` (e.g. a YAML section) updated with the given CLI values into ``model``.

    A ValidationError becomes a ``ValueError("--flag: message")`` (one line, exit 2 in the CLI)."""
    raw = _merge(dict(base or {}), given_values(model, kwargs, flag_prefix))
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ValueError(option_error(err, flag_prefix)) from None


def _merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(dict(base[key]), value)
        else:
            base[key] = value
    return base


def data_root_parameter() -> inspect.Parameter:
    """``--data-root``: the folder relative data set paths are looked up in (sets ``$SYNTHRANK_DATA``)."""
    option = typer.Option(None, "--data-root", help="Folder where relative data set paths are looked up when they exist neither "
                                                    "next to the config nor here (default $SYNTHRANK_DATA).")
    return inspect.Parameter("data_root", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[Path])


def apply_data_root(value: Path | None) -> None:
    from synthrank.data.named import set_data_root

    set_data_root(value)


def with_parameters(function: Callable, params: list[inspect.Parameter]) -> Callable:
    """Give ``function(**kwargs)`` the signature typer reads: its own parameters, then ``params``."""
    own = [p for p in inspect.signature(function).parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    hints = typing.get_type_hints(function)
    signature = inspect.Signature([*own, *params])
    function.__signature__ = signature
    function.__annotations__ = {**{p.name: hints.get(p.name, p.annotation) for p in own},
                                **{p.name: p.annotation for p in params}}
    return function


__all__ = ["NESTED", "apply_data_root", "build_options", "data_root_parameter", "field_default", "flag_names", "given_dotted", "given_values", "model_parameters", "option_error",
           "shown_default", "with_parameters"]
