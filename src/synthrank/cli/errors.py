"""How every command fails on bad input: one line ``error: file:line: field: what is wrong``, exit 2.

Every command module of :mod:`synthrank.cli` uses it.
"""

from __future__ import annotations

import functools

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from synthrank.data.errors import DataFormatError

console = Console(stderr=True)


def exits_cleanly_on_bad_data(command):
    """Turn DataFormatError / ValueError / unreadable files into a one-line message and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except typer.Exit:  # click's Exit is a RuntimeError: let it through as it is
            raise
        except ValidationError as err:  # a ValueError too, but many lines: the first error, as a flag
            from synthrank.cli.options import option_error

            fail(option_error(err))
        except (DataFormatError, ValueError, FileNotFoundError) as err:
            console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(2) from None
        except PermissionError as err:
            console.print(f"[bold red]error:[/] {err.filename}: permission denied", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except IsADirectoryError as err:
            console.print(f"[bold red]error:[/] {err.filename}: is a folder, not a file", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def fail(message: str) -> None:
    """Print ``error: message`` (one line, red) on stderr and exit with status 2."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(2)
