CREATE TABLE b (id INTEGER PRIMARY KEY);
INSERT OR IGNORE INTO d1_migrations (name) VALUES ('0002_records_itself.sql');
