"""Streaming JSONL reading with line-precise errors, and atomic writing.

Reading stops at the first problem and raises :class:`DataFormatError` naming the file, the
1-based line and the field. Writing goes to a temporary file in the same folder that is
renamed into place only when complete, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from synthrank.data.errors import DataFormatError

T = TypeVar("T", bound=BaseModel)


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 text file, blank lines skipped.

    Raises DataFormatError for a missing file, an empty file or non-UTF-8 bytes (with the
    line where the bad bytes are).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, 0, "-", "file not found")
    seen_content = False
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    path, number, "-", f"not valid UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
                ) from None
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if not line.strip():
                continue
            seen_content = True
            yield number, line.rstrip("\r\n")
    if not seen_content:
        raise DataFormatError(path, 0, "-", "file is empty")


def _first_error_field(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "-"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "missing"
    return loc, message


def iter_jsonl_records(path: Path, model: type[T], aliases: dict[str, str] | None = None) -> Iterator[tuple[int, T]]:
    """Yield ``(line_number, record)`` for each line of a JSONL file, validated as ``model``.

    ``aliases`` renames keys of the raw object before validation (e.g. ``{"id": "_id"}``).
    Unknown keys are kept in the record's ``metadata`` when the model has one.
    """
    fields = set(model.model_fields)
    alias_names = {f.alias for f in model.model_fields.values() if f.alias}
    for number, line in iter_text_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, "-", f"malformed JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, number, "-", f"expected a JSON object, got {type(obj).__name__}")
        for old, new in (aliases or {}).items():
            if old in obj and new not in obj:
                obj[new] = obj.pop(old)
        if "metadata" in fields:
            extra = {k: obj.pop(k) for k in list(obj) if k not in fields and k not in alias_names}
            if extra:
                obj.setdefault("metadata", {})
                if isinstance(obj["metadata"], dict):
                    obj["metadata"] = {**extra, **obj["metadata"]}
        try:
            record = model.model_validate(obj)
        except ValidationError as err:
            field, message = _first_error_field(err)
            if field == "id" and "_id" in alias_names:
                field = "_id"
            raise DataFormatError(path, number, field, message) from None
        yield number, record


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write dicts as JSONL atomically; return the number of rows written."""
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
