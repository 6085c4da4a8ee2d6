INSERT INTO log (name) VALUES ('02_c');
