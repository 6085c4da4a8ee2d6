CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
INSERT OR IGNORE INTO _migrations (version, name) VALUES ('0001', 'create_notes');
