ALTER TABLE colours ADD COLUMN hex TEXT;
CREATE INDEX IF NOT EXISTS idx_colours_hex ON colours(hex);
