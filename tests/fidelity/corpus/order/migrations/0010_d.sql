INSERT INTO log (name) VALUES ('0010_d');
