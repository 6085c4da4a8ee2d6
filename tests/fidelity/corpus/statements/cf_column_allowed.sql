-- expect: applied
CREATE TABLE c (_cf_x TEXT);
