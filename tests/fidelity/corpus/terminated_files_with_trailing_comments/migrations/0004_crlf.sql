CREATE TABLE d (x);
-- end