ALTER TABLE colours ADD COLUMN rank INTEGER;
CREATE INDEX idx_colours_rank ON colours(rank);
