"""The one place that sends a request changing a remote D1 database.

Every change d1check makes to a remote database — taking, renewing, giving back or clearing the
deploy lock, a migration with its tracking and audit rows, a rollback, a Time Travel restore —
is sent by a function of this module; everything else only reads. A test holds the rest of the
package to that.
"""

from __future__ import annotations

from collections.abc import Sequence

from d1check.remote import D1Client, Params, QueryResult, Restored


def send_sql(client: D1Client, db_id: str, sql: str, *, purpose: str = "") -> list[QueryResult]:
    """Send SQL text that changes the database, as one request (one transaction); one result
    per statement. An AmbiguousWrite means it may or may not have landed: read before resending.
    `purpose` names the request in errors."""
    return client.query(db_id, sql, write=True, purpose=purpose)


def send_batch(
    client: D1Client, db_id: str, statements: Sequence[tuple[str, Params]], *, purpose: str = ""
) -> list[QueryResult]:
    """Send statements with their parameters that change the database, as one request."""
    return client.batch(db_id, statements, write=True, purpose=purpose)


def send_restore(client: D1Client, db_id: str, bookmark: str) -> Restored:
    """Restore the database to a Time Travel bookmark."""
    return client.restore(db_id, bookmark)
