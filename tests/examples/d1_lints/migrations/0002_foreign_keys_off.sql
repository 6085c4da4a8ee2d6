PRAGMA foreign_keys = OFF;
CREATE TABLE IF NOT EXISTS teams (id INTEGER PRIMARY KEY, name TEXT);
PRAGMA foreign_keys = ON;
