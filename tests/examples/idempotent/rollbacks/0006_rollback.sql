DROP INDEX IF EXISTS idx_colours_rank;
ALTER TABLE colours DROP COLUMN rank;
