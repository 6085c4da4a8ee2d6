"""How the `d1check` command talks: rich tables on a terminal, plain text in CI, one-paragraph
errors on stderr with the exit code decisions.md settles (2 bad input, 1 failure)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, Any

import click

from d1check.errors import ConfigError, D1CheckError, MigrationFileError

USAGE, FAILURE = 2, 1


class CommandError(click.ClickException):
    """A D1CheckError (or a refusal) shown as one paragraph, with its exit code."""

    def __init__(self, message: str, exit_code: int = FAILURE) -> None:
        super().__init__(message)
        setattr(self, "exit_code", exit_code)  # noqa: B010 (a ClassVar in newer click's stubs)

    def show(self, file: IO[Any] | None = None) -> None:
        """Print `d1check: <message>` on stderr."""
        click.echo(f"d1check: {self.format_message()}", err=True)


def exit_code_for(error: D1CheckError) -> int:
    """2 for bad input (configuration, files), 1 for anything that failed."""
    return USAGE if isinstance(error, ConfigError | MigrationFileError) else FAILURE


def from_error(error: D1CheckError) -> CommandError:
    """The CommandError that presents `error`."""
    return CommandError(str(error), exit_code_for(error))


def use_rich() -> bool:
    """Rich output only on a terminal and without NO_COLOR."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table: rich on a terminal, plain text otherwise. Rich cells wrap between words; a word
    wider than its column is cut with an ellipsis, never folded mid-word."""
    if not use_rich():
        click.echo(plain_table(headers, rows))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False
    )
    for header in headers:
        table.add_column(header, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
