"""The ``synthrank`` typer application and its sub-apps; the command modules add their commands to it."""

from __future__ import annotations

import typer

from synthrank import __version__

app = typer.Typer(
    name="synthrank",
    help="Train dense retrievers from LLM-written graded passages (SyCL), and evaluate them on real benchmarks.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Check and describe BEIR folders.", rich_markup_mode="markdown", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        print(f"synthrank {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Train dense retrievers from LLM-written graded passages (SyCL), and evaluate them on real benchmarks."""
