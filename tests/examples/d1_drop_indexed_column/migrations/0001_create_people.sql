CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
CREATE INDEX IF NOT EXISTS idx_people_email ON people(email);
