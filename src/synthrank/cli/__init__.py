"""The ``synthrank`` command line: a thin typer layer over the Python API, one module per command group.

- :mod:`synthrank.cli.app` - the application (``synthrank --version``);
- :mod:`synthrank.cli.data` - ``data validate``, ``data stats``;
- :mod:`synthrank.cli.generate` - ``generate`` and its subcommands (options from ``GenerateJob``);
- :mod:`synthrank.cli.mine` - ``mine`` (options from ``MineOptions``);
- :mod:`synthrank.cli.train` - ``train`` (options from ``TrainConfig``), ``distill``;
- :mod:`synthrank.cli.evaluate` - ``evaluate`` (options from ``EvaluateOptions``), ``compare``;
- :mod:`synthrank.cli.run` - ``run``, ``quickstart``, ``grid``.

Each command parses options, calls one API function, and prints. Data errors exit with status 2
and a ``file:line: field: what is wrong`` message on stderr (:mod:`synthrank.cli.errors`).
Library modules never import typer; :mod:`synthrank.cli.options` builds the options from the
stages' pydantic models.
"""

from __future__ import annotations

from synthrank.cli import data, evaluate, mine, run, train  # noqa: F401 - each adds its commands to `app`
from synthrank.cli.app import app
from synthrank.cli.errors import exits_cleanly_on_bad_data
from synthrank.cli.generate import generate_app

app.add_typer(generate_app, name="generate")

__all__ = ["app", "exits_cleanly_on_bad_data"]
