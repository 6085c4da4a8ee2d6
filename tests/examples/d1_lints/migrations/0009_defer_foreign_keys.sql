PRAGMA defer_foreign_keys = true;
CREATE TABLE IF NOT EXISTS rooms_archive (id INTEGER PRIMARY KEY, name TEXT);
PRAGMA defer_foreign_keys = false;
