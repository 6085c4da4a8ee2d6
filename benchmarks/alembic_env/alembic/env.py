"""alembic's environment: run the revisions on the connection pytest-alembic hands over."""

import sys
from pathlib import Path

from alembic import context

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models

engine = context.config.attributes["connection"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=models.metadata)
    with context.begin_transaction():
        context.run_migrations()
