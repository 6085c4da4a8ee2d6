-- d1check: not-idempotent SQLite has no ADD COLUMN IF NOT EXISTS
ALTER TABLE tasks ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
