-- expect: auth
CREATE VIEW _cf_v AS SELECT 1;
