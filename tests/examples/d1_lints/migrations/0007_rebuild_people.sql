-- d1check: allow-destructive people.name becomes NOT NULL
PRAGMA foreign_keys = OFF;
CREATE TABLE people_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', email TEXT);
INSERT INTO people_new (id, name, email) SELECT id, coalesce(name, ''), email FROM people;
DROP TABLE people;
ALTER TABLE people_new RENAME TO people;
PRAGMA foreign_keys = ON;
