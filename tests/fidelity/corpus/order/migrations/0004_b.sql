INSERT INTO log (name) VALUES ('0004_b');
