-- Forgets the column.
SELECT 1;
