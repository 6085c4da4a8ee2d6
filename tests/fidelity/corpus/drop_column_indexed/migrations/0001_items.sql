CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
CREATE INDEX items_name ON items (name);
