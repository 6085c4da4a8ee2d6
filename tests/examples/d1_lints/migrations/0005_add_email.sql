ALTER TABLE people ADD COLUMN email TEXT;
CREATE INDEX IF NOT EXISTS idx_people_email ON people(email);
