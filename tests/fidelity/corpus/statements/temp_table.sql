-- expect: auth
CREATE TEMP TABLE tt (a);
