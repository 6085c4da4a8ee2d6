CREATE TABLE IF NOT EXISTS pins (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
INSERT OR IGNORE INTO _migrations (version, name) VALUES ('0002', 'create_pins');
