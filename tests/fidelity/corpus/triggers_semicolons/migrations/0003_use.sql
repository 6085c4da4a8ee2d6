INSERT INTO notes (body, "begin") VALUES ('hello', 'start');
UPDATE notes SET body = 'bye;' WHERE id = 1;
