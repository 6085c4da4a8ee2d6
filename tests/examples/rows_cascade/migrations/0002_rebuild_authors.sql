-- The usual SQLite table rebuild, to make authors.name nullable.
-- d1check: allow-destructive rebuild of authors keeps every row
-- d1check: not-idempotent a table rebuild runs once
-- d1check: irreversible the old NOT NULL constraint is not restored
PRAGMA defer_foreign_keys = true;

CREATE TABLE authors_new (
    id INTEGER PRIMARY KEY,
    name TEXT
);
INSERT INTO authors_new (id, name) SELECT id, name FROM authors;
DROP TABLE authors;
ALTER TABLE authors_new RENAME TO authors;

PRAGMA defer_foreign_keys = false;
