"""Config I/O shared by every stage: YAML files, dotted overrides, validation errors, and the one path rule.

Nothing here knows a stage. ``train/``, ``run/`` and the CLI import it; it imports only
the data layer.

**The path rule** (:func:`resolve_path`), used for every path in every config (train sources, run
sections, grids) and every data option of the CLI: a data set name (``beir:NAME``, ``hf:REPO``,
``irds:ID``, a zip URL) is fetched into the cache; an absolute path is used as it is; a relative one
is taken next to the config file when it exists there, else as given (relative to the current
folder) when it exists, else under the data root (``--data-root``, ``$SYNTHRANK_DATA``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synthrank.data.errors import DataFormatError


def parse_value(text: str) -> Any:
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
                node[int(parts[-1])] = parse_value(value)
            else:
                node[parts[-1]] = parse_value(value)
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


def drop_at_default(node: Any, dotted: str, default: Any) -> None:
    """Remove the dotted key (``*`` = every list item, ``sources.*.level``) from a dumped config where it holds
    ``default``: a field added after runs existed leaves their fingerprints as they were."""
    parts = dotted.split(".")
    if isinstance(node, list) and parts[0] == "*":
        for item in node:
            drop_at_default(item, ".".join(parts[1:]), default)
    elif isinstance(node, dict) and parts[0] in node:
        if len(parts) == 1:
            if node[parts[0]] == default:
                del node[parts[0]]
        else:
            drop_at_default(node[parts[0]], ".".join(parts[1:]), default)


def set_dotted(raw: dict, key: str, value: Any) -> dict:
    """Set ``raw[a][b]... = value`` for the dotted ``key`` ``a.b...`` (missing mappings are created), as is."""
    node = raw
    *parents, last = key.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value
    return raw


def resolve_path(path: Path | str, base_dir: Path) -> Path:
    """The one path rule. A data set name (``beir:scifact``, ``hf:...``, ``irds:...``, a zip URL) is
    fetched into the cache and its folder returned (:mod:`synthrank.data.named`). A path: itself if
    absolute; else next to the config if it exists there; else as given if it exists (relative to
    the current folder); else under the data root (``$SYNTHRANK_DATA``) if it exists there; else as given."""
    from synthrank.data.named import data_root, is_named, resolve_dataset

    if is_named(path):
        return resolve_dataset(path)
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    candidate = Path(base_dir) / path
    if candidate.exists():
        return candidate
    root = data_root()
    if not path.exists() and root is not None and (root / path).exists():
        return root / path
    return path
