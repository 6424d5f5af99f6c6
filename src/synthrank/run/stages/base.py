"""What a stage of ``synthrank run`` is: one object with a name, an options model, inputs, an
execute step, a report section and a fingerprint rule.

A stage writes into ``<run_dir>/<name>/``. The pipeline (:mod:`synthrank.run.pipeline`) hashes
:meth:`Stage.inputs` (the content of files and folders) and :meth:`Stage.section_config` into a
fingerprint, skips the stage when its manifest says ``done`` with that fingerprint, and otherwise
calls :meth:`Stage.execute`. Stages resume by themselves (generation does only missing rows,
training restarts from its newest checkpoint, evaluation skips written results).

To add a stage: one module in this package defining a ``Stage`` subclass, plus its registration
(one import line) in ``stages/__init__.py``. Its ``section`` model becomes the run config's
section of the same name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from synthrank.config_io import drop_at_default, resolve_path

if TYPE_CHECKING:
    from synthrank.run.config import RunConfig


def resolve(path, base_dir: Path) -> Path:
    """A config path under the one path rule (:func:`synthrank.config_io.resolve_path`)."""
    return resolve_path(Path(path), base_dir)


def section_paths(section, base_dir: Path, fields: tuple[str, ...]) -> dict[str, Path]:
    """``{field: resolved path}`` of a section's path fields that are set; a list field gives ``field_0``, ``field_1``, ..."""
    paths: dict[str, Path] = {}
    for name in fields:
        value = getattr(section, name)
        if isinstance(value, list):
            paths.update({f"{name}_{i}": resolve(v, base_dir) for i, v in enumerate(value)})
        elif value is not None:
            paths[name] = resolve(value, base_dir)
    return paths


def local_model(name: str, base_dir: Path) -> Path | None:
    """A model named by a path that exists (resolved under the path rule), else None (a hub id or registry name)."""
    path = resolve(name, base_dir)
    return path if path.exists() else None


class Stage:
    """Base class of the stages. Subclasses set the class attributes and implement the methods."""

    #: the stage's name: its folder under the run, its config section, its ``--stages`` value
    name: ClassVar[str] = ""
    #: the options model of its config section
    section: ClassVar[type[BaseModel]]
    #: ``@<name>`` in the train section's sources refers to :meth:`output` (None: nothing to refer to)
    ref: ClassVar[str | None] = None
    #: keep the stage folder when the fingerprint changes (the generate store holds every generation apart)
    keep_on_change: ClassVar[bool] = False
    #: ``{dotted field: default}`` of section fields added after runs existed: at their default they
    #: are left out of the fingerprint, so earlier runs stay current (``*`` = every list item)
    later_fields: ClassVar[dict[str, object]] = {}

    def output(self, run_folder: Path) -> Path:
        """Where the stage writes its main output (what :attr:`ref` refers to)."""
        return Path(run_folder) / self.name

    def inputs(self, config: RunConfig, base_dir: Path) -> dict[str, Path]:
        """The paths whose content defines the stage's result."""
        raise NotImplementedError

    def execute(self, config: RunConfig, base_dir: Path, progress: bool) -> tuple[dict, dict]:
        """Do the work in ``<run_dir>/<name>/``; return ``(outputs, summary)`` for the manifest."""
        raise NotImplementedError

    def dumped_section(self, config: RunConfig, base_dir: Path) -> dict:
        """The section as the fingerprint sees it, before :attr:`later_fields` are dropped."""
        return getattr(config, self.name).model_dump(mode="json")

    def section_config(self, config: RunConfig, base_dir: Path) -> dict:
        """The config part of the fingerprint (and of the manifest)."""
        dumped = self.dumped_section(config, base_dir)
        for key, default in self.later_fields.items():
            drop_at_default(dumped, key, default)
        return dumped

    def report(self, manifest: dict, run_dir: Path) -> list[str]:
        """Markdown lines of the stage's section in ``report.md``."""
        return []


def relative(path: str | Path, run_dir: Path) -> str:
    """``path`` relative to the run folder, with forward slashes (report links survive moving the folder)."""
    import os

    return Path(os.path.relpath(Path(path), run_dir)).as_posix()
