-- Every book needs an ISBN.
-- d1check: not-idempotent SQLite has no ADD COLUMN IF NOT EXISTS

ALTER TABLE books ADD COLUMN isbn TEXT NOT NULL;
