-- d1check: allow-destructive teams.name becomes NOT NULL
PRAGMA foreign_keys = OFF;
CREATE TABLE teams_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
INSERT INTO teams_new (id, name) SELECT id, coalesce(name, '') FROM teams;
DROP TABLE teams;
ALTER TABLE teams_new RENAME TO teams;
PRAGMA foreign_keys = ON;
