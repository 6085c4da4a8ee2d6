-- expect: auth
CREATE TABLE t (a);
CREATE INDEX _cf_i ON t (a);
