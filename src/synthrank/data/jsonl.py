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


def check_readable_file(path: Path) -> None:
    """DataFormatError unless ``path`` is an existing regular file (naming a broken link or a folder)."""
    path = Path(path)
    if path.is_file():
        return
    if path.is_symlink():
        raise DataFormatError(path, 0, "-", f"broken symbolic link (points to {os.readlink(path)}, which does not exist)")
    if path.is_dir():
        raise DataFormatError(path, 0, "-", "is a folder, not a file")
    raise DataFormatError(path, 0, "-", "file not found")


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 text file, blank lines skipped.

    Raises DataFormatError for a missing file, an empty file or non-UTF-8 bytes (with the
    line where the bad bytes are).
    """
    path = Path(path)
    check_readable_file(path)
    seen_content = False
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise DataFormatError(path, 0, "-", f"cannot read: {err.strerror or err}") from None
    with handle:
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
        except RecursionError:
            raise DataFormatError(path, number, "-", "JSON nested too deeply") from None
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


def _file_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would give a new file (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    The file gets the user's normal permissions (umask), not mkstemp's 0600. A process killed
    while writing leaves a ``.<name>.*.tmp`` sibling; :func:`remove_stale_temporaries` clears them.
    An existing folder at ``path`` is a DataFormatError.
    """
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, 0, "-", "is a folder; cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(folder: Path, names: Iterable[str]) -> int:
    """Delete ``.<name>.*.tmp`` files that a killed :func:`atomic_write` left in ``folder``; return how many.

    Call it only where no other process is writing the same files (one exporter per folder)."""
    removed = 0
    for name in names:
        for stale in Path(folder).glob(f".{name}.*{TEMPORARY_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
    return removed


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write dicts as JSONL atomically; return the number of rows written."""
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
