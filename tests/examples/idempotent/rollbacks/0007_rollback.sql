ALTER TABLE sizes DROP COLUMN label_id;
DROP INDEX IF EXISTS labels_name_unique;
DROP TABLE IF EXISTS labels;
