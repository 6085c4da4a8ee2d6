-- d1check: allow-destructive shelves and racks go; authors.name becomes nullable
DROP TABLE shelf_items;
DROP TABLE shelves;
DROP TABLE racks;
DROP TABLE rack_slots;
CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO authors_new (id, name) SELECT id, name FROM authors;
DROP TABLE authors;
ALTER TABLE authors_new RENAME TO authors;
