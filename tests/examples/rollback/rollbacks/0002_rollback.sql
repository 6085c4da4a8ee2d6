-- Forgets the index.
SELECT 1;
