CREATE TABLE b (y) -- no semicolon; here
