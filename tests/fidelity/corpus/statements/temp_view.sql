-- expect: auth
CREATE TEMP VIEW tv AS SELECT 1;
