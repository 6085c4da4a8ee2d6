DROP INDEX IF EXISTS idx_colours_hex;
ALTER TABLE colours DROP COLUMN hex;
