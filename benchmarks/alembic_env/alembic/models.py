"""The models: the schema at the head of the history, reflected once per process."""

from pathlib import Path

import sqlalchemy

HEAD = Path(__file__).resolve().parents[1] / "head.sqlite"

metadata = sqlalchemy.MetaData()
_engine = sqlalchemy.create_engine(f"sqlite:///{HEAD}")
metadata.reflect(_engine)
_engine.dispose()
