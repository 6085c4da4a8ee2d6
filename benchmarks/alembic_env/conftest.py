"""Fixtures of the pytest-alembic side of the benchmark: the alembic project and a SQLite file."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


@pytest.fixture
def alembic_config() -> dict[str, Any]:
    """The revisions under alembic/versions."""
    return {"script_location": str(HERE / "alembic")}


@pytest.fixture
def alembic_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file with foreign keys enforced, as on D1."""
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'bench.sqlite'}")

    @event.listens_for(engine, "connect")
    def enforce_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    yield engine
    engine.dispose()
