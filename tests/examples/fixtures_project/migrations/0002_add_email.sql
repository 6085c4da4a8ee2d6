-- d1check: not-idempotent SQLite has no ADD COLUMN IF NOT EXISTS
ALTER TABLE people ADD COLUMN email TEXT;
