"""How every command fails on bad input: one line ``error: file:line: field: what is wrong``, exit 2.

Shared by the main CLI (``cli.py``) and the ``synthrank generate`` sub-app (``generate/cli.py``),
which cannot import each other.
"""

from __future__ import annotations

import functools

import typer
from rich.console import Console

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
        except (DataFormatError, ValueError, FileNotFoundError) as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(2) from None
        except PermissionError as err:
            console.print(f"[bold red]error:[/] {err.filename}: permission denied", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except IsADirectoryError as err:
            console.print(f"[bold red]error:[/] {err.filename}: is a folder, not a file", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
