INSERT INTO log (name) VALUES ('INIT');
