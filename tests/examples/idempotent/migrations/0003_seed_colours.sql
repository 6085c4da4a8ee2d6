INSERT INTO colours (name) VALUES ('red'), ('green');
