-- A rebuild that forgets to copy the rows.
CREATE TABLE items_old (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    note TEXT,
    price INTEGER
);
DROP TABLE items;
ALTER TABLE items_old RENAME TO items;
CREATE INDEX IF NOT EXISTS idx_items_name ON items(name);
