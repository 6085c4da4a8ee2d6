DROP TABLE IF EXISTS pins;
DELETE FROM _migrations WHERE version = '0002';
