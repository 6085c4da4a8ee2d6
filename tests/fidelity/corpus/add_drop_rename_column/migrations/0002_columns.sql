ALTER TABLE items ADD COLUMN price INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0);
ALTER TABLE items RENAME COLUMN name TO title;
ALTER TABLE items DROP COLUMN legacy;
CREATE INDEX items_title ON items (title);
CREATE UNIQUE INDEX items_lower ON items (lower(title)) WHERE price > 0;
