-- d1check: allow-destructive shelves are rebuilt from the catalogue
DROP TABLE IF EXISTS shelf_items;
DROP TABLE IF EXISTS shelves;
CREATE TABLE shelves (id INTEGER PRIMARY KEY, label TEXT NOT NULL, room TEXT);
CREATE TABLE shelf_items (
    id INTEGER PRIMARY KEY,
    shelf_id INTEGER NOT NULL REFERENCES shelves(id) ON DELETE CASCADE,
    note TEXT
);
