CREATE INDEX IF NOT EXISTS idx_items_name ON items(name);
