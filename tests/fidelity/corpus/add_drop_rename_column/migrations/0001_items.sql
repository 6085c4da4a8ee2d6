CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, legacy TEXT);
INSERT INTO items (name, legacy) VALUES ('a', 'x'), ('b', 'y');
