-- Forgets to drop the index first.
ALTER TABLE people DROP COLUMN email;
