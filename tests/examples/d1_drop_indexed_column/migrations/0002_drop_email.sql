-- d1check: allow-destructive emails move to the accounts service
ALTER TABLE people DROP COLUMN email;
