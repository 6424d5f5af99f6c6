"""The one error type of the data layer: it always names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Bad input data. ``str(err)`` is ``file:line: field: what is wrong``.

    ``line`` is 1-based; 0 means the problem concerns the whole file (missing, empty).
    ``field`` is the JSON key or TSV column at fault, or ``-`` when none applies.
    """

    def __init__(self, path: str | Path, line: int, field: str, message: str):
        self.path = str(path)
        self.line = line
        self.field = field or "-"
        self.message = message
        super().__init__(f"{self.path}:{self.line}: {self.field}: {self.message}")
