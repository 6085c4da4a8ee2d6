-- expect: auth
CREATE TABLE r (a);
ALTER TABLE r RENAME TO _cf_r;
