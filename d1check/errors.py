"""The one exception hierarchy of d1check: every error says what is wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class D1CheckError(Exception):
    """Base class of every error d1check raises on purpose."""


class ConfigError(D1CheckError):
    """Bad configuration: a usage error (pytest exit 4, CLI exit 2)."""


class MigrationFileError(D1CheckError):
    """A migration or rollback file cannot be read (missing, not UTF-8, badly named)."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")


class SQLError(D1CheckError):
    """A statement failed on the engine; carries the file, line and D1's message."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "<sql>",
        line: int | None = None,
        statement: str = "",
        hint: str = "",
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.statement = statement
        self.hint = hint
        where = f"{source}:{line}" if line else source
        text = f"{where}: {message}"
        if statement:
            text += f"\n    {_first_line(statement)}"
        if hint:
            text += f"\n  fix: {hint}"
        super().__init__(text)


class RemoteError(D1CheckError):
    """The D1 API answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class GateRefused(D1CheckError):
    """The gate refused to apply: failing suite, drift, a hand-changed schema, a missing step."""


class LockHeld(D1CheckError):
    """Another run holds the deploy lock of a database."""


def _first_line(statement: str) -> str:
    lines = [ln for ln in statement.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    head = lines[0].strip()
    return head + (" …" if len(lines) > 1 else "")
